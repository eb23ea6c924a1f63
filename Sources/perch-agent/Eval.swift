import PerchEngine
import PerchGraph

/// Eval agreement: how many of the bundle's eval samples the device's engine answers like the
/// reference outputs packed beside them (`eval/inputs/<input>.npy`, `eval/outputs/<output>.npy`,
/// names by CONTRACTS.md's tensor-name rule). `perch rollout`'s `min_eval_agreement` gate reads it
/// from `bench`'s JSON.
///
/// Samples: an eval file shaped like the declared tensor is one sample; one with an extra leading
/// axis holds that many samples stacked (CONTRACTS.md's dataset layout). Every input and every
/// output with a reference must have the same sample count.
///
/// A sample agrees when every output that has a reference agrees:
/// - classifier-shaped outputs (at least 2 elements, every dimension but the last 1, e.g.
///   `[1, 1000]`): the top-1 index (first maximum) is the same;
/// - any other output: the largest absolute difference is at most
///   `evalAbsoluteTolerance + evalRelativeTolerance × max|reference|`.
/// An output with another element count, a NaN, or a sample the engine refuses disagrees.
struct EvalAgreement {
    var samples: Int
    var agreed: Int
    var agreement: Double { samples == 0 ? 0 : Double(agreed) / Double(samples) }
}

let evalRelativeTolerance = 0.01
let evalAbsoluteTolerance = 1e-4

/// The eval set's files as they lie in the installed version.
struct EvalSet {
    /// Per model input: the eval tensor and whether its first axis stacks samples.
    var inputs: [(name: String, tensor: Tensor, stacked: Bool)]
    var references: [(name: String, tensor: Tensor, stacked: Bool)]
    var samples: Int
}

/// Reads the eval set of an installed version. nil: the bundle has no reference outputs (nothing
/// to measure). Throws when the files do not fit the model, so the caller can report why.
func loadEvalSet(_ m: LoadedModel) throws(AgentError) -> EvalSet? {
    var references: [(name: String, tensor: Tensor, stacked: Bool)] = []
    var samples = -1
    func fit(_ t: Tensor, _ declared: ValueInfo, _ what: String) throws(AgentError) -> Bool {
        let rank = declared.type.dims.count
        let stacked: Bool
        if t.rank == rank { stacked = false } else if t.rank == rank + 1 && t.shape[0] >= 1 { stacked = true } else {
            throw AgentError.bad("eval " + what + " '" + declared.name + "' has rank " + String(t.rank) + ", the model's has rank "
                                 + String(rank), "ship one sample shaped like the tensor, or samples stacked on a new first axis")
        }
        let n = stacked ? t.shape[0] : 1
        if samples == -1 { samples = n } else if samples != n {
            throw AgentError.bad("eval " + what + " '" + declared.name + "' holds " + String(n) + " sample(s), others "
                                 + String(samples), "stack the same number of samples in every eval file")
        }
        return stacked
    }
    for o in m.session.outputs {
        let path = m.directory + "/eval/outputs/" + tensorFileName(o.name) + ".npy"
        guard FS.kind(path) == .file else { continue }
        let t = try readNPY(path)
        references.append((o.name, t, try fit(t, o, "output")))
    }
    if references.isEmpty { return nil }
    var inputs: [(name: String, tensor: Tensor, stacked: Bool)] = []
    for i in m.session.inputs {
        let path = m.directory + "/eval/inputs/" + tensorFileName(i.name) + ".npy"
        guard FS.kind(path) == .file else {
            throw AgentError.bad("the bundle has reference outputs but no eval input for '" + i.name + "'",
                                 "pack eval/inputs/" + tensorFileName(i.name) + ".npy")
        }
        let t = try readNPY(path)
        inputs.append((i.name, t, try fit(t, i, "input")))
    }
    return EvalSet(inputs: inputs, references: references, samples: samples)
}

/// Sample `i` of `t` (the whole tensor when it is not stacked).
func evalSample(_ t: Tensor, stacked: Bool, _ i: Int) -> Tensor {
    guard stacked else { return t }
    let shape = Array(t.shape[1...])
    let size = elementCount(shape) * t.dtype.byteSize
    return Tensor(dtype: t.dtype, shape: shape, bytes: Array(t.bytes[(i * size)..<((i + 1) * size)]))
}

/// Runs every eval sample once on `m` and compares with the references (rule above).
func measureEvalAgreement(_ m: LoadedModel, _ set: EvalSet) -> EvalAgreement {
    var agreed = 0
    for s in 0..<set.samples {
        var feeds: [String: Tensor] = [:]
        for input in set.inputs { feeds[input.name] = evalSample(input.tensor, stacked: input.stacked, s) }
        let outputs: [String: Tensor]
        do throws(EngineError) { outputs = try m.session.run(feeds) } catch { continue }
        var ok = true
        for r in set.references {
            guard let actual = outputs[r.name], outputsAgree(actual, evalSample(r.tensor, stacked: r.stacked, s)) else {
                ok = false
                break
            }
        }
        if ok { agreed += 1 }
    }
    return EvalAgreement(samples: set.samples, agreed: agreed)
}

/// Classifier-shaped: at least 2 elements and every dimension but the last is 1.
func isClassifierShaped(_ shape: [Int]) -> Bool {
    guard let last = shape.last, last >= 2 else { return false }
    for d in shape.dropLast() where d != 1 { return false }
    return true
}

/// One output of one sample against its reference (rule in `EvalAgreement`).
func outputsAgree(_ actual: Tensor, _ reference: Tensor) -> Bool {
    // A detector that finds nothing, on the device and in the reference, agrees.
    if actual.count == 0 && reference.count == 0 { return actual.shape == reference.shape }
    guard actual.count == reference.count, actual.count > 0 else { return false }
    let a = actual.doubles, r = reference.doubles
    if isClassifierShaped(actual.shape) {
        func top1(_ v: [Double]) -> Int? {
            var best = 0
            for i in 0..<v.count {
                if v[i] != v[i] { return nil }
                if v[i] > v[best] { best = i }
            }
            return best
        }
        guard let x = top1(a), let y = top1(r) else { return false }
        return x == y
    }
    var peak = 0.0, worst = 0.0
    for i in 0..<r.count {
        let m = r[i] < 0 ? -r[i] : r[i]
        if m > peak { peak = m }
        let d = a[i] - r[i]
        let e = d < 0 ? -d : d
        if e != e { return false }
        if e > worst { worst = e }
    }
    return worst <= evalAbsoluteTolerance + evalRelativeTolerance * peak
}
