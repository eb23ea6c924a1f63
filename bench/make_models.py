#!/usr/bin/env python3
"""Writes the benchmark's generated fp32 models (random weights, fixed seed) to OUT_DIR:

  mobilenet-dw.onnx   MobileNet-style: 3×3 stem, depthwise 3×3 + pointwise 1×1 blocks, ReLU6 (Clip),
                      global average pool, Gemm classifier (1×3×160×160)
  vgg-conv.onnx       standard 3×3 convolutions + ReLU + MaxPool, global pool, Gemm (1×3×128×128)
  transformer.onnx    2-layer encoder: MatMul projections, 4-head attention (Softmax), LayerNorm,
                      GELU (erf form), residual Adds (1×64×128)
  mobilenet-v1-075.onnx  MobileNet v1, width 0.75, 1×3×224×224, 1000 classes: a ≈ 10 MB model for
                      timing `perch optimize` (bench/optimize_time.sh)
  mobilenet-v2.onnx   MobileNetV2 (inverted residuals, residual Adds, 1×3×224×224, 1000 classes)

Only this generator is committed; the .onnx files go to a git-ignored folder.
Usage: bench/make_models.py OUT_DIR
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
rng = np.random.RandomState(1234)


class Builder:
    def __init__(self, name):
        self.name = name
        self.nodes, self.inits = [], []
        self.n = 0

    def fresh(self, base):
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, base, arr):
        name = self.fresh(base)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def op(self, op_type, inputs, **attrs):
        out = self.fresh(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x, cin, cout, k, stride=1, group=1, act="relu6", gain=1.0):
        fan_in = cin // group * k * k
        w = self.const("w", (rng.randn(cout, cin // group, k, k) * gain * np.sqrt(2.0 / fan_in)).astype(np.float32))
        b = self.const("b", (rng.randn(cout) * 0.05).astype(np.float32))
        y = self.op("Conv", [x, w, b], kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4, group=group)
        if act == "relu6":
            lo = self.const("lo", np.array(0, np.float32))
            hi = self.const("hi", np.array(6, np.float32))
            y = self.op("Clip", [y, lo, hi])
        elif act == "relu":
            y = self.op("Relu", [y])
        elif act == "silu":  # as PyTorch exports nn.SiLU: x · Sigmoid(x)
            y = self.op("Mul", [y, self.op("Sigmoid", [y])])
        return y

    def gemm(self, x, cin, cout):
        w = self.const("fc_w", (rng.randn(cout, cin) * np.sqrt(1.0 / cin)).astype(np.float32))
        b = self.const("fc_b", np.zeros(cout, np.float32))
        return self.op("Gemm", [x, w, b], transB=1)

    def save(self, path, inputs, output, out_shape):
        graph = helper.make_graph(
            self.nodes, self.name,
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, out_shape)],
            self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="perch-bench")
        model.ir_version = 8
        onnx.checker.check_model(model)
        onnx.save(model, path)


def mobilenet(path):
    b = Builder("mobilenet_dw")
    y = b.conv("input", 3, 32, 3, stride=2)
    c = 32
    for cout, stride in [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1)]:
        y = b.conv(y, c, c, 3, stride=stride, group=c)   # depthwise
        y = b.conv(y, c, cout, 1)                        # pointwise
        c = cout
    y = b.op("GlobalAveragePool", [y])
    y = b.op("Flatten", [y])
    y = b.gemm(y, c, 100)
    b.save(path, [("input", [1, 3, 160, 160])], y, [1, 100])


def mobilenet_v1(path, width=0.75, size=224, classes=1000):
    """MobileNet v1 (Howard et al. 2017) at a width multiplier: 0.75 has ≈ 2.6 M parameters, a ≈ 10 MB file."""
    b = Builder("mobilenet_v1")
    ch = lambda n: int(n * width)
    y = b.conv("input", 3, ch(32), 3, stride=2)
    c = ch(32)
    for cout, stride in [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]:
        y = b.conv(y, c, c, 3, stride=stride, group=c)
        y = b.conv(y, c, ch(cout), 1)
        c = ch(cout)
    y = b.op("GlobalAveragePool", [y])
    y = b.op("Flatten", [y])
    y = b.gemm(y, c, classes)
    b.save(path, [("input", [1, 3, size, size])], y, [1, classes])


def mobilenet_v2(path, size=224, classes=1000):
    """MobileNetV2 (Sandler et al. 2018): inverted residual blocks (1×1 expansion ×6, 3×3 depthwise,
    linear 1×1 projection, residual Add where shapes allow), 3.5 M parameters. The projections get
    a small gain (as a zero-initialised last BatchNorm would), so the random network stays well
    conditioned instead of amplifying every rounding difference through 17 blocks."""
    b = Builder("mobilenet_v2")
    y = b.conv("input", 3, 32, 3, stride=2)
    c = 32
    for t, cout, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden, x = c * t, y
            if t != 1:
                y = b.conv(y, c, hidden, 1)
            y = b.conv(y, hidden, hidden, 3, stride=stride, group=hidden)
            y = b.conv(y, hidden, cout, 1, act=None, gain=0.25)
            if stride == 1 and c == cout:
                y = b.op("Add", [x, y])
            c = cout
    y = b.conv(y, c, 1280, 1)
    y = b.op("GlobalAveragePool", [y])
    y = b.op("Flatten", [y])
    y = b.gemm(y, 1280, classes)
    b.save(path, [("input", [1, 3, size, size])], y, [1, classes])


def yolo(path, size=256, classes=20):
    """A YOLOv5-style detector (SiLU after every Conv, C3 blocks with a residual bottleneck and a
    Concat, SPPF's chained 5×5 MaxPools, an FPN with nearest Resize ×2 and Concat, three 1×1
    heads of 3·(5 + classes) channels reshaped, concatenated and passed through a Sigmoid)."""
    b = Builder("yolo_silu")

    def c3(x, cin, cout):
        h = cout // 2
        a = b.conv(x, cin, h, 1, act="silu")
        a = b.op("Add", [a, b.conv(b.conv(a, h, h, 1, act="silu"), h, h, 3, act="silu")])
        side = b.conv(x, cin, h, 1, act="silu")
        return b.conv(b.op("Concat", [a, side], axis=1), 2 * h, cout, 1, act="silu")

    def up(x):
        scales = b.const("scales", np.array([1, 1, 2, 2], np.float32))
        return b.op("Resize", [x, "", scales], mode="nearest")

    y = b.conv("input", 3, 16, 3, stride=2, act="silu")
    y = c3(b.conv(y, 16, 32, 3, stride=2, act="silu"), 32, 32)
    p3 = c3(b.conv(y, 32, 64, 3, stride=2, act="silu"), 64, 64)
    p4 = c3(b.conv(p3, 64, 128, 3, stride=2, act="silu"), 128, 128)
    p5 = c3(b.conv(p4, 128, 256, 3, stride=2, act="silu"), 256, 256)
    a = b.conv(p5, 256, 128, 1, act="silu")  # SPPF
    m1 = b.op("MaxPool", [a], kernel_shape=[5, 5], pads=[2, 2, 2, 2])
    m2 = b.op("MaxPool", [m1], kernel_shape=[5, 5], pads=[2, 2, 2, 2])
    m3 = b.op("MaxPool", [m2], kernel_shape=[5, 5], pads=[2, 2, 2, 2])
    p5 = b.conv(b.op("Concat", [a, m1, m2, m3], axis=1), 512, 256, 1, act="silu")
    t5 = b.conv(p5, 256, 128, 1, act="silu")
    h4 = c3(b.op("Concat", [up(t5), p4], axis=1), 256, 128)
    t4 = b.conv(h4, 128, 64, 1, act="silu")
    h3 = c3(b.op("Concat", [up(t4), p3], axis=1), 128, 64)
    outs, n = [], 3 * (5 + classes)
    for x, c, hw in [(h3, 64, (size // 8) ** 2), (h4, 128, (size // 16) ** 2), (t5, 128, (size // 32) ** 2)]:
        head = b.conv(x, c, n, 1, act=None)
        outs.append(b.op("Reshape", [head, b.const("shape", np.array([1, n, hw], np.int64))]))
    y = b.op("Sigmoid", [b.op("Concat", outs, axis=2)])
    total = sum((size // s) ** 2 for s in (8, 16, 32))
    b.save(path, [("input", [1, 3, size, size])], y, [1, n, total])


def crnn(path, height=32, width=128, hidden=96, classes=37):
    """A CRNN text recognizer (Shi et al. 2015): a VGG-style Conv/Relu/MaxPool stack down to one
    row of 32 columns, a bidirectional LSTM over the columns, a per-step linear layer and
    LogSoftmax (CTC's input)."""
    b = Builder("crnn_lstm")
    y = b.conv("input", 1, 32, 3, act="relu")
    y = b.op("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2])           # 16 × 64
    y = b.conv(y, 32, 64, 3, act="relu")
    y = b.op("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2])           # 8 × 32
    y = b.conv(b.conv(y, 64, 128, 3, act="relu"), 128, 128, 3, act="relu")
    y = b.op("MaxPool", [y], kernel_shape=[2, 1], strides=[2, 1])           # 4 × 32
    y = b.conv(y, 128, 128, 3, act="relu")
    y = b.op("MaxPool", [y], kernel_shape=[4, 1], strides=[4, 1])           # 1 × 32
    seq = width // 4
    y = b.op("Squeeze", [y, b.const("axes", np.array([2], np.int64))])      # [1, 128, 32]
    y = b.op("Transpose", [y], perm=[2, 0, 1])                              # [32, 1, 128]
    w = b.const("lstm_w", (rng.randn(2, 4 * hidden, 128) * 0.1).astype(np.float32))
    r = b.const("lstm_r", (rng.randn(2, 4 * hidden, hidden) * 0.1).astype(np.float32))
    bias = b.const("lstm_b", (rng.randn(2, 8 * hidden) * 0.05).astype(np.float32))
    out = b.fresh("lstm")
    b.nodes.append(helper.make_node("LSTM", [y, w, r, bias], [out], name=out, hidden_size=hidden, direction="bidirectional"))
    y = b.op("Transpose", [out], perm=[0, 2, 1, 3])                         # [32, 1, 2, 96]
    y = b.op("Reshape", [y, b.const("shape", np.array([seq, 1, 2 * hidden], np.int64))])
    fc = b.const("fc_w", (rng.randn(2 * hidden, classes) * np.sqrt(1.0 / (2 * hidden))).astype(np.float32))
    y = b.op("Add", [b.op("MatMul", [y, fc]), b.const("fc_b", np.zeros(classes, np.float32))])
    y = b.op("LogSoftmax", [y], axis=2)
    b.save(path, [("input", [1, 1, height, width])], y, [seq, 1, classes])


def vgg(path):
    b = Builder("vgg_conv")
    y, c = "input", 3
    for cout, pool in [(32, True), (64, True), (128, False), (128, True), (256, False), (256, True)]:
        y = b.conv(y, c, cout, 3, act="relu")
        c = cout
        if pool:
            y = b.op("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2])
    y = b.op("GlobalAveragePool", [y])
    y = b.op("Flatten", [y])
    y = b.gemm(y, c, 100)
    b.save(path, [("input", [1, 3, 128, 128])], y, [1, 100])


def transformer(path, seq=64, d=128, heads=4, ffn=512, layers=2):
    b = Builder("transformer_encoder")
    hd = d // heads

    def linear(x, cin, cout):
        w = b.const("w", (rng.randn(cin, cout) * np.sqrt(1.0 / cin)).astype(np.float32))
        bias = b.const("b", (rng.randn(cout) * 0.02).astype(np.float32))
        return b.op("Add", [b.op("MatMul", [x, w]), bias])

    def layernorm(x):
        g = b.const("ln_g", np.ones(d, np.float32))
        beta = b.const("ln_b", np.zeros(d, np.float32))
        return b.op("LayerNormalization", [x, g, beta], axis=-1, epsilon=1e-5)

    def heads_of(x):  # [1, S, D] -> [1, H, S, hd]
        shape = b.const("shape", np.array([1, seq, heads, hd], np.int64))
        return b.op("Transpose", [b.op("Reshape", [x, shape])], perm=[0, 2, 1, 3])

    x = "input"
    for _ in range(layers):
        q, k, v = (heads_of(linear(x, d, d)) for _ in range(3))
        kt = b.op("Transpose", [k], perm=[0, 1, 3, 2])
        scale = b.const("scale", np.array(1.0 / np.sqrt(hd), np.float32))
        att = b.op("Softmax", [b.op("Mul", [b.op("MatMul", [q, kt]), scale])], axis=-1)
        ctx = b.op("Transpose", [b.op("MatMul", [att, v])], perm=[0, 2, 1, 3])
        ctx = b.op("Reshape", [ctx, b.const("shape", np.array([1, seq, d], np.int64))])
        x = layernorm(b.op("Add", [x, linear(ctx, d, d)]))
        h = linear(x, d, ffn)
        # GELU, erf form: 0.5 * h * (1 + erf(h / sqrt(2)))
        e = b.op("Erf", [b.op("Div", [h, b.const("sqrt2", np.array(np.sqrt(2.0), np.float32))])])
        h = b.op("Mul", [b.op("Mul", [h, b.const("half", np.array(0.5, np.float32))]),
                         b.op("Add", [e, b.const("one", np.array(1.0, np.float32))])])
        x = layernorm(b.op("Add", [x, linear(h, ffn, d)]))
    b.save(path, [("input", [1, seq, d])], x, [1, seq, d])


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "bench/models"
    os.makedirs(out, exist_ok=True)
    mobilenet(os.path.join(out, "mobilenet-dw.onnx"))
    vgg(os.path.join(out, "vgg-conv.onnx"))
    transformer(os.path.join(out, "transformer.onnx"))
    mobilenet_v1(os.path.join(out, "mobilenet-v1-075.onnx"))  # after the others: they keep their weights
    mobilenet_v2(os.path.join(out, "mobilenet-v2.onnx"))
    yolo(os.path.join(out, "yolo-silu.onnx"))
    crnn(os.path.join(out, "crnn-lstm.onnx"))
    print("wrote mobilenet-dw.onnx, vgg-conv.onnx, transformer.onnx, mobilenet-v1-075.onnx, mobilenet-v2.onnx, yolo-silu.onnx,"
          " crnn-lstm.onnx to " + out)


if __name__ == "__main__":
    main()
