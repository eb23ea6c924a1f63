import Foundation
import PerchEngine
import PerchGraph
import PerchProfiles

/// What `perch optimize` was asked for.
public struct OptimizeOptions: Sendable {
    public var method: CalibrationMethod = .minmax
    /// Largest accepted top-1 drop in percentage points; nil = the profile's budget, else 1.
    public var maxAccuracyDrop: Double?
    public var calibration: Dataset?
    public var eval: Dataset?
    public var labels: [Int]?
    /// Synthetic samples used when no calibration set is given.
    public var syntheticSamples = 8
    /// Per-layer sensitivity is measured on at most this many eval samples: it runs the model once
    /// per layer, so this bounds the optimizer's time; it only ranks layers (the chosen plan is
    /// measured on the whole eval set).
    public var sensitivitySamples = 32
    /// Fold the expected output shift of rounded weights into int8 layers' biases; kept only when
    /// it raises the all-int8 model's agreement with fp32 on the eval set.
    public var biasCorrection = true
    /// Threads each model evaluation runs on (calibration, sensitivity, selection).
    public var threads = ProcessInfo.processInfo.activeProcessorCount

    public init() {}
}

/// The optimizer's stages, for progress reporting.
public enum OptimizeStage: String, Sendable {
    case simplify, calibrate, sensitivity, select, evaluate, memory
}

/// One layer's outcome.
public struct LayerDecision: Sendable {
    public var name: String
    public var op: String
    public var macs: Int
    public var weightCount: Int
    /// 1 − cosine similarity of the output with only this layer in int8.
    public var sensitivity: Double
    /// Accuracy drop (points) with only this layer in int8.
    public var drop: Double
    public var precision: Precision
}

public struct OptimizationReport: Sendable {
    public var model: String = ""
    public var profile: String = ""
    public var method: CalibrationMethod = .minmax
    public var calibrationSamples = 0
    public var calibrationSynthetic = false
    public var evalSamples = 0
    public var passes: [(String, Int)] = []
    public var nodesBefore = 0
    public var nodesAfter = 0
    public var fileBytesBefore = 0
    public var fileBytesAfter = 0
    public var weightsBytesBefore = 0
    public var weightsBytesAfter = 0
    public var layers: [LayerDecision] = []
    public var budgetPoints = 0.0
    /// Accuracy drop of the chosen plan in points (labels) or top-1 disagreement in points.
    public var dropPoints = 0.0
    public var fp32Accuracy: Double?
    public var optimizedAccuracy: Double?
    public var agreement: Agreement?
    /// The values compared with fp32 (`Evaluator.comparedValues`).
    public var compared = ComparedValues(dense: [], selections: [], beforeValueDependentPart: false)
    public var pureInt8Drop: Double?
    public var arenaBytes = 0
    public var peakBytes = 0
    public var memoryBudgetBytes = 0
    public var estimatedCostFP32 = 0.0
    public var estimatedCost = 0.0
    /// The calibration method whose ranges the result uses: `method`, or minmax when `method`
    /// clipped so much that the all-int8 model agreed less with fp32 than with min/max ranges.
    public var methodUsed: CalibrationMethod = .minmax
    /// "applied", "off" (not asked for) or "not kept" (it lowered agreement with fp32).
    public var biasCorrection = "off"
    public var stepSeconds: [(String, Double)] = []
    public var warnings: [String] = []

    /// The report as JSON-serializable values (for `--report`).
    public var jsonObject: [String: Any] {
        var o: [String: Any] = [
            "model": model, "profile": profile, "method": method.rawValue, "method_used": methodUsed.rawValue, "bias_correction": biasCorrection,
            "calibration": ["samples": calibrationSamples, "synthetic": calibrationSynthetic],
            "eval_samples": evalSamples,
            "passes": passes.map { ["name": $0.0, "rewrites": $0.1] },
            "nodes": ["before": nodesBefore, "after": nodesAfter],
            "size_bytes": ["file_before": fileBytesBefore, "file_after": fileBytesAfter,
                           "weights_before": weightsBytesBefore, "weights_after": weightsBytesAfter],
            "layers": layers.map {
                ["name": $0.name, "op": $0.op, "macs": $0.macs, "weights": $0.weightCount,
                 "sensitivity": $0.sensitivity, "int8_drop_points": $0.drop, "precision": $0.precision.rawValue] as [String: Any]
            },
            "accuracy": [
                "budget_points": budgetPoints, "drop_points": dropPoints,
                "fp32_top1": fp32Accuracy as Any, "optimized_top1": optimizedAccuracy as Any,
                "pure_int8_drop_points": pureInt8Drop as Any,
            ] as [String: Any],
            "memory": ["weights_bytes": weightsBytesAfter, "arena_bytes": arenaBytes, "peak_bytes": peakBytes,
                       "budget_bytes": memoryBudgetBytes],
            "estimated_cost": ["fp32": estimatedCostFP32, "optimized": estimatedCost],
            "step_seconds": Dictionary(stepSeconds.map { ($0.0, $0.1) }, uniquingKeysWith: { a, b in a + b }),
            "warnings": warnings,
        ]
        if let a = agreement {
            o["agreement"] = ["cosine": a.cosine, "max_abs_error": a.maxAbsError, "top1_agreement": a.top1Agreement,
                              "compared": compared.dense, "compared_selections": compared.selections,
                              "before_value_dependent_part": compared.beforeValueDependentPart] as [String: Any]
        }
        return o
    }
}

public struct OptimizationResult {
    public var graph: Graph
    public var report: OptimizationReport
}

/// Relative cost of one multiply-accumulate by precision on a profile's CPU (fp32 = 1).
public struct CostModel: Sendable {
    public var profile: DeviceProfile

    public init(profile: DeviceProfile) { self.profile = profile }

    public func cost(_ p: Precision) -> Double {
        switch p {
        case .fp32: return 1
        case .fp16: return profile.supportsFP16Arithmetic ? 0.5 : 1.05
        case .int8:
            if profile.accelerator.isIntegerOnly { return 0.05 }
            return profile.supportsInt8Dot ? 0.25 : (profile.hasVectorUnit ? 0.5 : 0.8)
        }
    }

    /// Precisions a layer may take, cheapest first: an int8-only accelerator gets int8 only; fp16
    /// compute only where the CPU has fp16 arithmetic.
    public var allowed: [Precision] {
        if profile.accelerator.isIntegerOnly { return [.int8] }
        return profile.supportsFP16Arithmetic ? [.int8, .fp16, .fp32] : [.int8, .fp32]
    }
}

/// Device-aware optimization: simplify, calibrate, measure per-layer sensitivity, choose a
/// precision per layer that meets the accuracy budget at the least estimated cost, check memory.
public final class Optimizer {
    public let profile: DeviceProfile
    public let options: OptimizeOptions
    public var progress: (OptimizeStage, Int, Int) -> Void = { _, _, _ in }

    public init(profile: DeviceProfile, options: OptimizeOptions) {
        self.profile = profile
        self.options = options
    }

    public func run(_ input: Graph, name: String = "") throws -> OptimizationResult {
        var report = OptimizationReport()
        report.model = name
        report.profile = profile.name
        report.method = options.method
        report.memoryBudgetBytes = profile.memoryBudgetBytes
        var clock = Date()
        func lap(_ stage: OptimizeStage) {
            let now = Date()
            report.stepSeconds.append((stage.rawValue, now.timeIntervalSince(clock)))
            clock = now
        }
        var graph = input
        try graph.validate()
        report.nodesBefore = graph.nodes.count
        report.fileBytesBefore = PerchModelFile.encode(graph).count
        report.weightsBytesBefore = graph.weightsBytes
        if HalfModels.widen(&graph) {
            report.warnings.append("the model computes in float16: it is optimized from float32 (its float16 inputs and outputs are kept)")
        }

        // 1. Simplify.
        report.passes = try Simplifier.simplify(&graph)
        lap(.simplify)

        // 2. Data.
        let inputs = graph.runtimeInputs
        var calibration = options.calibration ?? Dataset.synthesize(inputs: inputs, count: options.syntheticSamples)
        if options.calibration == nil {
            report.warnings.append("no --calibration data: ranges come from " + String(calibration.count) + " synthetic uniform [0,1) inputs; pass real samples for a usable int8 model")
        }
        if calibration.count == 0 { calibration = Dataset.synthesize(inputs: inputs, count: 1) }
        report.calibrationSamples = calibration.count
        report.calibrationSynthetic = calibration.isSynthetic
        let evalSet = options.eval ?? calibration
        report.evalSamples = evalSet.count
        let labels = options.labels
        if let l = labels, l.count != evalSet.count {
            throw OptimizeError.badDataset("labels hold " + String(l.count) + " classes but the eval set has " + String(evalSet.count) + " samples",
                                           hint: "give one label per eval sample")
        }
        let budget = options.maxAccuracyDrop ?? profile.budgets.maxAccuracyDrop ?? 1.0
        report.budgetPoints = budget

        // Memory before anything expensive: even all-int8 must fit.
        var layers = Quantizer.layers(graph)
        let fp32Session = try Session(graph: graph)
        try fp32Session.prepare(feeds: calibration.samples[0])
        let arena = fp32Session.memory.arenaBytes
        var int8Weights = graph.weightsBytes
        for l in layers { int8Weights -= l.weightCount * 3 }
        try checkMemory(weights: int8Weights, arena: arena, what: "even with every layer in int8")
        lap(.memory)

        // 3. Calibrate.
        let stats = try Calibrator.collect(graph, tensors: Quantizer.activations(layers), dataset: calibration, threads: options.threads) { d, t in
            self.progress(.calibrate, d, t)
        }
        var ranges: [String: (Float, Float)] = [:]
        for (name, s) in stats { ranges[name] = Calibrator.range(s, method: options.method) }
        for i in layers.indices {
            if let shape = stats[layers[i].output]?.shape, !shape.isEmpty {
                let channels = layers[i].op == .conv ? (shape.count > 1 ? shape[1] : 1) : shape[shape.count - 1]
                layers[i].macs = layers[i].weightCount * elementCount(shape) / Swift.max(1, channels)
            }
        }
        lap(.calibrate)

        // 4. Sensitivity: only one layer in int8.
        let compared = try Evaluator.comparedValues(graph, sample: evalSet.samples.first ?? calibration.samples[0])
        report.compared = compared
        let reference = try Evaluator.outputs(graph, evalSet, names: compared.all, threads: options.threads)
        let fp32Acc = labels.map { Evaluator.accuracy(reference, labels: $0) }
        report.fp32Accuracy = fp32Acc
        let cost = CostModel(profile: profile)
        let fp16Compute = profile.supportsFP16Arithmetic
        let subsetCount = Swift.min(evalSet.count, Swift.max(1, options.sensitivitySamples))
        let subset = Dataset(samples: Array(evalSet.samples.prefix(subsetCount)))
        let subsetLabels = labels.map { Array($0.prefix(subsetCount)) }
        let subsetAcc = subsetLabels.map { Evaluator.accuracy(Array(reference.prefix(subsetCount)), labels: $0) }
        var inputMeans: [String: [Float]] = [:]
        if options.biasCorrection {
            for l in layers {
                guard let s = stats[l.input] else { continue }
                let means = l.op == .conv ? s.axis1Means : s.lastAxisMeans
                if !means.isEmpty { inputMeans[l.name] = means }
            }
        }
        var corrections: [String: [Float]] = [:]
        func measure(_ plan: [String: Precision], full: Bool = true) throws -> (Graph, Agreement, Double) {
            let g = Quantizer.apply(graph, layers: layers, plan: plan, ranges: ranges, fp16Compute: fp16Compute, inputMeans: corrections)
            let outs = try Evaluator.outputs(g, full ? evalSet : subset, names: compared.all, threads: options.threads, integerKernels: full)
            let ref = full ? reference : Array(reference.prefix(subsetCount))
            let a = Evaluator.compare(reference: ref, candidate: outs, labels: full ? labels : subsetLabels, selections: compared.selections.count)
            let drop: Double
            if let f = full ? fp32Acc : subsetAcc, let q = a.top1Accuracy {
                drop = 100 * (f - q)
            } else {
                drop = 100 * (1 - a.top1Agreement)
            }
            // Drops are multiples of 100/N: round away float noise so "0.5 ≤ 0.5" holds.
            return (g, a, (drop * 1e6).rounded() / 1e6)
        }
        var decisions = [LayerDecision]()
        for (i, layer) in layers.enumerated() {
            let (_, a, drop) = try measure([layer.name: .int8], full: false)
            decisions.append(LayerDecision(name: layer.name, op: layer.op.rawValue, macs: layer.macs, weightCount: layer.weightCount,
                                           sensitivity: Swift.max(0, 1 - a.cosine), drop: drop, precision: .int8))
            progress(.sensitivity, i + 1, layers.count)
        }
        lap(.sensitivity)

        // 5. Choose: start all at the cheapest allowed; promote the most sensitive layer a step
        // at a time until the budget is met.
        let allowed = cost.allowed
        var plan: [String: Precision] = [:]
        for l in layers { plan[l.name] = allowed[0] }
        var (best, agreement, drop) = try measure(plan)
        report.methodUsed = options.method
        if options.method != .minmax && plan.values.contains(.int8) {
            // Clipping methods can cut ranges a layer needed (KL calibration on ReLU6 outputs, say):
            // the chosen method stays only if it is at least as faithful as plain min/max.
            let chosen = ranges
            for (name, s) in stats { ranges[name] = Calibrator.range(s, method: .minmax) }
            let plain = try measure(plan)
            if (plain.2, -plain.1.cosine) < (drop, -agreement.cosine) {
                report.warnings.append("--method " + options.method.rawValue + " ranges agreed less with fp32 than minmax ranges (cosine "
                    + String(format: "%.6f vs %.6f", agreement.cosine, plain.1.cosine) + "); minmax ranges were used")
                (best, agreement, drop) = plain
                report.methodUsed = .minmax
            } else {
                ranges = chosen
            }
        }
        if !inputMeans.isEmpty && plan.values.contains(.int8) {
            corrections = inputMeans
            let corrected = try measure(plan)
            if (corrected.2, -corrected.1.cosine) <= (drop, -agreement.cosine) {
                (best, agreement, drop) = corrected
                report.biasCorrection = "applied"
            } else {
                corrections = [:]
                report.biasCorrection = "not kept"
            }
        }
        report.pureInt8Drop = drop
        let order = decisions.indices.sorted { decisions[$0].sensitivity > decisions[$1].sensitivity }
        var step = 0
        while drop > budget + 1e-9 {
            var promoted = false
            for idx in order {
                let name = decisions[idx].name
                let current = allowed.firstIndex(of: plan[name]!)!
                if current + 1 < allowed.count {
                    plan[name] = allowed[current + 1]
                    promoted = true
                    break
                }
            }
            if !promoted {
                let why = profile.accelerator.isIntegerOnly
                    ? "the profile's accelerator runs int8 only and the int8 model drops " + fmt(drop) + " points"
                    : "even fp32 everywhere drops " + fmt(drop) + " points"
                throw OptimizeError.accuracyBudget("accuracy budget of " + fmt(budget) + " points cannot be met: " + why,
                                                   hint: "raise --max-accuracy-drop, give more representative --calibration data, or try --method entropy/percentile")
            }
            (best, agreement, drop) = try measure(plan)
            step += 1
            progress(.select, step, layers.count * allowed.count)
        }
        for i in decisions.indices { decisions[i].precision = plan[decisions[i].name] ?? .fp32 }
        report.layers = decisions
        report.dropPoints = drop
        report.agreement = agreement
        report.optimizedAccuracy = agreement.top1Accuracy
        report.estimatedCostFP32 = layers.reduce(0.0) { $0 + Double($1.macs) }
        report.estimatedCost = layers.reduce(0.0) { $0 + Double($1.macs) * cost.cost(plan[$1.name] ?? .fp32) }
        lap(.select)

        // 6. Memory of the result.
        let session = try Session(graph: best)
        try session.prepare(feeds: calibration.samples[0])
        report.arenaBytes = session.memory.arenaBytes
        report.weightsBytesAfter = best.weightsBytes
        report.peakBytes = report.arenaBytes + report.weightsBytesAfter
        try checkMemory(weights: report.weightsBytesAfter, arena: report.arenaBytes, what: "with the chosen precisions")
        report.nodesAfter = best.nodes.count
        report.fileBytesAfter = PerchModelFile.encode(best).count
        if let maxModel = profile.maxModelBytes, report.fileBytesAfter > maxModel {
            throw OptimizeError.doesNotFit(
                "the optimized model is " + mib(report.fileBytesAfter) + " but profile '" + profile.name + "' allows " + mib(maxModel) + " (budgets.max_model_mb), over by " + mib(report.fileBytesAfter - maxModel),
                hint: "raise budgets.max_model_mb or allow a larger --max-accuracy-drop so more layers stay int8")
        }
        lap(.memory)
        return OptimizationResult(graph: best, report: report)
    }

    func checkMemory(weights: Int, arena: Int, what: String) throws {
        let budget = profile.memoryBudgetBytes
        let need = weights + arena
        guard need > budget else { return }
        let share = profile.memory.modelShare
        let ramNeeded = Int((Double(need) / share / 1_048_576).rounded(.up))
        let shareNeeded = Double(need) / (Double(profile.memory.ramMB) * 1_048_576)
        var hint = "use a device with memory.ram_mb ≥ " + String(ramNeeded) + " (at model_share " + fmt(share) + ")"
        if shareNeeded <= 1 { hint += ", or raise memory.model_share to ≥ " + String(format: "%.3f", shareNeeded) }
        hint += ", or use a smaller model"
        throw OptimizeError.doesNotFit(
            "model needs " + mib(need) + " (weights " + mib(weights) + " + arena " + mib(arena) + ") " + what + ", but profile '" + profile.name
                + "' allows " + mib(budget) + " (ram_mb " + String(profile.memory.ramMB) + " × model_share " + fmt(share) + "): over by " + mib(need - budget),
            hint: hint)
    }
}

func mib(_ bytes: Int) -> String { String(format: "%.2f MiB", Double(bytes) / 1_048_576) }
func fmt(_ v: Double) -> String { String(format: "%.3g", v) }
