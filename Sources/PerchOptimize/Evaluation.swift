import Foundation
import PerchEngine
import PerchGraph

/// How a model's outputs compare with the fp32 model's on a dataset.
public struct Agreement: Sendable, Equatable {
    /// Mean over samples of the cosine similarity of the first graph output.
    public var cosine: Double
    /// Largest absolute difference of any output element.
    public var maxAbsError: Double
    /// Fraction of samples whose arg-max class matches fp32's.
    public var top1Agreement: Double
    /// Fraction of samples whose arg-max equals the label (when labels are given).
    public var top1Accuracy: Double?
}

public enum Evaluator {
    /// The first graph output of `graph` for each sample.
    /// `integerKernels: false` runs QDQ graphs as fake-quant in float32 (same rounding points,
    /// float accumulation): what sensitivity ranking needs, without the fused kernels' preparation.
    public static func outputs(_ graph: Graph, _ dataset: Dataset, threads: Int = 1, integerKernels: Bool = true,
                               progress: (Int, Int) -> Void = { _, _ in }) throws -> [Tensor] {
        let session = try Session(graph: graph, options: SessionOptions(threads: threads, fuseQuantized: integerKernels))
        guard let first = graph.outputs.first?.name else {
            throw OptimizeError.badModel("the model has no outputs", hint: "export it with at least one output")
        }
        var result = [Tensor]()
        result.reserveCapacity(dataset.count)
        for (i, sample) in dataset.samples.enumerated() {
            try session.bind(sample)
            try session.execute()
            result.append(session.output(first)!)
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

    public static func accuracy(_ outs: [Tensor], labels: [Int]) -> Double {
        var right = 0
        for (o, l) in zip(outs, labels) where argmax(o) == l { right += 1 }
        return Double(right) / Double(Swift.max(1, Swift.min(outs.count, labels.count)))
    }

    public static func compare(reference: [Tensor], candidate: [Tensor], labels: [Int]?) -> Agreement {
        var cosSum = 0.0
        var maxAbs = 0.0
        var agree = 0
        for (r, c) in zip(reference, candidate) {
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
            cosSum += (na == 0 && nb == 0) ? 1 : dot / Swift.max(1e-30, (na * nb).squareRoot())
            if argmax(r) == argmax(c) { agree += 1 }
        }
        let n = Double(Swift.max(1, reference.count))
        return Agreement(
            cosine: cosSum / n, maxAbsError: maxAbs, top1Agreement: Double(agree) / n,
            top1Accuracy: labels.map { accuracy(candidate, labels: $0) })
    }
}
