// Dense MLPs through onnxruntime-node: one single-threaded session per network.
import ort from 'onnxruntime-node';
import { ONNX_INPUT, ONNX_OUTPUT, bottomWidth, outputWidth, type Manifest } from '../../contracts/model-format.js';

export class DenseNet {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly inputs: number,
    readonly outputs: number,
  ) {}

  /** providers: onnxruntime execution providers in preference order (default cpu), e.g. ['cuda']. */
  static async load(bytes: Uint8Array, inputs: number, outputs: number, providers?: string[]): Promise<DenseNet> {
    const session = await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      ...(providers?.length ? { executionProviders: providers } : {}),
    });
    return new DenseNet(session, inputs, outputs);
  }

  /** x: batch x inputs, row-major; returns batch x outputs. */
  async run(x: Float32Array, batch: number): Promise<Float32Array> {
    const out = await this.session.run({ [ONNX_INPUT]: new ort.Tensor('float32', x, [batch, this.inputs]) });
    return out[ONNX_OUTPUT]!.data as Float32Array;
  }
}

/** The model's two networks from their ONNX bytes (no bottom network when the model has no bottom MLP). */
export async function loadDenseNets(
  m: Manifest,
  bottom: Uint8Array | undefined,
  top: Uint8Array,
  providers?: string[],
): Promise<{ bottom?: DenseNet; top: DenseNet }> {
  return {
    bottom: bottom ? await DenseNet.load(bottom, m.denseFeatures, bottomWidth(m), providers) : undefined,
    top: await DenseNet.load(top, m.topInput, outputWidth(m), providers),
  };
}
