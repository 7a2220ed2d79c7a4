// Stable child names and label values: DNS-1123 labels of at most 63 characters; a name that would be longer
// is cut and given a short hash of the full name so two long names never collide.
import { createHash } from 'node:crypto';
import type { Role } from '../../contracts/shard-server-args.js';
import type { Actuator } from '../autoscaling/policy.js';

const MAX = 63;

export function shortHash(s: string, n = 8): string {
  return createHash('sha256').update(s).digest('hex').slice(0, n);
}

/** A DNS-1123 label (also a valid label value) from `base-suffix`, hashed when too long. */
export function dnsLabel(base: string, suffix?: string): string {
  const clean = base.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  const full = suffix ? `${clean}-${suffix}` : clean;
  if (full.length <= MAX) return full;
  const hash = shortHash(full);
  const keep = MAX - hash.length - 1 - (suffix ? suffix.length + 1 : 0);
  const head = clean.slice(0, keep).replace(/-+$/, '');
  return suffix ? `${head}-${hash}-${suffix}` : `${head}-${hash}`;
}

export const mainName = (model: string) => dnsLabel(model, 'main');
/** A sparse shard belongs to one serving version (its tables, artifact and image): an old main only reaches old shards. */
export const shardName = (model: string, index: number, version: string) => dnsLabel(model, `shard-${index}-${version}`);
/** What a version's shard set shares (its disruption budget). */
export const shardSetName = (model: string, version: string) => dnsLabel(model, `shards-${version}`);
/** Plan ConfigMaps are immutable and named by the hash of what they hold. */
export const planConfigMapName = (model: string, contentHash: string) => dnsLabel(model, `plan-${contentHash}`);
/** The Deployment, Service and autoscaler of one component share its name (a shard's carries its version). */
export const componentName = (model: string, role: Role, shard?: number, version?: string) =>
  role === 'main' ? mainName(model) : shardName(model, shard!, version!);

/** KEDA names the HPA it creates for a ScaledObject so (unless the ScaledObject names it). */
export const kedaHpaName = (scaledObject: string) => `keda-hpa-${scaledObject}`;
/** The HPA that scales Deployment `deployment`: the operator's own has the Deployment's name, KEDA's is named by KEDA. */
export const hpaNameFor = (actuator: Actuator, deployment: string) => (actuator === 'KEDA' ? kedaHpaName(deployment) : deployment);
