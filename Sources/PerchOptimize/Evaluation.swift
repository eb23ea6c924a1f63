import Foundation
import PerchEngine
import PerchGraph

/// How a model's outputs compare with the fp32 model's on a dataset.
public struct Agreement: Sendable, Equatable {
    /// Mean over samples and compared values of their cosine similarity.
    public var cosine: Double
    /// Largest absolute difference of any compared element.
    public var maxAbsError: Double
    /// Fraction of decisions that match fp32's. For a detector ending in NonMaxSuppression, the
    /// selections: |fp32's ∩ this model's selected (batch, class, box)| / |∪|. For a dense map
    /// `[N, C, H, W]` (H·W > 1: a segmenter, a text detector's probability map), the class of each
    /// pixel (arg-max over C), or with C = 1 the pixels above the map's threshold (0.5 for values
    /// in [0, 1], else 0) as sets, |∩| / |∪|. Otherwise the arg-max over the last axis of the first
    /// compared value (trailing 1s dropped), row by row: one per sample for a classifier's
    /// `[1, classes]` or `[1, classes, 1, 1]`, one per time step for a recognizer's
    /// `[steps, 1, classes]`.
    public var top1Agreement: Double
    /// Fraction of samples whose arg-max equals the label (when labels are given).
    public var top1Accuracy: Double?
}

/// What stands for a model's result when comparing it with another precision of it.
public struct ComparedValues: Sendable, Equatable {
    /// Floating-point values compared element by element: every floating-point graph output
    /// whose shape is planned up front, and the values a value-dependent part waits for (a
    /// detector's decoded boxes and scores, read by its NonMaxSuppression).
    public var dense: [String]
    /// NonMaxSuppression outputs, compared as sets of selected boxes (value-dependent models).
    public var selections: [String]
    /// True when `dense` includes the inputs of a value-dependent part.
    public var beforeValueDependentPart: Bool

    public var all: [String] { dense + selections }
}

public enum Evaluator {
    public static func comparedValues(_ graph: Graph, sample: [String: Tensor]) throws -> ComparedValues {
        let session = try Session(graph: graph)
        try session.prepare(feeds: sample)
        let stage = session.valueDependentInputs
        var dense = [String]()
        var selections = [String]()
        // Outputs planned up front (all of them, without a value-dependent stage).
        for output in graph.outputs where session.outputDescs[output.name]?.dtype.isFloatingPoint ?? false { dense.append(output.name) }
        if !stage.isEmpty {
            for (name, desc) in stage where desc.dtype.isFloatingPoint && desc.count > 1 && !dense.contains(name) { dense.append(name) }
            for node in graph.nodes where node.op == .nonMaxSuppression {
                if let out = node.outputs.first, !out.isEmpty { selections.append(out) }
            }
        }
        if dense.isEmpty && selections.isEmpty, let first = graph.outputs.first?.name { dense = [first] }
        return ComparedValues(dense: dense, selections: selections, beforeValueDependentPart: !stage.isEmpty)
    }

    /// |a ∩ b| / |a ∪ b| of the rows of two `[k, 3]` NonMaxSuppression selections (1 if both
    /// are empty).
    static func selectionOverlap(_ a: Tensor, _ b: Tensor) -> Double {
        func rows(_ t: Tensor) -> Set<[Int64]> {
            let v = t.int64s
            let width = Swift.max(1, t.shape.last ?? 1)
            var set = Set<[Int64]>()
            var i = 0
            while i + width <= v.count {
                set.insert(Array(v[i..<i + width]))
                i += width
            }
            return set
        }
        let ra = rows(a), rb = rows(b)
        let union = ra.union(rb).count
        return union == 0 ? 1 : Double(ra.intersection(rb).count) / Double(union)
    }

    /// The values `names` (default: the first graph output) of `graph` for each sample.
    /// `integerKernels: false` runs QDQ graphs as fake-quant in float32 (same rounding points,
    /// float accumulation): what sensitivity ranking needs, without the fused kernels' preparation.
    public static func outputs(_ graph: Graph, _ dataset: Dataset, names: [String]? = nil, threads: Int = 1, integerKernels: Bool = true,
                               progress: (Int, Int) -> Void = { _, _ in }) throws -> [[Tensor]] {
        guard let first = graph.outputs.first?.name else {
            throw OptimizeError.badModel("the model has no outputs", hint: "export it with at least one output")
        }
        let wanted = names ?? [first]
        var g = graph
        for name in wanted where !g.outputs.contains(where: { $0.name == name }) {
            g.outputs.append(ValueInfo(name: name, type: TensorType(dtype: .f32, dims: [])))
        }
        let session = try Session(graph: g, options: SessionOptions(threads: threads, fuseQuantized: integerKernels))
        var result = [[Tensor]]()
        result.reserveCapacity(dataset.count)
        for (i, sample) in dataset.samples.enumerated() {
            try session.bind(sample)
            try session.execute()
            var values = [Tensor]()
            for name in wanted {
                guard let v = session.output(name) else {
                    throw OptimizeError.badModel("value '" + name + "' was not computed", hint: "report this model to the Perch developers")
                }
                values.append(v)
            }
            result.append(values)
            progress(i + 1, dataset.count)
        }
        return result
    }

    public static func argmax(_ t: Tensor) -> Int {
        let v = GraphEditing.floats(t)
        var best = 0
        for i in v.indices where v[i] > v[best] { best = i }
        return best
    }

    /// Arg-max over each row of `width` values of `t` (default: its last axis).
    static func rowArgmax(_ t: Tensor, width: Int? = nil) -> [Int] {
        let v = GraphEditing.floats(t)
        let width = Swift.max(1, width ?? t.shape.last ?? 1)
        var result = [Int]()
        var row = 0
        while row * width < v.count {
            let base = row * width
            var best = 0
            for j in 1..<Swift.min(width, v.count - base) where v[base + j] > v[base + best] { best = j }
            result.append(best)
            row += 1
        }
        return result
    }

    /// The share of `reference`'s decisions `candidate` makes too (see `Agreement.top1Agreement`).
    static func decisionAgreement(_ reference: Tensor, _ candidate: Tensor) -> Double {
        var shape = reference.shape
        while shape.count > 1 && shape.last == 1 { shape.removeLast() }
        if shape.count == 4 && shape[2] * shape[3] > 1 && candidate.shape == reference.shape {
            // A dense map: the row arg-max would run along W, where a probability map's values tie
            // (a text detector came out all fp32, its "rows" disagreeing at any precision).
            let a = GraphEditing.floats(reference), b = GraphEditing.floats(candidate)
            let channels = shape[1], plane = shape[2] * shape[3]
            if channels == 1 {
                let probability = a.allSatisfy { $0 >= 0 && $0 <= 1 }
                let threshold: Float = probability ? 0.5 : 0
                var both = 0, either = 0
                for i in 0..<Swift.min(a.count, b.count) {
                    let x = a[i] > threshold, y = b[i] > threshold
                    if x && y { both += 1 }
                    if x || y { either += 1 }
                }
                return either == 0 ? 1 : Double(both) / Double(either)
            }
            var same = 0, pixels = 0
            for n in 0..<shape[0] {
                for p in 0..<plane {
                    var ba = 0, bb = 0
                    for k in 1..<channels {
                        let i = (n * channels + k) * plane + p
                        if a[i] > a[(n * channels + ba) * plane + p] { ba = k }
                        if b[i] > b[(n * channels + bb) * plane + p] { bb = k }
                    }
                    if ba == bb { same += 1 }
                    pixels += 1
                }
            }
            return pixels == 0 ? 1 : Double(same) / Double(pixels)
        }
        let ra = rowArgmax(reference, width: shape.last), ca = rowArgmax(candidate, width: shape.last)
        var same = 0
        for (x, y) in zip(ra, ca) where x == y { same += 1 }
        return ra.count == ca.count && !ra.isEmpty ? Double(same) / Double(ra.count) : (ra.count == ca.count ? 1 : 0)
    }

    public static func accuracy(_ outs: [[Tensor]], labels: [Int]) -> Double {
        var right = 0
        for (o, l) in zip(outs, labels) where o.first.map(argmax) == l { right += 1 }
        return Double(right) / Double(Swift.max(1, Swift.min(outs.count, labels.count)))
    }

    /// Compares per-sample values (as `outputs` returns them); the last `selections` of each
    /// sample are NonMaxSuppression selections, the rest are compared element by element.
    public static func compare(reference: [[Tensor]], candidate: [[Tensor]], labels: [Int]?, selections: Int = 0) -> Agreement {
        var cosSum = 0.0
        var maxAbs = 0.0
        var agreeSum = 0.0
        for (allR, allC) in zip(reference, candidate) {
            let denseCount = Swift.max(0, Swift.min(allR.count, allC.count) - selections)
            let rs = allR.prefix(denseCount), cs = allC.prefix(denseCount)
            var sampleCos = 0.0
            for (r, c) in zip(rs, cs) {
                let a = GraphEditing.floats(r)
                let b = GraphEditing.floats(c)
                var dot = 0.0, na = 0.0, nb = 0.0
                for i in 0..<Swift.min(a.count, b.count) {
                    let x = Double(a[i]), y = Double(b[i])
                    dot += x * y
                    na += x * x
                    nb += y * y
                    maxAbs = Swift.max(maxAbs, Swift.abs(x - y))
                }
                sampleCos += (na == 0 && nb == 0) ? 1 : dot / Swift.max(1e-30, (na * nb).squareRoot())
            }
            cosSum += denseCount == 0 ? 1 : sampleCos / Double(denseCount)
            if selections > 0 && allR.count > denseCount {
                var overlap = 0.0
                for k in denseCount..<Swift.min(allR.count, allC.count) { overlap += selectionOverlap(allR[k], allC[k]) }
                agreeSum += overlap / Double(Swift.min(allR.count, allC.count) - denseCount)
            } else if let r = rs.first, let c = cs.first {
                agreeSum += decisionAgreement(r, c)
            }
        }
        let n = Double(Swift.max(1, reference.count))
        return Agreement(
            cosine: cosSum / n, maxAbsError: maxAbs, top1Agreement: agreeSum / n,
            top1Accuracy: labels.map { accuracy(candidate, labels: $0) })
    }
}
