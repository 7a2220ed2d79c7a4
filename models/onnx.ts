// Dense networks as ONNX: an MLP is Gemm + Relu per layer, with a Sigmoid after the last layer of the top MLP.
import onnxProto from 'onnx-proto';
import { ONNX_INPUT, ONNX_OUTPUT } from '../contracts/model-format.js';

const { onnx } = onnxProto;

export interface Layer {
  weights: Float32Array; // in x out, row-major
  bias: Float32Array;
  inputs: number;
  outputs: number;
}

const tensor = (name: string, dims: number[], data: Float32Array) =>
  onnx.TensorProto.create({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });

const valueInfo = (name: string, width: number) =>
  onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimParam: 'batch' }, { dimValue: width }] } } },
  });

/** Serialises an MLP; `final` is the activation after the last layer. */
export function mlpToOnnx(name: string, layers: Layer[], final: 'Relu' | 'Sigmoid'): Uint8Array {
  const nodes: onnxProto.onnx.NodeProto[] = [];
  const inits: onnxProto.onnx.TensorProto[] = [];
  let current = ONNX_INPUT;
  layers.forEach((l, i) => {
    const last = i === layers.length - 1;
    inits.push(tensor(`w${i}`, [l.inputs, l.outputs], l.weights), tensor(`b${i}`, [l.outputs], l.bias));
    nodes.push(onnx.NodeProto.create({ opType: 'Gemm', input: [current, `w${i}`, `b${i}`], output: [`g${i}`] }));
    const out = last ? ONNX_OUTPUT : `a${i}`;
    nodes.push(onnx.NodeProto.create({ opType: last ? final : 'Relu', input: [`g${i}`], output: [out] }));
    current = out;
  });
  const graph = onnx.GraphProto.create({
    name,
    node: nodes,
    initializer: inits,
    input: [valueInfo(ONNX_INPUT, layers[0]!.inputs)],
    output: [valueInfo(ONNX_OUTPUT, layers[layers.length - 1]!.outputs)],
  });
  const model = onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph, producerName: 'recshard' });
  return onnx.ModelProto.encode(model).finish();
}
