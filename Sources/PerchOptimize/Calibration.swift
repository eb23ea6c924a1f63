import Foundation
import PerchEngine
import PerchGraph

/// How an activation's range is chosen from the values seen during calibration.
public enum CalibrationMethod: String, Sendable, CaseIterable {
    /// The smallest and largest value seen.
    case minmax
    /// The 99.99th percentile of |x| (outliers are clipped).
    case percentile
    /// TensorRT's entropy calibration: the threshold minimizing KL(P‖Q) over a 2048-bin histogram.
    case entropy
    /// The threshold minimizing the expected squared quantization error (clipping + rounding).
    case mse
}

/// What calibration saw of one activation: its extremes and a bounded sample of its values.
public struct ActivationStats: Sendable {
    public var min: Float = .infinity
    public var max: Float = -.infinity
    /// Shape of the activation for one sample.
    public var shape: [Int] = []
    /// Up to `Calibrator.sampleCap` values, taken at an even stride from every calibration run.
    public var values: [Float] = []
    /// Sums over every value seen, per index of axis 1 (a Conv input's channels) and of the last
    /// axis (a Gemm/MatMul input's features): bias correction needs each input channel's mean.
    public var axis1Sums: [Double] = []
    public var lastAxisSums: [Double] = []
    /// Values seen in all (the sums' denominators times the axis length).
    public var valueCount = 0

    /// Mean value of each index of axis 1 (empty for tensors of rank < 2).
    public var axis1Means: [Float] { means(axis1Sums) }
    /// Mean value of each index of the last axis (empty for tensors of rank < 2).
    public var lastAxisMeans: [Float] { means(lastAxisSums) }

    private func means(_ sums: [Double]) -> [Float] {
        guard !sums.isEmpty, valueCount > 0 else { return [] }
        let perIndex = Double(valueCount) / Double(sums.count)
        return sums.map { Float($0 / perIndex) }
    }

    /// Adds one run's tensor to the per-channel sums.
    mutating func accumulateMeans(_ buf: UnsafeBufferPointer<Float>, shape: [Int]) {
        guard shape.count >= 2, buf.count > 0 else { return }
        let channels = shape[1], last = shape[shape.count - 1]
        let inner = Swift.max(1, buf.count / Swift.max(1, shape[0] * channels))
        if axis1Sums.count != channels { axis1Sums = [Double](repeating: 0, count: channels) }
        if lastAxisSums.count != last { lastAxisSums = [Double](repeating: 0, count: last) }
        var i = 0
        while i < buf.count {
            let c = (i / inner) % channels
            var s = 0.0
            for k in 0..<inner { s += Double(buf[i + k]) }
            axis1Sums[c] += s
            i += inner
        }
        i = 0
        while i < buf.count {
            for k in 0..<last { lastAxisSums[k] += Double(buf[i + k]) }
            i += last
        }
        valueCount += buf.count
    }
}

/// Runs the fp32 model over a dataset and records every activation that will be quantized.
public enum Calibrator {
    public static let sampleCap = 262_144
    public static let histogramBins = 2048

    /// Adds `tensors` as graph outputs, runs every sample, and returns their statistics.
    public static func collect(
        _ graph: Graph, tensors: [String], dataset: Dataset, threads: Int = 1, progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> [String: ActivationStats] {
        var g = graph
        let existing = Set(g.outputs.map { $0.name })
        for t in tensors where !existing.contains(t) {
            g.outputs.append(ValueInfo(name: t, type: TensorType(dtype: .f32, dims: [])))
        }
        let session = try Session(graph: g, options: SessionOptions(threads: threads))
        var stats: [String: ActivationStats] = [:]
        for (i, sample) in dataset.samples.enumerated() {
            let outs = try session.run(sample)
            for name in tensors {
                guard let t = outs[name], t.dtype == .f32 else { continue }
                var s = stats[name] ?? ActivationStats()
                s.shape = t.shape
                let perRun = Swift.max(1, sampleCap / Swift.max(1, dataset.count))
                let stride = Swift.max(1, t.count / perRun)
                t.withUnsafeBufferPointer(of: Float.self) { buf in
                    for v in buf {
                        if v < s.min { s.min = v }
                        if v > s.max { s.max = v }
                    }
                    var k = 0
                    while k < buf.count {
                        s.values.append(buf[k])
                        k += stride
                    }
                    s.accumulateMeans(buf, shape: t.shape)
                }
                stats[name] = s
            }
            progress(i + 1, dataset.count)
        }
        return stats
    }

    /// The real range `[lo, hi]` to quantize an activation to; it always contains 0.
    public static func range(_ s: ActivationStats, method: CalibrationMethod, levels: Int = 256) -> (Float, Float) {
        let lo = Swift.min(0, s.min.isFinite ? s.min : 0)
        let hi = Swift.max(0, s.max.isFinite ? s.max : 0)
        let absMax = Swift.max(-lo, hi)
        guard absMax > 0, !s.values.isEmpty else { return (lo, hi) }
        let threshold: Float
        switch method {
        case .minmax:
            return (lo, hi)
        case .percentile:
            let mags = s.values.map { Swift.abs($0) }.sorted()
            let idx = Swift.min(mags.count - 1, Int((Double(mags.count - 1) * 0.9999).rounded()))
            threshold = mags[idx]
        case .entropy:
            threshold = entropyThreshold(s.values, absMax: absMax, target: lo < 0 ? 128 : 256)
        case .mse:
            threshold = mseThreshold(s.values, absMax: absMax, levels: lo < 0 ? levels : levels)
        }
        let t = Swift.max(threshold, absMax * 1e-3)
        return (Swift.max(lo, -t), Swift.min(hi, t))
    }

    static func histogram(_ values: [Float], absMax: Float) -> [Double] {
        var hist = [Double](repeating: 0, count: histogramBins)
        let scale = Float(histogramBins) / absMax
        for v in values {
            let b = Swift.min(histogramBins - 1, Int(Swift.abs(v) * scale))
            hist[b] += 1
        }
        return hist
    }

    /// TensorRT-style KL calibration on |x|: for each candidate clip bin i (from `target` on), P is the
    /// histogram up to i with the tail folded into its last bin, Q is P merged into `target` levels and
    /// expanded back over P's non-empty bins; pick the i with the least KL(P‖Q).
    /// `target` is the number of levels on one side: 128 for a signed range, 256 for a
    /// non-negative one (uint8 spends all its levels on [0, T]).
    static func entropyThreshold(_ values: [Float], absMax: Float, target: Int = 128) -> Float {
        let hist = histogram(values, absMax: absMax)
        var bestI = histogramBins
        var bestKL = Double.infinity
        var total = 0.0
        for h in hist { total += h }
        var i = target
        while i <= histogramBins {
            var p = Array(hist[0..<i])
            var tail = 0.0
            for k in i..<histogramBins { tail += hist[k] }
            p[i - 1] += tail
            // Q: merge into `target` chunks, spread evenly over the non-zero bins of each chunk.
            var q = [Double](repeating: 0, count: i)
            let chunk = Double(i) / Double(target)
            for j in 0..<target {
                let start = Int((Double(j) * chunk).rounded(.down))
                let end = j == target - 1 ? i : Int((Double(j + 1) * chunk).rounded(.down))
                var sum = 0.0
                var nonZero = 0
                for k in start..<end {
                    sum += hist[k]
                    if hist[k] != 0 { nonZero += 1 }
                }
                if nonZero == 0 { continue }
                for k in start..<end where hist[k] != 0 { q[k] = sum / Double(nonZero) }
            }
            var pSum = 0.0
            var qSum = 0.0
            for k in 0..<i {
                pSum += p[k]
                qSum += q[k]
            }
            var kl = 0.0
            if pSum > 0 && qSum > 0 {
                for k in 0..<i where p[k] > 0 {
                    let pk = p[k] / pSum
                    let qk = q[k] / qSum
                    kl += qk > 0 ? pk * Foundation.log(pk / qk) : pk * 20
                }
            }
            if kl < bestKL {
                bestKL = kl
                bestI = i
            }
            i += 16
        }
        return (Float(bestI) + 0.5) * absMax / Float(histogramBins)
    }

    /// The clip threshold T minimizing Σ (clipping error² outside T + step²/12 inside).
    static func mseThreshold(_ values: [Float], absMax: Float, levels: Int) -> Float {
        let hist = histogram(values, absMax: absMax)
        let width = Double(absMax) / Double(histogramBins)
        var best = Double(absMax)
        var bestErr = Double.infinity
        var i = 16
        while i <= histogramBins {
            let t = Double(i) * width
            let step = 2 * t / Double(levels - 1)
            var err = 0.0
            for k in 0..<histogramBins where hist[k] > 0 {
                let center = (Double(k) + 0.5) * width
                if center > t {
                    err += hist[k] * ((center - t) * (center - t))
                } else {
                    err += hist[k] * step * step / 12
                }
            }
            if err < bestErr {
                bestErr = err
                best = t
            }
            i += 8
        }
        return Float(best)
    }
}
