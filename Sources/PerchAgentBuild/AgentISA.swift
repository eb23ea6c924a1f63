import Foundation

/// A device ISA that `perch agent build` can produce a static `perch-agent` for, with the
/// Embedded Swift target, the C cross toolchain and the multiarch library folder that go with it.
public enum AgentISA: String, CaseIterable, Sendable {
    case aarch64
    case armv7
    case x86_64

    /// Parses the names profiles and users write (`arm64` is Debian's and Apple's name for aarch64).
    public init?(name: String) {
        switch name.lowercased() {
        case "aarch64", "arm64": self = .aarch64
        case "armv7", "armv7l", "armhf", "arm": self = .armv7
        case "x86_64", "amd64", "x86-64": self = .x86_64
        default: return nil
        }
    }

    /// The ISA of the machine this process runs on.
    public static var host: AgentISA {
        #if arch(arm64)
        return .aarch64
        #elseif arch(arm)
        return .armv7
        #else
        return .x86_64
        #endif
    }

    /// Embedded Swift target triple (a folder of `lib/swift/embedded/` must exist for it).
    var swiftTarget: String {
        switch self {
        case .aarch64: return "aarch64-none-none-elf"
        case .armv7: return "armv7-none-none-eabi"
        case .x86_64: return "x86_64-unknown-linux-gnu"
        }
    }

    /// Extra swiftc flags: armv7-none-none-eabi defaults to the soft-float calling convention, but
    /// Debian's armhf libc and libraries pass floats in VFP registers; clang's option switches the
    /// Swift code's C ABI too (the object then carries Tag_ABI_VFP_args).
    var extraSwiftFlags: [String] {
        switch self {
        case .armv7: return ["-Xcc", "-mfloat-abi=hard", "-Xcc", "-mfpu=neon"]
        default: return []
        }
    }

    /// GNU triple of the C cross toolchain and of Debian's multiarch folders.
    var gnuTriple: String {
        switch self {
        case .aarch64: return "aarch64-linux-gnu"
        case .armv7: return "arm-linux-gnueabihf"
        case .x86_64: return "x86_64-linux-gnu"
        }
    }

    /// Debian architecture name (`dpkg --add-architecture`).
    var debianArch: String {
        switch self {
        case .aarch64: return "arm64"
        case .armv7: return "armhf"
        case .x86_64: return "amd64"
        }
    }

    /// C headers and crt files of the target's libc.
    var sysroot: String {
        self == .host ? "/" : "/usr/" + gnuTriple
    }

    /// `e_machine` of an ELF file for this ISA.
    var elfMachine: UInt16 {
        switch self {
        case .aarch64: return 183
        case .armv7: return 40
        case .x86_64: return 62
        }
    }

    /// The Debian packages that provide the cross toolchain and static libraries.
    var debianPackages: [String] {
        let libs = ["libarchive-dev", "libsodium-dev", "libzstd-dev"]
        switch self {
        case .aarch64: return ["gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross"] + libs.map { $0 + ":arm64" }
        case .armv7: return ["gcc-arm-linux-gnueabihf", "libc6-dev-armhf-cross"] + libs.map { $0 + ":armhf" }
        case .x86_64: return ["gcc"] + libs
        }
    }
}
