import Foundation

extension DeviceProfile {
    /// The resolved profile as JSON (keys sorted, pretty-printed); decodes back with `JSONDecoder`.
    public func jsonText() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Encoding plain structs of strings, numbers and enums cannot fail.
        let data = (try? encoder.encode(self)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// The resolved profile as YAML in the schema's key order: itself a valid profile file
    /// (without `extends`, which is already applied).
    public func yamlText() -> String {
        var lines = ["name: " + Self.yamlString(name)]
        if let description { lines.append("description: " + Self.yamlString(description)) }
        lines.append("cpu:")
        lines.append("  isa: " + cpu.isa.rawValue)
        lines.append("  features: [" + cpu.features.map(\.rawValue).joined(separator: ", ") + "]")
        if let cores = cpu.cores { lines.append("  cores: \(cores)") }
        if let clock = cpu.clockMHz { lines.append("  clock_mhz: " + ProfileSchema.format(clock)) }
        if let core = cpu.core { lines.append("  core: " + Self.yamlString(core)) }
        lines.append("memory:")
        lines.append("  ram_mb: \(memory.ramMB)")
        lines.append("  model_share: " + ProfileSchema.format(memory.modelShare))
        if let storageMB { lines.append("storage_mb: \(storageMB)") }
        lines.append("accelerator:")
        lines.append("  kind: " + accelerator.kind.rawValue)
        if let n = accelerator.name { lines.append("  name: " + Self.yamlString(n)) }
        if !accelerator.dtypes.isEmpty {
            lines.append("  dtypes: [" + accelerator.dtypes.map(\.rawValue).joined(separator: ", ") + "]")
        }
        if let ops = accelerator.ops { lines.append("  ops: [" + ops.map(\.rawValue).joined(separator: ", ") + "]") }
        let budgetLines = [
            budgets.latencyMS.map { "  latency_ms: " + ProfileSchema.format($0) },
            budgets.maxAccuracyDrop.map { "  max_accuracy_drop: " + ProfileSchema.format($0) },
            budgets.maxModelMB.map { "  max_model_mb: " + ProfileSchema.format($0) },
        ].compactMap { $0 }
        if !budgetLines.isEmpty { lines += ["budgets:"] + budgetLines }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A plain scalar when that reads back as the same string, else a double-quoted one.
    static func yamlString(_ s: String) -> String {
        let plain = !s.isEmpty && s.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "._- ()".unicodeScalars.contains($0) }
            && s.first!.isLetter && s.last != " "
            && !["true", "false", "yes", "no", "on", "off", "null", "y", "n"].contains(s.lowercased())
        if plain { return s }
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }

    /// What the optimizer derives from the profile, one fact per line, for `perch profile show`.
    public var derivedFacts: [String] {
        var lines = [String]()
        let budgetMiB = Double(memoryBudgetBytes) / 1_048_576
        lines.append("memory budget for one model: \(String(format: "%.0f", budgetMiB)) MiB (\(memory.modelShare) of \(memory.ramMB) MiB)")
        lines.append("kernels: \(isaDescription)")
        lines.append("fp16 arithmetic on the CPU: \(supportsFP16Arithmetic ? "yes" : "no")")
        lines.append("int8 dot product on the CPU: \(supportsInt8Dot ? "yes" : "no")")
        if accelerator.kind != .none {
            let only = accelerator.isIntegerOnly ? " (integer only)" : ""
            lines.append("accelerator: \(accelerator.kind.rawValue)\(only), dtypes \(accelerator.dtypes.map(\.rawValue).joined(separator: ", "))")
        }
        return lines
    }
}
