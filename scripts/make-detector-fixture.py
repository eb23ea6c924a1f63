#!/usr/bin/env python3
"""Builds the small detector fixture whose graph ends in NonMaxSuppression over boxes decoded
from the image, and ONNX Runtime's outputs for one input.

Writes into examples/detector/ (small, committed):
  tiny-detector.onnx             Conv backbone → a head per 16×16 cell (4 box + 3 class channels)
                                 → Sigmoid decode to centre boxes → NonMaxSuppression (100 per
                                 class, IoU 0.45, score 0.5) → the selected boxes, scores and
                                 classes gathered and sorted by score (TopK with k = how many
                                 were selected), plus NonZero over the cells whose best class
                                 score is over 0.9: the shapes of all four outputs depend on values
  tiny-detector-input.npy        the fixed input image [1, 3, 64, 64]
  tiny-detector-expected-*.npy   ONNX Runtime's outputs for it (boxes, scores, classes, confident)

Run: python3 scripts/make-detector-fixture.py
"""
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "examples", "detector")


def build(rng):
    inits = []

    def const(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def conv_weights(name, cout, cin, k):
        const(name + ".w", (rng.standard_normal((cout, cin, k, k)) * (1.5 / np.sqrt(cin * k * k))).astype(np.float32))
        const(name + ".b", (rng.standard_normal(cout) * 0.1).astype(np.float32))
        return [name + ".w", name + ".b"]

    cells = 16 * 16
    n = helper.make_node
    nodes = [
        n("Conv", ["image"] + conv_weights("c1", 8, 3, 3), ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
        n("Relu", ["c1"], ["r1"]),
        n("Conv", ["r1"] + conv_weights("c2", 16, 8, 3), ["c2"], strides=[2, 2], pads=[1, 1, 1, 1]),
        n("Relu", ["c2"], ["r2"]),
        n("Conv", ["r2"] + conv_weights("head", 7, 16, 1), ["head"]),
        n("Reshape", ["head", const("head_shape", np.array([1, 7, cells], np.int64))], ["flat_head"]),
        n("Transpose", ["flat_head"], ["per_cell"], perm=[0, 2, 1]),
        n("Slice", ["per_cell", const("s0", np.array([0], np.int64)), const("s4", np.array([4], np.int64)),
                    const("ax2", np.array([2], np.int64))], ["box_t"]),
        n("Slice", ["per_cell", "s4", const("s7", np.array([7], np.int64)), "ax2"], ["cls_t"]),
        n("Sigmoid", ["box_t"], ["box_s"]),
        n("Mul", ["box_s", const("img", np.array(64, np.float32))], ["boxes"]),
        n("Sigmoid", ["cls_t"], ["cls_s"]),
        n("Transpose", ["cls_s"], ["scores"], perm=[0, 2, 1]),
        n("NonMaxSuppression", ["boxes", "scores", const("max_out", np.array([100], np.int64)),
                                const("iou", np.array([0.45], np.float32)), const("thr", np.array([0.5], np.float32))],
          ["selected"], center_point_box=1),
        n("Gather", ["selected", const("one", np.array(1, np.int64))], ["cls_idx"], axis=1),
        n("Gather", ["selected", const("two", np.array(2, np.int64))], ["box_idx"], axis=1),
        n("Squeeze", ["boxes", const("ax0", np.array([0], np.int64))], ["boxes2d"]),
        n("Gather", ["boxes2d", "box_idx"], ["sel_boxes"], axis=0),
        n("Reshape", ["scores", const("minus1", np.array([-1], np.int64))], ["flat_scores"]),
        n("Mul", ["cls_idx", const("cells", np.array(cells, np.int64))], ["cls_off"]),
        n("Add", ["cls_off", "box_idx"], ["flat_idx"]),
        n("Gather", ["flat_scores", "flat_idx"], ["sel_scores"], axis=0),
        n("Shape", ["sel_scores"], ["k"]),
        n("TopK", ["sel_scores", "k"], ["out_scores", "order"], axis=0, largest=1, sorted=1),
        n("Gather", ["sel_boxes", "order"], ["out_boxes"], axis=0),
        n("Gather", ["cls_idx", "order"], ["out_classes"], axis=0),
        n("ReduceMax", ["scores"], ["best"], axes=[1], keepdims=0),
        n("Greater", ["best", const("sure", np.array(0.9, np.float32))], ["sure_mask"]),
        n("NonZero", ["sure_mask"], ["confident"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny-detector",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("out_boxes", TensorProto.FLOAT, ["n", 4]),
         helper.make_tensor_value_info("out_scores", TensorProto.FLOAT, ["n"]),
         helper.make_tensor_value_info("out_classes", TensorProto.INT64, ["n"]),
         helper.make_tensor_value_info("confident", TensorProto.INT64, [2, "m"])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="perch-fixtures")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(7)
    model = build(rng)
    image = rng.standard_normal((1, 3, 64, 64)).astype(np.float32)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    boxes, scores, classes, confident = sess.run(None, {"image": image})
    onnx.save(model, os.path.join(OUT, "tiny-detector.onnx"))
    np.save(os.path.join(OUT, "tiny-detector-input.npy"), image)
    for name, value in [("boxes", boxes), ("scores", scores), ("classes", classes), ("confident", confident)]:
        np.save(os.path.join(OUT, "tiny-detector-expected-" + name + ".npy"), value)
    print("selected", len(scores), "boxes; classes", np.bincount(classes, minlength=3).tolist(),
          "; confident cells", confident.shape[1])


if __name__ == "__main__":
    main()
