import ArgumentParser
import Foundation
import PerchGraph
import PerchOptimize
import PerchProfiles

/// `perch optimize MODEL.onnx --profile P -o M.perchm [...]`
struct OptimizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "optimize",
        abstract: "Optimize a model for a device profile: simplify, quantize (int8/fp16/fp32 per layer), check memory.",
        discussion: """
            Passes: identity/dropout removal, constant folding, BatchNorm folding, transpose/reshape \
            cancellation, dead-node removal. Then activation ranges are calibrated, each Conv/Gemm/MatMul's \
            sensitivity to int8 is measured alone, and the cheapest per-layer precision plan meeting the \
            accuracy budget is chosen (int8 weights are stored per-channel in the ONNX Runtime QDQ form). \
            Exit 1 if the accuracy budget cannot be met; 2 if the model does not fit the profile's memory.
            """
    )

    @Argument(help: "The ONNX (or .perchm) model to optimize.")
    var model: String

    @Option(help: "Device profile: a .yaml file or a bundled name (e.g. rpi4).")
    var profile: String

    @Option(help: "Calibration dataset: a directory with one .npy per input (samples stacked on a new first axis) or one .npy.")
    var calibration: String?

    @Option(help: "Evaluation dataset (same layout as --calibration); defaults to the calibration set.")
    var eval: String?

    @Option(help: "Labels for --eval: one integer class per sample (.npy).")
    var labels: String?

    @Option(help: "Largest accepted top-1 drop in percentage points (default: the profile's budgets.max_accuracy_drop, else 1).")
    var maxAccuracyDrop: Double?

    @Option(help: "Range calibration: minmax, percentile, entropy or mse.")
    var method: String = "minmax"

    @Flag(inversion: .prefixedNo, help: "Correct int8 layers' biases for the mean shift weight rounding causes (kept only if it raises agreement with fp32).")
    var biasCorrection = true

    @Option(help: "Threads for each model evaluation (default: all cores).")
    var threads: Int?

    @Option(name: .shortAndLong, help: "Where to write the optimized .perchm.")
    var output: String

    @Option(help: "Write the full report as JSON to this file.")
    var report: String?

    @Flag(help: "Print the report as JSON on stdout instead of the summary.")
    var json = false

    func run() throws {
        guard let method = CalibrationMethod(rawValue: method) else {
            throw CLIError(.badInput, "unknown --method '" + method + "'", hint: "use minmax, percentile, entropy or mse")
        }
        if labels != nil && eval == nil {
            throw CLIError(.badInput, "--labels needs --eval", hint: "pass the dataset the labels belong to with --eval")
        }
        let deviceProfile = try ProfileLoader().load(nameOrFile: profile)
        let graph = try ModelLoading.load(model, foldBatchNorm: false)
        var options = OptimizeOptions()
        options.method = method
        options.biasCorrection = biasCorrection
        if let t = threads {
            guard t >= 1 else { throw CLIError(.badInput, "--threads must be at least 1", hint: "omit it to use every core") }
            options.threads = t
        }
        options.maxAccuracyDrop = maxAccuracyDrop
        do {
            let inputs = graph.runtimeInputs
            if let c = calibration { options.calibration = try Dataset.load(c, inputs: inputs) }
            if let e = eval { options.eval = try Dataset.load(e, inputs: inputs) }
            if let l = labels { options.labels = try Dataset.loadLabels(l) }
        } catch let e as OptimizeError {
            throw Self.cliError(e)
        }
        let optimizer = Optimizer(profile: deviceProfile, options: options)
        let bar = ProgressBar()
        optimizer.progress = { stage, done, total in bar.update(stage.rawValue, done, total) }
        let result: OptimizationResult
        do {
            result = try optimizer.run(graph, name: ModelLoading.displayName(graph, path: model))
        } catch let e as OptimizeError {
            bar.finish()
            throw Self.cliError(e)
        }
        bar.finish()
        let bytes = PerchModelFile.encode(result.graph)
        guard FileManager.default.createFile(atPath: output, contents: Data(bytes)) else {
            throw CLIError(.badInput, "cannot write '" + output + "'", hint: "check that the directory exists and is writable")
        }
        var object = result.report.jsonObject
        object["output"] = output
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        if let r = report {
            guard FileManager.default.createFile(atPath: r, contents: data) else {
                throw CLIError(.badInput, "cannot write report '" + r + "'", hint: "check that the directory exists and is writable")
            }
        }
        for w in result.report.warnings { status("perch: warning: " + w) }
        if json {
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(Self.summary(result.report, output: output))
        }
    }

    static func cliError(_ e: OptimizeError) -> CLIError {
        switch e {
        case .accuracyBudget: return CLIError(.gateFailed, e.what, hint: e.hint)
        default: return CLIError(.badInput, e.what, hint: e.hint)
        }
    }

    static func summary(_ r: OptimizationReport, output: String) -> String {
        func kb(_ b: Int) -> String { String(format: "%.1f KiB", Double(b) / 1024) }
        func pct(_ v: Double?) -> String { v.map { String(format: "%.2f%%", 100 * $0) } ?? "n/a" }
        var lines = [String]()
        lines.append("optimized " + r.model + " for " + r.profile + " → " + output)
        lines.append(String(format: "  size: %@ → %@ (%.3f×), weights %@ → %@ (%.3f×)",
                            kb(r.fileBytesBefore), kb(r.fileBytesAfter), Double(r.fileBytesAfter) / Double(max(1, r.fileBytesBefore)),
                            kb(r.weightsBytesBefore), kb(r.weightsBytesAfter), Double(r.weightsBytesAfter) / Double(max(1, r.weightsBytesBefore))))
        lines.append("  passes: " + r.passes.map { $0.0 + " ×" + String($0.1) }.joined(separator: ", ") + "; nodes "
                     + String(r.nodesBefore) + " → " + String(r.nodesAfter))
        lines.append("  calibration: " + String(r.calibrationSamples) + (r.calibrationSynthetic ? " synthetic" : "") + " samples, method " + r.method.rawValue + (r.methodUsed != r.method ? " (ranges used: " + r.methodUsed.rawValue + ")" : "") + ", bias correction " + r.biasCorrection
                     + "; eval: " + String(r.evalSamples) + " samples")
        lines.append("  layers (precision, sensitivity = 1 − cosine with only this layer int8, its int8 drop):")
        let width = max(8, r.layers.map { $0.name.count }.max() ?? 8)
        for l in r.layers {
            lines.append("    " + l.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + l.op.padding(toLength: 8, withPad: " ", startingAt: 0)
                         + l.precision.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0)
                         + String(format: "sens %.2e  drop %5.2f pts  %d MACs", l.sensitivity, l.drop, l.macs))
        }
        if r.fp32Accuracy != nil {
            lines.append("  top-1: fp32 " + pct(r.fp32Accuracy) + " → optimized " + pct(r.optimizedAccuracy)
                         + String(format: " (drop %.2f pts, budget %.2f; all-int8 drop %.2f)", r.dropPoints, r.budgetPoints, r.pureInt8Drop ?? 0))
        } else {
            let decisions = r.compared.selections.isEmpty ? "top-1" : "selected boxes (" + r.compared.selections.joined(separator: ", ") + ") in common"
            lines.append(String(format: "  agreement with fp32: %@ %@, drop %.2f pts (budget %.2f)", decisions, pct(r.agreement?.top1Agreement), r.dropPoints, r.budgetPoints))
        }
        if let a = r.agreement {
            let c = r.compared
            let what = c.beforeValueDependentPart ? "outputs and values before the value-dependent part (" + c.dense.joined(separator: ", ") + ")"
                : c.dense.count > 1 ? "outputs (" + c.dense.joined(separator: ", ") + ")" : "output"
            lines.append(String(format: "  %@ vs fp32: cosine %.6f, max abs error %.4g", what, a.cosine, a.maxAbsError))
        }
        lines.append(String(format: "  memory: weights %@ + arena %@ = %@ of %@ allowed by the profile",
                            kb(r.weightsBytesAfter), kb(r.arenaBytes), kb(r.peakBytes), kb(r.memoryBudgetBytes)))
        if r.estimatedCostFP32 > 0 {
            lines.append(String(format: "  estimated compute cost: %.3f× of fp32", r.estimatedCost / r.estimatedCostFP32))
        }
        lines.append("  time: " + r.stepSeconds.map { $0.0 + " " + String(format: "%.2fs", $0.1) }.joined(separator: ", "))
        return lines.joined(separator: "\n")
    }
}

/// A progress bar on stderr when it is a terminal; plain lines (every 25%) otherwise.
final class ProgressBar {
    let tty = isatty(2) != 0
    var lastStage = ""
    var lastQuarter = -1
    var drawn = false

    func update(_ stage: String, _ done: Int, _ total: Int) {
        if stage != lastStage {
            if drawn { FileHandle.standardError.write("\n".data(using: .utf8)!) }
            lastStage = stage
            lastQuarter = -1
            drawn = false
        }
        let frac = Double(done) / Double(max(1, total))
        if tty {
            let filled = Int(frac * 30)
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: 30 - filled)
            FileHandle.standardError.write(("\r" + stage.padding(toLength: 12, withPad: " ", startingAt: 0) + " " + bar + " " + String(done) + "/" + String(total)).data(using: .utf8)!)
            drawn = true
        } else {
            let q = Int(frac * 4)
            if q != lastQuarter {
                lastQuarter = q
                status(stage + ": " + String(done) + "/" + String(total))
            }
        }
    }

    func finish() {
        if drawn { FileHandle.standardError.write("\n".data(using: .utf8)!) }
        drawn = false
    }
}
