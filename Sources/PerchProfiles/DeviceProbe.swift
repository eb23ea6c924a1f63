/// Turns a remote device's own description of itself into a profile (`perch profile probe`).
///
/// The device needs nothing but a POSIX shell and Linux's `/proc`: the caller runs `script` there
/// (over SSH, or any other way) and hands its output to `profile(fromOutput:name:)`. The parsing
/// is the same as for `perch profile show host`, so a probed board and the host agree on spelling.
public enum DeviceProbe {
    /// Separates the sections of the script's output.
    static let marker = "@@perch-probe@@"

    /// A shell script printing `uname -m`, `/proc/cpuinfo`, `/proc/meminfo`, cpufreq's maximum,
    /// the cgroup memory limit and the free space of the login directory, in that order.
    public static let script = [
        "uname -m",
        "cat /proc/cpuinfo 2>/dev/null",
        "cat /proc/meminfo 2>/dev/null",
        "cat /sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq 2>/dev/null",
        "cat /sys/fs/cgroup/memory.max 2>/dev/null",
        "df -Pk \"${PERCH_HOME:-$HOME}\" 2>/dev/null | tail -n 1",
    ].joined(separator: "; echo '" + marker + "'; ")

    /// The profile the script's output describes, named `name`; a failure when the output is not
    /// from `script` or names an ISA Perch does not target.
    public static func profile(fromOutput output: String, name: String) -> Result<DeviceProfile, ProbeFailure> {
        let sections = output.components(separatedBy: marker + "\n")
        guard sections.count == 6 else { return .failure(.unrecognizedOutput) }
        let machine = sections[0].trimmingCharacters(in: .whitespacesAndNewlines)
        guard HostProfile.isa(machine: machine) != nil else { return .failure(.unknownISA(machine)) }
        let maxKHz = Int(sections[3].trimmingCharacters(in: .whitespacesAndNewlines))
        var profile = HostProfile.detect(machine: machine, cpuinfo: sections[1], meminfo: sections[2], cpuMaxKHz: maxKHz)
        profile.name = name
        profile.description = "Probed from the device" + (profile.cpu.core.map { " (\($0))" } ?? "")
        if let limit = Int(sections[4].trimmingCharacters(in: .whitespacesAndNewlines)), limit > 0 {
            profile.memory.ramMB = max(1, min(profile.memory.ramMB, limit / 1_048_576))
        }
        // df -Pk: "filesystem 1024-blocks used available capacity mount".
        let df = sections[5].split(separator: " ", omittingEmptySubsequences: true)
        if df.count >= 4, let freeKB = Int(df[3]) { profile.storageMB = max(1, freeKB / 1024) }
        guard profile.memory.ramMB > 0 else { return .failure(.unrecognizedOutput) }
        return .success(profile)
    }

    /// Why a probe's output could not become a profile.
    public enum ProbeFailure: Error, Equatable, CustomStringConvertible {
        case unrecognizedOutput
        case unknownISA(String)

        public var description: String {
            switch self {
            case .unrecognizedOutput: return "the device's answer is not a Linux system description (no /proc/meminfo?)"
            case .unknownISA(let m): return "the device's CPU '\(m)' is not one Perch targets (aarch64, armv7, x86_64, riscv64)"
            }
        }
    }

    /// A profile name from a host name: lowercase letters, digits and dashes.
    public static func profileName(forHost host: String) -> String {
        let mapped = host.lowercased().map { c -> Character in (c.isLetter && c.isASCII) || c.isNumber ? c : "-" }
        let trimmed = String(mapped).split(separator: "-").joined(separator: "-")
        return "probed-" + (trimmed.isEmpty ? "device" : trimmed)
    }
}
