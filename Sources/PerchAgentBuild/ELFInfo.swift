import Foundation

/// The few ELF header facts Perch checks on an agent binary before shipping it: machine, and
/// whether it needs a dynamic loader (a `PT_INTERP` program header) or runs on its own.
public struct ELFInfo: Equatable, Sendable {
    /// `e_machine`: 183 aarch64, 40 ARM, 62 x86_64.
    public var machine: UInt16
    public var is64Bit: Bool
    /// True when no program header asks for an interpreter (static or static-pie).
    public var isStatic: Bool
    /// True for a position-independent executable (`e_type` ET_DYN).
    public var isPIE: Bool

    /// The ISA name Perch uses for `machine`, or nil for others.
    public var isa: AgentISA? {
        AgentISA.allCases.first { $0.elfMachine == machine }
    }

    public static func read(path: String) -> ELFInfo? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return parse([UInt8](data))
    }

    public static func parse(_ b: [UInt8]) -> ELFInfo? {
        guard b.count >= 52, b[0] == 0x7f, b[1] == 0x45, b[2] == 0x4c, b[3] == 0x46, b[5] == 1 else { return nil }
        let is64 = b[4] == 2
        func u16(_ o: Int) -> Int { o + 2 <= b.count ? Int(b[o]) | Int(b[o + 1]) << 8 : 0 }
        func u32(_ o: Int) -> Int { o + 4 <= b.count ? u16(o) | u16(o + 2) << 16 : 0 }
        func u64(_ o: Int) -> Int { o + 8 <= b.count ? u32(o) | u32(o + 4) << 32 : 0 }
        let type = u16(16)
        let machine = UInt16(u16(18))
        let phoff = is64 ? u64(32) : u32(28)
        let phentsize = is64 ? u16(54) : u16(42)
        let phnum = is64 ? u16(56) : u16(44)
        var interp = false
        for i in 0..<phnum {
            let o = phoff + i * phentsize
            if o + 4 > b.count { return nil }
            if u32(o) == 3 { interp = true }  // PT_INTERP
        }
        return ELFInfo(machine: machine, is64Bit: is64, isStatic: !interp, isPIE: type == 3)
    }
}
