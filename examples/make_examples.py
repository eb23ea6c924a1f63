#!/usr/bin/env python3
"""Builds the small example models Perch ships (deterministic weights, seed 0), with onnx.helper.

  examples/tiny-cnn.onnx   a MobileNet-style block stack: Conv+BN+Relu, depthwise Conv, pointwise
                           Conv, HardSwish, GlobalAveragePool, Flatten, Gemm, Softmax; input
                           `image` [batch,3,32,32] → `probabilities` [batch,10]
  examples/tiny-cnn-input.npy   one input sample
  examples/tiny-cnn-expected-ort.npy   ONNX Runtime's output for it, the reference the tests
                           compare Perch with (written when onnxruntime is installed)

Run: python3 examples/make_examples.py   (needs numpy and onnx)
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def tiny_cnn():
    rng = np.random.default_rng(0)
    inits = []
    nodes = []

    def w(name, *shape, scale=None):
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        arr = (rng.standard_normal(shape) * (scale or np.sqrt(2.0 / fan_in))).astype(np.float32)
        inits.append(numpy_helper.from_array(arr, name))
        return name

    def bn(x, c, prefix):
        inits.append(numpy_helper.from_array((1 + 0.1 * rng.standard_normal(c)).astype(np.float32), prefix + "_gamma"))
        inits.append(numpy_helper.from_array((0.1 * rng.standard_normal(c)).astype(np.float32), prefix + "_beta"))
        inits.append(numpy_helper.from_array((0.1 * rng.standard_normal(c)).astype(np.float32), prefix + "_mean"))
        inits.append(numpy_helper.from_array((0.5 + rng.random(c)).astype(np.float32), prefix + "_var"))
        out = prefix + "_bn"
        nodes.append(helper.make_node("BatchNormalization", [x, prefix + "_gamma", prefix + "_beta", prefix + "_mean", prefix + "_var"], [out], name=prefix + "/bn"))
        return out

    x = "image"
    nodes.append(helper.make_node("Conv", [x, w("stem_w", 16, 3, 3, 3)], ["stem"], name="stem/conv", pads=[1, 1, 1, 1], strides=[2, 2]))
    h = bn("stem", 16, "stem")
    nodes.append(helper.make_node("Relu", [h], ["stem_relu"], name="stem/relu"))
    h = "stem_relu"
    cin = 16
    for i, (cout, stride) in enumerate([(24, 1), (32, 2), (32, 1)]):
        p = "block%d" % i
        nodes.append(helper.make_node("Conv", [h, w(p + "_dw", cin, 1, 3, 3)], [p + "_dwout"], name=p + "/dw", group=cin, pads=[1, 1, 1, 1], strides=[stride, stride]))
        d = bn(p + "_dwout", cin, p + "_dwbn")
        nodes.append(helper.make_node("Clip", [d, "clip_min", "clip_max"], [p + "_relu6"], name=p + "/relu6"))
        nodes.append(helper.make_node("Conv", [p + "_relu6", w(p + "_pw", cout, cin, 1, 1), w(p + "_pwb", cout, scale=0.05)], [p + "_pwout"], name=p + "/pw"))
        nodes.append(helper.make_node("HardSwish", [p + "_pwout"], [p + "_out"], name=p + "/hswish"))
        h = p + "_out"
        cin = cout
    inits.append(numpy_helper.from_array(np.array(0.0, np.float32), "clip_min"))
    inits.append(numpy_helper.from_array(np.array(6.0, np.float32), "clip_max"))
    nodes.append(helper.make_node("GlobalAveragePool", [h], ["pooled"], name="head/pool"))
    nodes.append(helper.make_node("Flatten", ["pooled"], ["flat"], name="head/flatten", axis=1))
    nodes.append(helper.make_node("Gemm", ["flat", w("fc_w", 10, cin, scale=1.5), w("fc_b", 10, scale=0.05)], ["logits"], name="head/fc", transB=1))
    nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], name="head/softmax", axis=-1))
    graph = helper.make_graph(
        nodes, "tiny-cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        inits)
    model = helper.make_model(graph, producer_name="perch-examples", opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    model = tiny_cnn()
    onnx.save(model, os.path.join(HERE, "tiny-cnn.onnx"))
    sample = np.random.default_rng(1).random((1, 3, 32, 32), dtype=np.float32)
    np.save(os.path.join(HERE, "tiny-cnn-input.npy"), sample)
    print("wrote examples/tiny-cnn.onnx and examples/tiny-cnn-input.npy")
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime not installed: reference output not refreshed")
    else:
        session = ort.InferenceSession(os.path.join(HERE, "tiny-cnn.onnx"))
        np.save(os.path.join(HERE, "tiny-cnn-expected-ort.npy"), session.run(None, {"image": sample})[0])
        print("wrote examples/tiny-cnn-expected-ort.npy (onnxruntime " + ort.__version__ + ")")
