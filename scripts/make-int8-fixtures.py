#!/usr/bin/env python3
"""Builds the small int8 fixtures Perch's quantized-execution tests compare with ONNX Runtime.

Writes into examples/int8/ (all small, committed):
  tiny-cnn-f32.onnx         examples/tiny-cnn.onnx without its Softmax (output `logits`), so the
                            quantized output is a tensor with one scale the tests can measure in steps
  tiny-cnn-qdq.onnx         quantize_static(QuantFormat.QDQ, per_channel=True, QInt8/QInt8)
  tiny-cnn-qop.onnx         quantize_static(QuantFormat.QOperator, per_channel=True, QUInt8 activations)
  tiny-mlp-qdq.onnx         a transformer-like MatMul + Add + Relu + MatMul + Add block, QDQ per channel
  tiny-mlp-qop.onnx         the same block as QOperator (QLinearMatMul / QLinearAdd)
  tiny-attn-qdq.onnx         one self-attention head (Q·Kᵀ/√d → Softmax → ·V), QDQ, uint8 activations:
                            ONNX Runtime runs its Softmax as the table-based QLinearSoftmax
  tiny-attn-qop.onnx         the same as QOperator (com.microsoft QLinearSoftmax in the file)
  tiny-pool-qdq.onnx        Conv/Relu → MaxPool → two branches → Concat → Resize (nearest) → MaxPool
                            → Conv, QDQ per channel, uint8 activations: the ops that move or select
                            values and must run on the quantized bytes
  tiny-contrib-qop.onnx     Conv → two branches → Concat → AveragePool → Conv → GlobalAveragePool as
                            QOperator, uint8 activations: ONNX Runtime writes the com.microsoft
                            QLinearConcat and QLinearAveragePool (as in the ONNX model zoo's -int8 models)
  tiny-lstm-dyn.onnx        a bidirectional LSTM through quantize_dynamic: com.microsoft DynamicQuantizeLSTM
                            (int8 weights, per direction); tiny-lstm-f32.onnx is the model before
  *-input.npy               the fixed input
  *-expected-ort.npy        ONNX Runtime's output for it (default session options, 1 thread)

Calibration: 8 samples from numpy's default_rng(123). Run: python3 scripts/make-int8-fixtures.py
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_dynamic, quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "examples", "int8")
sys.path.insert(0, os.path.join(ROOT, "examples"))
from make_examples import tiny_cnn  # noqa: E402


class Reader(CalibrationDataReader):
    def __init__(self, name, samples):
        self.items = iter([{name: s} for s in samples])

    def get_next(self):
        return next(self.items, None)


def cnn_without_softmax():
    m = tiny_cnn()
    g = m.graph
    soft = [n for n in g.node if n.op_type == "Softmax"][0]
    g.node.remove(soft)
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10]))
    onnx.checker.check_model(m)
    return m


def tiny_mlp():
    rng = np.random.default_rng(7)
    d, h = 32, 64
    inits = [
        numpy_helper.from_array((rng.standard_normal((d, h)) / np.sqrt(d)).astype(np.float32), "w1"),
        numpy_helper.from_array((0.1 * rng.standard_normal(h)).astype(np.float32), "b1"),
        numpy_helper.from_array((rng.standard_normal((h, d)) / np.sqrt(h)).astype(np.float32), "w2"),
        numpy_helper.from_array((0.1 * rng.standard_normal(d)).astype(np.float32), "b2"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["mm1"], name="ffn/mm1"),
        helper.make_node("Add", ["mm1", "b1"], ["a1"], name="ffn/add1"),
        helper.make_node("Relu", ["a1"], ["r1"], name="ffn/relu"),
        helper.make_node("MatMul", ["r1", "w2"], ["mm2"], name="ffn/mm2"),
        helper.make_node("Add", ["mm2", "b2"], ["y"], name="ffn/add2"),
    ]
    graph = helper.make_graph(
        nodes, "tiny-mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, d])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, d])], inits)
    m = helper.make_model(graph, producer_name="perch-examples", opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def tiny_attn():
    rng = np.random.default_rng(5)
    t, d = 16, 32
    inits = [numpy_helper.from_array((rng.standard_normal((d, d)) / np.sqrt(d) * 2).astype(np.float32), n) for n in ("wq", "wk", "wv")]
    inits.append(numpy_helper.from_array(np.array(1 / np.sqrt(d), np.float32), "scale"))
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q"]),
        helper.make_node("MatMul", ["x", "wk"], ["k"]),
        helper.make_node("MatMul", ["x", "wv"], ["v"]),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["s"]),
        helper.make_node("Mul", ["s", "scale"], ["ss"]),
        helper.make_node("Softmax", ["ss"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny-attn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, t, d])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, t, d])], inits)
    m = helper.make_model(graph, producer_name="perch-examples", opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def tiny_pool():
    rng = np.random.default_rng(11)

    def w(*shape):
        fan = int(np.prod(shape[1:]))
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan)).astype(np.float32)

    inits = [
        numpy_helper.from_array(w(8, 3, 3, 3), "w0"), numpy_helper.from_array((0.1 * rng.standard_normal(8)).astype(np.float32), "b0"),
        numpy_helper.from_array(w(8, 8, 1, 1), "wa"), numpy_helper.from_array((0.1 * rng.standard_normal(8)).astype(np.float32), "ba"),
        numpy_helper.from_array(w(8, 8, 3, 3), "wb"), numpy_helper.from_array((0.1 * rng.standard_normal(8)).astype(np.float32), "bb"),
        numpy_helper.from_array(w(4, 16, 1, 1), "wc"), numpy_helper.from_array((0.1 * rng.standard_normal(4)).astype(np.float32), "bc"),
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c0"], ["r0"]),
        helper.make_node("MaxPool", ["r0"], ["p0"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p0", "wa", "ba"], ["ca"]),
        helper.make_node("Relu", ["ca"], ["ra"]),
        helper.make_node("Conv", ["p0", "wb", "bb"], ["cb"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["cb"], ["rb"]),
        helper.make_node("Concat", ["ra", "rb"], ["cat"], axis=1),
        helper.make_node("Resize", ["cat", "", "scales"], ["up"], mode="nearest"),
        helper.make_node("MaxPool", ["up"], ["p1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["p1", "wc", "bc"], ["y"]),
    ]
    return one_input_model(nodes, "tiny-pool", [1, 3, 24, 24], [1, 4, 12, 12], inits, 17)


def one_input_model(nodes, name, x_shape, y_shape, inits, opset):
    """A checked float32 model with input `x` and output `y`."""
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)], inits)
    m = helper.make_model(graph, producer_name="perch-examples", opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def tiny_contrib():
    rng = np.random.default_rng(5)

    def w(*shape):
        fan = int(np.prod(shape[1:]))
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan)).astype(np.float32)

    def b(n):
        return (0.1 * rng.standard_normal(n)).astype(np.float32)

    inits = [numpy_helper.from_array(a, n) for n, a in [
        ("w0", w(8, 3, 3, 3)), ("b0", b(8)), ("wa", w(8, 8, 1, 1)), ("ba", b(8)),
        ("wb", w(4, 8, 3, 3)), ("bb", b(4)), ("wc", w(6, 12, 1, 1)), ("bc", b(6))]]
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c0"], ["r0"]),
        helper.make_node("Conv", ["r0", "wa", "ba"], ["ca"]),
        helper.make_node("Relu", ["ca"], ["ra"]),
        helper.make_node("Conv", ["r0", "wb", "bb"], ["cb"], pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["ra", "cb"], ["cat"], axis=1),
        helper.make_node("AveragePool", ["cat"], ["ap"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["ap", "wc", "bc"], ["cc"]),
        helper.make_node("GlobalAveragePool", ["cc"], ["y"]),
    ]
    return one_input_model(nodes, "tiny-contrib", [1, 3, 16, 16], [1, 6, 1, 1], inits, 13)


def tiny_lstm():
    rng = np.random.default_rng(21)
    steps, inputs, hidden = 12, 16, 32
    inits = [numpy_helper.from_array(a, n) for n, a in [
        ("W", (rng.standard_normal((2, 4 * hidden, inputs)) * 0.2).astype(np.float32)),
        ("R", (rng.standard_normal((2, 4 * hidden, hidden)) * 0.2).astype(np.float32)),
        ("B", (rng.standard_normal((2, 8 * hidden)) * 0.1).astype(np.float32))]]
    lstm = helper.make_node("LSTM", ["x", "W", "R", "B"], ["y"], hidden_size=hidden, direction="bidirectional")
    return one_input_model([lstm], "tiny-lstm", [steps, 1, inputs], [steps, 2, 1, hidden], inits, 14)


def make_dynamic_lstm():
    f32 = os.path.join(OUT, "tiny-lstm-f32.onnx")
    onnx.save(tiny_lstm(), f32)
    q = os.path.join(OUT, "tiny-lstm-dyn.onnx")
    quantize_dynamic(f32, q, weight_type=QuantType.QInt8, op_types_to_quantize=["LSTM"])
    x = np.random.default_rng(2).standard_normal((12, 1, 16)).astype(np.float32)
    np.save(os.path.join(OUT, "tiny-lstm-input.npy"), x)
    np.save(os.path.join(OUT, "tiny-lstm-f32-expected-ort.npy"), run_ort(f32, "x", x))
    np.save(os.path.join(OUT, "tiny-lstm-dyn-expected-ort.npy"), run_ort(q, "x", x))
    print("wrote", q)


def run_ort(path, name, x):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return s.run(None, {name: x})[0]


def make(stem, model, input_name, shape, fmt_list, preprocess):
    f32 = os.path.join(OUT, stem + "-f32.onnx")
    onnx.save(model, f32)
    rng = np.random.default_rng(123)
    calib = [rng.random(shape, dtype=np.float32) * 2 - 0.5 for _ in range(8)]
    x = np.random.default_rng(1).random(shape, dtype=np.float32) * 2 - 0.5
    np.save(os.path.join(OUT, stem + "-input.npy"), x)
    # ORT's recommended pre-processing (shape inference, BatchNormalization folded into Conv).
    # The MLP is left as is so that its MatMul and Add stay MatMul and Add.
    pre = os.path.join(OUT, stem + "-pre.onnx")
    if preprocess:
        quant_pre_process(f32, pre, skip_symbolic_shape=True)
    else:
        onnx.save(model, pre)
    for tag, fmt, act in fmt_list:
        q = os.path.join(OUT, stem + "-" + tag + ".onnx")
        quantize_static(pre, q, Reader(input_name, calib), quant_format=fmt, per_channel=True,
                        activation_type=act, weight_type=QuantType.QInt8)
        y = run_ort(q, input_name, x)
        np.save(os.path.join(OUT, stem + "-" + tag + "-expected-ort.npy"), y)
        print("wrote", q, y.shape)
    np.save(os.path.join(OUT, stem + "-f32-expected-ort.npy"), run_ort(f32, input_name, x))
    os.remove(pre)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    if len(sys.argv) > 1 and sys.argv[1] == "--only-lstm":
        make_dynamic_lstm()
        sys.exit(0)
    if len(sys.argv) > 1 and sys.argv[1] == "--only-contrib":
        make("tiny-contrib", tiny_contrib(), "x", (1, 3, 16, 16), [("qop", QuantFormat.QOperator, QuantType.QUInt8)], False)
        sys.exit(0)
    if len(sys.argv) > 1 and sys.argv[1] == "--only-attn":
        make("tiny-attn", tiny_attn(), "x", (1, 16, 32),
             [("qdq", QuantFormat.QDQ, QuantType.QUInt8), ("qop", QuantFormat.QOperator, QuantType.QUInt8)], False)
        sys.exit(0)
    make("tiny-cnn", cnn_without_softmax(), "image", (1, 3, 32, 32),
         [("qdq", QuantFormat.QDQ, QuantType.QInt8), ("qop", QuantFormat.QOperator, QuantType.QUInt8)], True)
    if len(sys.argv) > 1 and sys.argv[1] == "--only-pool":
        make("tiny-pool", tiny_pool(), "x", (1, 3, 24, 24), [("qdq", QuantFormat.QDQ, QuantType.QUInt8)], False)
        sys.exit(0)
    make("tiny-pool", tiny_pool(), "x", (1, 3, 24, 24), [("qdq", QuantFormat.QDQ, QuantType.QUInt8)], False)
    make("tiny-attn", tiny_attn(), "x", (1, 16, 32),
         [("qdq", QuantFormat.QDQ, QuantType.QUInt8), ("qop", QuantFormat.QOperator, QuantType.QUInt8)], False)
    make("tiny-contrib", tiny_contrib(), "x", (1, 3, 16, 16), [("qop", QuantFormat.QOperator, QuantType.QUInt8)], False)
    make_dynamic_lstm()
    make("tiny-mlp", tiny_mlp(), "x", (1, 8, 32),
         [("qdq", QuantFormat.QDQ, QuantType.QInt8), ("qop", QuantFormat.QOperator, QuantType.QUInt8)], False)
