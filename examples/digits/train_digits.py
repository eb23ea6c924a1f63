#!/usr/bin/env python3
"""Trains the digits CNN fixture for the optimizer tests, with plain NumPy (no torch).

Data: scikit-learn's bundled 8x8 digits (1797 images, 10 classes), scaled to [0, 1].
Model: Conv(1→32, 3x3, pad 1) → Relu → Flatten → Gemm(2048→128) → Relu → Gemm(128→10).
~268k weights (≈1 MB fp32), so weights dominate the file and the int8 size ratio is meaningful.

Writes, next to this script:
  digits-cnn.onnx                  the trained fp32 model (input `image` [batch,1,8,8], output `logits`)
  calibration/image.npy            64 training images, stacked: [64,1,1,8,8] float32
  eval/image.npy                   400 held-out images: [400,1,1,8,8] float32
  eval-labels.npy                  their classes, int64 [400]

Run: python3 examples/digits/train_digits.py   (needs numpy, onnx, scikit-learn)
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(0)

digits = load_digits()
X = (digits.images / 16.0).astype(np.float32)  # [N, 8, 8]
y = digits.target.astype(np.int64)
perm = rng.permutation(len(X))
X, y = X[perm], y[perm]
X_eval, y_eval = X[:400], y[:400]
X_train, y_train = X[400:], y[400:]

# im2col for a 3x3 pad-1 conv on 8x8: [N, 64 positions, 9 taps].
def im2col(x):
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    cols = np.stack([p[:, i:i + 8, j:j + 8] for i in range(3) for j in range(3)], axis=-1)
    return cols.reshape(len(x), 64, 9)

C, H = 32, 128
params = {
    "conv_w": rng.standard_normal((C, 9)).astype(np.float32) * np.sqrt(2 / 9),
    "conv_b": np.zeros(C, np.float32),
    "fc1_w": rng.standard_normal((H, C * 64)).astype(np.float32) * np.sqrt(2 / (C * 64)),
    "fc1_b": np.zeros(H, np.float32),
    "fc2_w": rng.standard_normal((10, H)).astype(np.float32) * np.sqrt(2 / H),
    "fc2_b": np.zeros(10, np.float32),
}


def forward(x, p):
    cols = im2col(x)                                   # [N, 64, 9]
    conv = cols @ p["conv_w"].T + p["conv_b"]          # [N, 64, C]
    a1 = np.maximum(conv, 0)
    flat = a1.transpose(0, 2, 1).reshape(len(x), -1)   # channel-major like ONNX Flatten of NCHW
    h = flat @ p["fc1_w"].T + p["fc1_b"]
    a2 = np.maximum(h, 0)
    logits = a2 @ p["fc2_w"].T + p["fc2_b"]
    return logits, (cols, conv, a1, flat, h, a2)


def grads(x, yb, p):
    logits, (cols, conv, a1, flat, h, a2) = forward(x, p)
    z = logits - logits.max(1, keepdims=True)
    prob = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    n = len(x)
    d = prob.copy()
    d[np.arange(n), yb] -= 1
    d /= n
    g = {"fc2_w": d.T @ a2, "fc2_b": d.sum(0)}
    da2 = d @ p["fc2_w"]
    dh = da2 * (h > 0)
    g["fc1_w"] = dh.T @ flat
    g["fc1_b"] = dh.sum(0)
    dflat = dh @ p["fc1_w"]
    da1 = dflat.reshape(n, C, 64).transpose(0, 2, 1)
    dconv = da1 * (conv > 0)
    g["conv_w"] = np.einsum("npc,npk->ck", dconv, cols)
    g["conv_b"] = dconv.sum((0, 1))
    return g


m = {k: np.zeros_like(v) for k, v in params.items()}
v = {k: np.zeros_like(v) for k, v in params.items()}
lr, b1, b2, t = 1e-3, 0.9, 0.999, 0
for epoch in range(25):
    order = rng.permutation(len(X_train))
    for s in range(0, len(order), 64):
        idx = order[s:s + 64]
        g = grads(X_train[idx], y_train[idx], params)
        t += 1
        for k in params:
            m[k] = b1 * m[k] + (1 - b1) * g[k]
            v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
            params[k] -= lr * (m[k] / (1 - b1 ** t)) / (np.sqrt(v[k] / (1 - b2 ** t)) + 1e-8)
    acc = (forward(X_eval, params)[0].argmax(1) == y_eval).mean()
    print("epoch %d: held-out top-1 %.4f" % (epoch, acc))

inits = [
    numpy_helper.from_array(params["conv_w"].reshape(C, 1, 3, 3).astype(np.float32), "conv_w"),
    numpy_helper.from_array(params["conv_b"].astype(np.float32), "conv_b"),
    numpy_helper.from_array(params["fc1_w"].astype(np.float32), "fc1_w"),
    numpy_helper.from_array(params["fc1_b"].astype(np.float32), "fc1_b"),
    numpy_helper.from_array(params["fc2_w"].astype(np.float32), "fc2_w"),
    numpy_helper.from_array(params["fc2_b"].astype(np.float32), "fc2_b"),
]
nodes = [
    helper.make_node("Conv", ["image", "conv_w", "conv_b"], ["conv"], name="conv", pads=[1, 1, 1, 1]),
    helper.make_node("Relu", ["conv"], ["conv_relu"], name="conv/relu"),
    helper.make_node("Flatten", ["conv_relu"], ["flat"], name="flatten", axis=1),
    helper.make_node("Gemm", ["flat", "fc1_w", "fc1_b"], ["fc1"], name="fc1", transB=1),
    helper.make_node("Relu", ["fc1"], ["fc1_relu"], name="fc1/relu"),
    helper.make_node("Gemm", ["fc1_relu", "fc2_w", "fc2_b"], ["logits"], name="fc2", transB=1),
]
graph = helper.make_graph(
    nodes, "digits-cnn",
    [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 8, 8])],
    [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
    inits)
model = helper.make_model(graph, producer_name="perch-examples", opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, os.path.join(HERE, "digits-cnn.onnx"))

os.makedirs(os.path.join(HERE, "calibration"), exist_ok=True)
os.makedirs(os.path.join(HERE, "eval"), exist_ok=True)
np.save(os.path.join(HERE, "calibration", "image.npy"), X_train[:64].reshape(64, 1, 1, 8, 8).astype(np.float32))
np.save(os.path.join(HERE, "eval", "image.npy"), X_eval.reshape(400, 1, 1, 8, 8).astype(np.float32))
np.save(os.path.join(HERE, "eval-labels.npy"), y_eval)
print("fp32 held-out top-1 %.4f; wrote digits-cnn.onnx, calibration/, eval/, eval-labels.npy" % acc)
