import Foundation

/// The profile of the machine Perch runs on (`perch profile show host`), read from Linux's
/// `/proc/cpuinfo`, `/proc/meminfo`, cpufreq and `uname`. No accelerator is detected: the host
/// profile describes the CPU only.
public enum HostProfile {
    /// Detects this machine. Never fails: what cannot be read is left unset (clock, core) or
    /// falls back (ISA from the build target, cores from the scheduler, RAM from `physicalMemory`).
    public static func detect() -> DeviceProfile {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let meminfo = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? ""
        let maxKHz = (try? String(contentsOfFile: "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", encoding: .utf8))
            .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        var profile = detect(machine: machine(), cpuinfo: cpuinfo, meminfo: meminfo, cpuMaxKHz: maxKHz)
        if profile.cpu.cores == nil { profile.cpu.cores = ProcessInfo.processInfo.activeProcessorCount }
        if profile.memory.ramMB <= 0 {
            profile.memory.ramMB = max(1, Int(ProcessInfo.processInfo.physicalMemory / 1_048_576))
        }
        // A container's memory limit is what a model can really use.
        if let limit = (try? String(contentsOfFile: "/sys/fs/cgroup/memory.max", encoding: .utf8))
            .flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) {
            profile.memory.ramMB = max(1, min(profile.memory.ramMB, limit / 1_048_576))
        }
        if let attributes = try? FileManager.default.attributesOfFileSystem(forPath: FileManager.default.currentDirectoryPath),
           let free = attributes[.systemFreeSize] as? NSNumber {
            profile.storageMB = max(1, Int(free.int64Value / 1_048_576))
        }
        return profile
    }

    /// Builds the host profile from the text of `/proc/cpuinfo` and `/proc/meminfo` and the
    /// `uname -m` machine string. `cpuMaxKHz` is cpufreq's `cpuinfo_max_freq`, if available.
    public static func detect(machine: String, cpuinfo: String, meminfo: String, cpuMaxKHz: Int? = nil) -> DeviceProfile {
        let isa = isa(machine: machine) ?? compiledISA
        let fields = parse(cpuinfo)
        let processors = fields.filter { $0.key == "processor" }.count
        func first(_ key: String) -> String? { fields.first(where: { $0.key == key })?.value }

        // Flag words, and the feature each one means on this ISA.
        let words: Set<String>
        let spelling: [String: DeviceProfile.CPUFeature]
        switch isa {
        case .x86_64:
            words = Set((first("flags") ?? "").split(separator: " ").map(String.init))
            spelling = [
                "sse4_2": .sse4_2, "avx": .avx, "avx2": .avx2, "fma": .fma, "f16c": .f16c,
                "avx512f": .avx512f, "avx512bw": .avx512bw, "avx512_vnni": .avx512vnni,
                "avx_vnni": .avxvnni, "avx512_fp16": .avx512fp16,
            ]
        case .aarch64:
            words = Set((first("Features") ?? "").split(separator: " ").map(String.init))
            spelling = [
                "asimd": .neon, "asimdhp": .fp16, "asimddp": .dotprod, "i8mm": .i8mm,
                "bf16": .bf16, "sve": .sve, "sve2": .sve2,
            ]
        case .armv7:
            words = Set((first("Features") ?? "").split(separator: " ").map(String.init))
            spelling = ["neon": .neon, "vfpv4": .vfpv4]
        case .riscv64:
            words = riscvExtensions(first("isa") ?? "")
            spelling = ["v": .rvv, "zfh": .zfh, "zvfh": .zvfh]
        }
        let present = Set(words.compactMap { spelling[$0] })
        let features = DeviceProfile.CPUFeature.allCases.filter { present.contains($0) }

        var clock: Double?
        if let khz = cpuMaxKHz, khz > 0 {
            clock = Double(khz) / 1000
        } else if let mhz = first("cpu MHz").flatMap(Double.init), mhz > 0 {
            clock = mhz.rounded()
        }

        var core = first("model name")
        if isa == .aarch64 || isa == .armv7, first("CPU implementer") == "0x41",
           let part = first("CPU part"), let name = armCores[part.lowercased()] {
            core = name
        }
        if core == nil { core = first("uarch") }  // RISC-V

        let ramKB = meminfo.split(separator: "\n")
            .first(where: { $0.hasPrefix("MemTotal:") })
            .flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0

        return DeviceProfile(
            name: ProfileLoader.hostName,
            description: "This machine, detected at run time" + (core.map { " (\($0))" } ?? ""),
            cpu: DeviceProfile.CPU(isa: isa, features: features, cores: processors > 0 ? processors : nil, clockMHz: clock, core: core),
            memory: DeviceProfile.Memory(ramMB: ramKB / 1024)
        )
    }

    /// The ISA named by `uname -m`.
    public static func isa(machine: String) -> DeviceProfile.ISA? {
        switch machine {
        case "x86_64", "amd64": return .x86_64
        case "aarch64", "arm64": return .aarch64
        case "riscv64": return .riscv64
        default:
            // armv7l, armv7hl, and armv8l (a 64-bit core running a 32-bit userland).
            if machine.hasPrefix("armv7") || machine == "armv8l" { return .armv7 }
            return nil
        }
    }

    static var compiledISA: DeviceProfile.ISA {
        #if arch(x86_64)
        return .x86_64
        #elseif arch(arm64)
        return .aarch64
        #elseif arch(arm)
        return .armv7
        #else
        return .riscv64
        #endif
    }

    static func machine() -> String {
        var u = utsname()
        guard uname(&u) == 0 else { return "" }
        return withUnsafeBytes(of: &u.machine) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    /// `key : value` lines of /proc/cpuinfo, in order (keys repeat once per processor).
    static func parse(_ cpuinfo: String) -> [(key: String, value: String)] {
        cpuinfo.split(separator: "\n").compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            return (key, value)
        }
    }

    /// Extensions in a RISC-V ISA string such as `rv64imafdcv_zicsr_zfh_zvfh`: single letters of
    /// the base part, and the `_`-separated multi-letter ones.
    static func riscvExtensions(_ isa: String) -> Set<String> {
        let parts = isa.lowercased().split(separator: "_").map(String.init)
        guard let base = parts.first, base.hasPrefix("rv") else { return [] }
        var result = Set(base.dropFirst(4).map { String($0) })
        result.formUnion(parts.dropFirst())
        return result
    }

    /// Arm Ltd. (implementer 0x41) part numbers of /proc/cpuinfo's `CPU part`.
    static let armCores: [String: String] = [
        "0xd03": "cortex-a53", "0xd04": "cortex-a35", "0xd05": "cortex-a55", "0xd07": "cortex-a57",
        "0xd08": "cortex-a72", "0xd09": "cortex-a73", "0xd0a": "cortex-a75", "0xd0b": "cortex-a76",
        "0xd0c": "neoverse-n1", "0xd0d": "cortex-a77", "0xd40": "neoverse-v1", "0xd41": "cortex-a78",
        "0xd42": "cortex-a78ae", "0xd44": "cortex-x1", "0xd46": "cortex-a510", "0xd47": "cortex-a710",
        "0xd48": "cortex-x2", "0xd49": "neoverse-n2", "0xd4b": "cortex-a78c",
    ]
}
