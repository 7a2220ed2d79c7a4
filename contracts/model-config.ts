// model.json: what the plan ConfigMap says about the model besides the plan: the RecModel's spec.model (for
// reference), where the artifact is (artifact.uri; the shard-server's --model overrides it) and the serving
// settings the main's scheduler starts from (spec.serving). operator/builders/serving-files.ts writes it.
import { object, parseJson, string, type Checked } from './check.js';

export interface ServingConfig {
  port?: number;
  /** A duration such as 25ms or 0.1s: the main's scheduler tunes toward it. */
  latencyTarget?: string;
  percentile?: number;
  scheduler?: 'auto' | 'fixed';
  batchSize?: number;
  workers?: number;
  /** Bytes of hot rows the main caches, as a quantity (spec.serving.hotRowCache). */
  hotRowCache?: string;
}

export interface ModelConfig {
  model: unknown;
  artifact: { uri?: string; [key: string]: unknown };
  serving: ServingConfig;
}

export function parseModelConfig(text: string, file = 'model.json'): ModelConfig {
  const doc = parseJson(text, file);
  const c: Checked = { file, at: '' };
  object(c, doc);
  const d = doc as Partial<ModelConfig>;
  const artifact = d.artifact ?? {};
  object({ ...c, at: 'artifact' }, artifact);
  if (artifact.uri !== undefined) string({ ...c, at: 'artifact.uri' }, artifact.uri);
  const serving = d.serving ?? {};
  object({ ...c, at: 'serving' }, serving);
  return { model: d.model, artifact, serving };
}
