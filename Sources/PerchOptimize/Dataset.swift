import Foundation
import PerchGraph

/// Samples to calibrate or evaluate with: one feed dictionary per sample (CONTRACTS.md
/// "Tensors on disk": a directory with one `.npy` per input, samples stacked on a new first axis,
/// or one `.npy` for a single-input model).
public struct Dataset: Sendable {
    public var samples: [[String: Tensor]]
    /// True when the samples were made up (no dataset given).
    public var isSynthetic: Bool

    public init(samples: [[String: Tensor]], isSynthetic: Bool = false) {
        self.samples = samples
        self.isSynthetic = isSynthetic
    }

    public var count: Int { samples.count }

    /// Loads `path` for a model with runtime `inputs`.
    public static func load(_ path: String, inputs: [ValueInfo]) throws -> Dataset {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw OptimizeError.badDataset("dataset '" + path + "' does not exist", hint: "pass a directory of .npy files (one per input) or one .npy file")
        }
        var stacked: [String: Tensor] = [:]
        if isDir.boolValue {
            for input in inputs {
                let file = (path as NSString).appendingPathComponent(NPY.fileName(forTensor: input.name) + ".npy")
                stacked[input.name] = try readNPY(file, missingHint: "add " + NPY.fileName(forTensor: input.name) + ".npy holding all samples of input '" + input.name + "' stacked on a new first axis")
            }
        } else {
            guard inputs.count == 1 else {
                throw OptimizeError.badDataset("'" + path + "' is one file but the model has " + String(inputs.count) + " inputs", hint: "pass a directory with one .npy per input")
            }
            stacked[inputs[0].name] = try readNPY(path, missingHint: "check the path")
        }
        var count: Int?
        var perInput: [String: [Tensor]] = [:]
        for input in inputs {
            let t = stacked[input.name]!
            let declared = input.type.dims.count
            // [N, ...input shape] as the contract says; [N, ...] with N on the batch axis also works.
            let sampleShape: [Int]
            if t.rank == declared + 1 {
                sampleShape = Array(t.shape.dropFirst())
            } else if t.rank == declared && declared > 0 {
                sampleShape = [1] + Array(t.shape.dropFirst())
            } else {
                throw OptimizeError.badDataset(
                    "samples for input '" + input.name + "' have shape " + shapeString(t.shape) + " but the input has rank " + String(declared),
                    hint: "stack samples on a new first axis: [N] + the input's shape")
            }
            guard t.dtype == input.type.dtype else {
                throw OptimizeError.badDataset("samples for input '" + input.name + "' are " + t.dtype.name + " but the input is " + input.type.dtype.name, hint: "save them with numpy as " + input.type.dtype.name)
            }
            let n = t.shape.first ?? 1
            if let c = count, c != n {
                throw OptimizeError.badDataset("inputs have different sample counts (" + String(c) + " and " + String(n) + ")", hint: "give every input the same number of samples")
            }
            count = n
            let bytesPer = elementCount(sampleShape) * t.dtype.byteSize
            var slices = [Tensor]()
            for i in 0..<n {
                slices.append(Tensor(dtype: t.dtype, shape: sampleShape, bytes: Array(t.bytes[(i * bytesPer)..<((i + 1) * bytesPer)])))
            }
            perInput[input.name] = slices
        }
        var samples = [[String: Tensor]]()
        for i in 0..<(count ?? 0) {
            var feeds: [String: Tensor] = [:]
            for input in inputs { feeds[input.name] = perInput[input.name]![i] }
            samples.append(feeds)
        }
        guard !samples.isEmpty else {
            throw OptimizeError.badDataset("dataset '" + path + "' has no samples", hint: "stack at least one sample")
        }
        return Dataset(samples: samples)
    }

    /// `count` pseudo-random samples (uniform in [0, 1), fixed seed), for when no data is given.
    public static func synthesize(inputs: [ValueInfo], count: Int, seed: UInt64 = 1) -> Dataset {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        func next() -> Float {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return Float(state >> 40) / Float(1 << 24)
        }
        var samples = [[String: Tensor]]()
        for _ in 0..<count {
            var feeds: [String: Tensor] = [:]
            for input in inputs {
                let shape = input.type.exampleShape()
                var t = Tensor(dtype: input.type.dtype, shape: shape)
                if input.type.dtype == .f32 {
                    t = Tensor(shape: shape, values: (0..<elementCount(shape)).map { _ in next() })
                }
                feeds[input.name] = t
            }
            samples.append(feeds)
        }
        return Dataset(samples: samples, isSynthetic: true)
    }

    /// Class labels, one integer per sample.
    public static func loadLabels(_ path: String) throws -> [Int] {
        let t = try readNPY(path, missingHint: "save one integer class per sample with numpy.save")
        guard t.dtype.isInteger else {
            throw OptimizeError.badDataset("labels '" + path + "' are " + t.dtype.name, hint: "save them as an integer array (int64)")
        }
        return t.ints
    }

    static func readNPY(_ path: String, missingHint: String) throws -> Tensor {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw OptimizeError.badDataset("'" + path + "' does not exist or is not readable", hint: missingHint)
        }
        do {
            return try NPY.decode([UInt8](data), what: "'" + path + "'")
        } catch {
            throw OptimizeError.badDataset(error.description, hint: "save the array with numpy.save")
        }
    }

}

func shapeString(_ shape: [Int]) -> String {
    "[" + shape.map(String.init).joined(separator: ", ") + "]"
}
