import PerchGraph

/// NonZero and NonMaxSuppression: operators whose output shape depends on input values.
///
/// A session fixes every tensor's shape when it prepares, so these compute their result in
/// `prepare` from known input values and the kernel writes it. When an input is computed while
/// running — a detector's NMS over boxes decoded from the image — preparing throws
/// `dynamicValue`, and the session defers this node and everything after it to a
/// `ValueDependentStage`, planned once those values exist.
extension IndexingOperator {
    static func dataDependent(_ ctx: OpContext, input: Int) throws(EngineError) -> Tensor {
        if let v = ctx.value(input) { return v }
        throw .dynamicValue(node: ctx.node.displayName, op: ctx.node.op.rawValue, input: ctx.node.inputs[input])
    }

    /// A kernel writing the int64 values computed at prepare time.
    static func int64Result(_ values: [Int64], shape: [Int]) -> PreparedOp {
        PreparedOp(outputs: [TensorDesc(dtype: .i64, shape: shape)]) { args in
            let p = args.output(0).pointer(as: Int64.self)
            for i in 0..<values.count { p[i] = values[i] }
        }
    }

    /// NonZero: `[rank, count]` int64 coordinates of the non-zero elements in row-major order.
    static func prepareNonZero(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let t = try dataDependent(ctx, input: 0)
        let rank = x.rank
        let values = t.doubles
        var hits = [Int]()
        for (i, v) in values.enumerated() where v != 0 { hits.append(i) }
        let strides = contiguousStrides(x.shape)
        var out = [Int64](repeating: 0, count: rank * hits.count)
        for d in 0..<rank {
            for (j, i) in hits.enumerated() {
                out[d * hits.count + j] = Int64((i / strides[d]) % x.shape[d])
            }
        }
        return int64Result(out, shape: [rank, hits.count])
    }

    /// NonMaxSuppression (opset 10/11): per batch and class, greedy selection in descending score
    /// (ties: lower box index first) of boxes with score > `score_threshold` whose IoU with every
    /// box already selected for that class is ≤ `iou_threshold`, at most
    /// `max_output_boxes_per_class` (default 0: none). `center_point_box = 0`: `[y1, x1, y2, x2]`
    /// (either diagonal), 1: `[x_center, y_center, width, height]`. Output `[selected, 3]` int64
    /// `(batch, class, box)`.
    static func prepareNonMaxSuppression(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let bd = try ctx.input(0)
        let sd = try ctx.input(1)
        guard bd.rank == 3 && bd.shape[2] == 4 && sd.rank == 3 && sd.shape[0] == bd.shape[0] && sd.shape[2] == bd.shape[1] else {
            throw ctx.invalid("boxes " + shapeText(bd.shape) + " and scores " + shapeText(sd.shape)
                + " must be [batches, boxes, 4] and [batches, classes, boxes]")
        }
        let boxes = try dataDependent(ctx, input: 0).doubles
        let scores = try dataDependent(ctx, input: 1).doubles
        var maxPerClass = 0
        if ctx.has(2) {
            let v = try dataDependent(ctx, input: 2).int64s
            maxPerClass = v.isEmpty ? 0 : Int(clamping: v[0])
        }
        var iouThreshold = 0.0
        if ctx.has(3) {
            let v = try dataDependent(ctx, input: 3).doubles
            iouThreshold = v.isEmpty ? 0 : v[0]
        }
        var scoreThreshold: Double? = nil
        if ctx.has(4) {
            let v = try dataDependent(ctx, input: 4).doubles
            scoreThreshold = v.isEmpty ? nil : v[0]
        }
        let centerPoint = ctx.attributes.int("center_point_box", default: 0) != 0
        let batches = bd.shape[0], count = bd.shape[1], classes = sd.shape[1]

        // Corners (y1, x1, y2, x2) with y1 <= y2 and x1 <= x2.
        var corners = [Double](repeating: 0, count: batches * count * 4)
        for b in 0..<(batches * count) {
            let v0 = boxes[b * 4], v1 = boxes[b * 4 + 1], v2 = boxes[b * 4 + 2], v3 = boxes[b * 4 + 3]
            if centerPoint {
                corners[b * 4] = v1 - v3 / 2
                corners[b * 4 + 1] = v0 - v2 / 2
                corners[b * 4 + 2] = v1 + v3 / 2
                corners[b * 4 + 3] = v0 + v2 / 2
            } else {
                corners[b * 4] = Swift.min(v0, v2)
                corners[b * 4 + 1] = Swift.min(v1, v3)
                corners[b * 4 + 2] = Swift.max(v0, v2)
                corners[b * 4 + 3] = Swift.max(v1, v3)
            }
        }
        func suppresses(_ a: Int, _ b: Int) -> Bool {
            let ya1 = corners[a * 4], xa1 = corners[a * 4 + 1], ya2 = corners[a * 4 + 2], xa2 = corners[a * 4 + 3]
            let yb1 = corners[b * 4], xb1 = corners[b * 4 + 1], yb2 = corners[b * 4 + 2], xb2 = corners[b * 4 + 3]
            let areaA = (ya2 - ya1) * (xa2 - xa1)
            let areaB = (yb2 - yb1) * (xb2 - xb1)
            if areaA <= 0 || areaB <= 0 { return false }
            let ih = Swift.min(ya2, yb2) - Swift.max(ya1, yb1)
            let iw = Swift.min(xa2, xb2) - Swift.max(xa1, xb1)
            if ih <= 0 || iw <= 0 { return false }
            let inter = ih * iw
            return inter / (areaA + areaB - inter) > iouThreshold
        }

        var selected = [Int64]()
        if maxPerClass > 0 {
            for b in 0..<batches {
                for c in 0..<classes {
                    let base = (b * classes + c) * count
                    var candidates = [Int]()
                    for i in 0..<count {
                        let s = scores[base + i]
                        if let t = scoreThreshold, !(s > t) { continue }
                        candidates.append(i)
                    }
                    candidates.sort { scores[base + $0] > scores[base + $1] || (scores[base + $0] == scores[base + $1] && $0 < $1) }
                    var kept = [Int]()
                    for i in candidates {
                        if kept.count >= maxPerClass { break }
                        var keep = true
                        for k in kept where suppresses(b * count + k, b * count + i) {
                            keep = false
                            break
                        }
                        if keep {
                            kept.append(i)
                            selected += [Int64(b), Int64(c), Int64(i)]
                        }
                    }
                }
            }
        }
        return int64Result(selected, shape: [selected.count / 3, 3])
    }
}
