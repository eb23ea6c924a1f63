#!/usr/bin/env python3
"""Builds a float16 model (examples/tiny-cnn.onnx with every weight, input and output in float16,
as `.half()` exports are) and ONNX Runtime's float16 output for the example input.

Writes into examples/fp16/ (small, committed):
  tiny-cnn-fp16.onnx           the model
  tiny-cnn-fp16-input.npy      examples/tiny-cnn-input.npy as float16
  tiny-cnn-fp16-expected-ort.npy   ONNX Runtime's output (float16)

Run: python3 scripts/make-fp16-fixture.py
"""
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "examples", "fp16")


def main():
    os.makedirs(OUT, exist_ok=True)
    model = onnx.load(os.path.join(ROOT, "examples", "tiny-cnn.onnx"))
    g = model.graph
    for i, t in enumerate(g.initializer):
        if t.data_type == TensorProto.FLOAT:
            g.initializer[i].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), t.name))
    for v in list(g.input) + list(g.output):
        v.type.tensor_type.elem_type = TensorProto.FLOAT16
    onnx.checker.check_model(model)
    path = os.path.join(OUT, "tiny-cnn-fp16.onnx")
    onnx.save(model, path)
    x = np.load(os.path.join(ROOT, "examples", "tiny-cnn-input.npy")).astype(np.float16)
    np.save(os.path.join(OUT, "tiny-cnn-fp16-input.npy"), x)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    y = sess.run(None, {g.input[0].name: x})[0]
    np.save(os.path.join(OUT, "tiny-cnn-fp16-expected-ort.npy"), y)
    print("wrote", OUT, y.dtype, y.shape)


if __name__ == "__main__":
    main()
