import Foundation
import PerchGraph

/// A device a model is optimized for: what its CPU can compute, how much memory a model may take,
/// what accelerator it has, and the budgets the optimizer must meet.
///
/// Values are the *resolved* profile: `extends` has been applied and defaults filled in. Build one
/// with `ProfileLoader` (YAML files, bundled names) or `HostProfile.detect()` (this machine);
/// the schema is documented in `device-profiles/README.md`.
public struct DeviceProfile: Sendable, Equatable, Codable {
    /// Unique profile name; bundled profiles are found by it (`device-profiles/<name>.yaml`).
    public var name: String
    /// The profile this one was derived from (its direct parent), if any.
    public var extends: String?
    public var description: String?
    public var cpu: CPU
    public var memory: Memory
    /// Storage available for models and bundles, in MiB.
    public var storageMB: Int?
    public var accelerator: Accelerator
    public var budgets: Budgets

    public init(
        name: String, extends: String? = nil, description: String? = nil, cpu: CPU, memory: Memory,
        storageMB: Int? = nil, accelerator: Accelerator = .none, budgets: Budgets = Budgets()
    ) {
        self.name = name
        self.extends = extends
        self.description = description
        self.cpu = cpu
        self.memory = memory
        self.storageMB = storageMB
        self.accelerator = accelerator
        self.budgets = budgets
    }

    enum CodingKeys: String, CodingKey {
        case name, extends, description, cpu, memory
        case storageMB = "storage_mb"
        case accelerator, budgets
    }

    // MARK: - Nested types

    /// Instruction-set architecture of the device's userland (e.g. `armv7` for a 64-bit
    /// Cortex-A53 running a 32-bit OS).
    public enum ISA: String, Sendable, Equatable, Codable, CaseIterable {
        case aarch64
        case armv7
        case x86_64
        case riscv64

        /// The CPU features that can exist on this ISA; a profile listing any other is rejected.
        public var possibleFeatures: [CPUFeature] {
            CPUFeature.allCases.filter { $0.isas.contains(self) }
        }
    }

    /// A CPU capability the engine's kernels can use. Names follow the usual compiler spelling
    /// (Linux's `asimd`, `asimddp`, `asimdhp` are `neon`, `dotprod`, `fp16` here).
    public enum CPUFeature: String, Sendable, Equatable, Codable, CaseIterable {
        // Arm (AArch64 and/or AArch32).
        /// Advanced SIMD (128-bit).
        case neon
        /// VFPv4 floating point (AArch32), includes fused multiply-add.
        case vfpv4
        /// ARMv8.2-A half-precision arithmetic (FEAT_FP16: `fphp`/`asimdhp`).
        case fp16
        /// ARMv8.2-A int8 dot product (FEAT_DotProd: `SDOT`/`UDOT`, `asimddp`).
        case dotprod
        /// ARMv8.6-A int8 matrix multiply (FEAT_I8MM: `SMMLA`).
        case i8mm
        /// BFloat16 arithmetic (FEAT_BF16).
        case bf16
        /// Scalable Vector Extension.
        case sve
        case sve2
        // x86-64.
        case sse4_2
        case avx
        case avx2
        /// FMA3 fused multiply-add.
        case fma
        /// Half-precision conversion (VCVTPH2PS); storage only, not arithmetic.
        case f16c
        case avx512f
        case avx512bw
        /// AVX-512 VNNI int8 dot product (`VPDPBUSD` on 512-bit vectors).
        case avx512vnni
        /// AVX-VNNI: the VEX-encoded int8 dot product (Alder Lake and later).
        case avxvnni
        /// AVX-512 FP16 arithmetic (Sapphire Rapids).
        case avx512fp16
        // RISC-V.
        /// The V vector extension (RVV 1.0).
        case rvv
        /// Scalar half-precision (Zfh).
        case zfh
        /// Vector half-precision (Zvfh).
        case zvfh

        /// The ISAs on which this feature exists.
        public var isas: Set<ISA> {
            switch self {
            case .neon: return [.aarch64, .armv7]
            case .vfpv4: return [.armv7]
            case .fp16, .dotprod, .i8mm, .bf16, .sve, .sve2: return [.aarch64]
            case .sse4_2, .avx, .avx2, .fma, .f16c, .avx512f, .avx512bw, .avx512vnni, .avxvnni, .avx512fp16:
                return [.x86_64]
            case .rvv, .zfh, .zvfh: return [.riscv64]
            }
        }
    }

    public struct CPU: Sendable, Equatable, Codable {
        public var isa: ISA
        /// Features in the order the profile lists them, without duplicates.
        public var features: [CPUFeature]
        public var cores: Int?
        /// Maximum clock in MHz.
        public var clockMHz: Double?
        /// Core microarchitecture, e.g. `cortex-a72`; informational (for cost models later).
        public var core: String?

        public init(isa: ISA, features: [CPUFeature] = [], cores: Int? = nil, clockMHz: Double? = nil, core: String? = nil) {
            self.isa = isa
            self.features = features
            self.cores = cores
            self.clockMHz = clockMHz
            self.core = core
        }

        enum CodingKeys: String, CodingKey {
            case isa, features, cores
            case clockMHz = "clock_mhz"
            case core
        }

        public func has(_ feature: CPUFeature) -> Bool { features.contains(feature) }
    }

    public struct Memory: Sendable, Equatable, Codable {
        /// Installed RAM in MiB.
        public var ramMB: Int
        /// Fraction (0, 1] of RAM one model (weights + activation arena) may use.
        public var modelShare: Double

        public static let defaultModelShare = 0.5

        public init(ramMB: Int, modelShare: Double = Memory.defaultModelShare) {
            self.ramMB = ramMB
            self.modelShare = modelShare
        }

        enum CodingKeys: String, CodingKey {
            case ramMB = "ram_mb"
            case modelShare = "model_share"
        }
    }

    public enum AcceleratorKind: String, Sendable, Equatable, Codable, CaseIterable {
        case none, gpu, npu, tpu
    }

    /// Element types an accelerator computes in, spelled as in profiles (`int8`, `fp16`).
    public enum AcceleratorDType: String, Sendable, Equatable, Codable, CaseIterable {
        case int4, int8, uint8, int16, int32, fp16, bf16, fp32

        /// The graph IR's type for this element type (`int4` has none yet).
        public var graphDType: DType? {
            switch self {
            case .int4: return nil
            case .int8: return .i8
            case .uint8: return .u8
            case .int16: return .i16
            case .int32: return .i32
            case .fp16: return .f16
            case .bf16: return .bf16
            case .fp32: return .f32
            }
        }

        public var isFloatingPoint: Bool {
            switch self {
            case .fp16, .bf16, .fp32: return true
            default: return false
            }
        }
    }

    public struct Accelerator: Sendable, Equatable, Codable {
        public var kind: AcceleratorKind
        /// Product name, e.g. `Edge TPU`; informational.
        public var name: String?
        public var dtypes: [AcceleratorDType]
        /// The operators the accelerator runs; `nil` = not declared (assume any).
        public var ops: [OpType]?

        public static let none = Accelerator(kind: .none)

        public init(kind: AcceleratorKind, name: String? = nil, dtypes: [AcceleratorDType] = [], ops: [OpType]? = nil) {
            self.kind = kind
            self.name = name
            self.dtypes = dtypes
            self.ops = ops
        }

        enum CodingKeys: String, CodingKey {
            case kind, name, dtypes, ops
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            kind = try c.decode(AcceleratorKind.self, forKey: .kind)
            name = try c.decodeIfPresent(String.self, forKey: .name)
            dtypes = try c.decodeIfPresent([AcceleratorDType].self, forKey: .dtypes) ?? []
            if let names = try c.decodeIfPresent([String].self, forKey: .ops) {
                ops = try names.map { n in
                    guard let op = OpType(rawValue: n) else {
                        throw DecodingError.dataCorruptedError(forKey: .ops, in: c, debugDescription: "unknown op '\(n)'")
                    }
                    return op
                }
            }
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(kind, forKey: .kind)
            try c.encodeIfPresent(name, forKey: .name)
            try c.encode(dtypes, forKey: .dtypes)
            try c.encodeIfPresent(ops?.map(\.rawValue), forKey: .ops)
        }

        /// True when the accelerator computes only in integer types (an Edge-TPU-style NPU): a
        /// model for it must be fully int8-quantized or stay on the CPU.
        public var isIntegerOnly: Bool {
            kind != .none && !dtypes.isEmpty && dtypes.allSatisfy { !$0.isFloatingPoint }
        }

        public func supports(_ dtype: AcceleratorDType) -> Bool { kind != .none && dtypes.contains(dtype) }

        /// Whether the accelerator runs `op`; one without an `ops` list is assumed to run any.
        public func runs(_ op: OpType) -> Bool { kind != .none && (ops?.contains(op) ?? true) }
    }

    public struct Budgets: Sendable, Equatable, Codable {
        /// Target latency of one inference, in milliseconds.
        public var latencyMS: Double?
        /// Largest acceptable top-1 accuracy drop versus fp32, in percentage points.
        public var maxAccuracyDrop: Double?
        /// Largest model file, in MiB.
        public var maxModelMB: Double?

        public init(latencyMS: Double? = nil, maxAccuracyDrop: Double? = nil, maxModelMB: Double? = nil) {
            self.latencyMS = latencyMS
            self.maxAccuracyDrop = maxAccuracyDrop
            self.maxModelMB = maxModelMB
        }

        enum CodingKeys: String, CodingKey {
            case latencyMS = "latency_ms"
            case maxAccuracyDrop = "max_accuracy_drop"
            case maxModelMB = "max_model_mb"
        }
    }
}

// MARK: - What the optimizer asks

extension DeviceProfile {
    /// Bytes one model (weights + activation arena) may use: `ram_mb` MiB × `model_share`.
    public var memoryBudgetBytes: Int {
        Int((Double(memory.ramMB) * 1_048_576 * memory.modelShare).rounded(.down))
    }

    /// `budgets.max_model_mb` in bytes, if set.
    public var maxModelBytes: Int? {
        budgets.maxModelMB.map { Int(($0 * 1_048_576).rounded(.down)) }
    }

    /// Whether the CPU computes in fp16 natively (not just converts): AArch64 FEAT_FP16,
    /// AVX-512 FP16, or RISC-V Zvfh. Without it, fp16 weights only save memory.
    public var supportsFP16Arithmetic: Bool {
        cpu.has(.fp16) || cpu.has(.avx512fp16) || cpu.has(.zvfh)
    }

    /// Whether the CPU has an int8 dot-product instruction (SDOT, SMMLA, VPDPBUSD).
    public var supportsInt8Dot: Bool {
        cpu.has(.dotprod) || cpu.has(.i8mm) || cpu.has(.avxvnni) || cpu.has(.avx512vnni)
    }

    /// Whether the CPU has an int8 matrix-multiply instruction (Arm I8MM).
    public var supportsInt8MatMul: Bool { cpu.has(.i8mm) }

    /// Whether the CPU has the SIMD unit the vector kernels use (NEON, AVX2, RVV).
    public var hasVectorUnit: Bool {
        cpu.has(.neon) || cpu.has(.avx2) || cpu.has(.rvv)
    }

    /// Worker threads worth using: the core count, 1 when unknown.
    public var threads: Int { max(1, cpu.cores ?? 1) }

    /// `isa+feature+…` as in the bench JSON's `isa` field, e.g. `aarch64+neon+dotprod+fp16`.
    public var isaDescription: String {
        ([cpu.isa.rawValue] + cpu.features.map(\.rawValue)).joined(separator: "+")
    }
}
