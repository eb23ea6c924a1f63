import PerchProfiles
import XCTest

/// `perch profile probe`'s parsing: the probe script's output from a Raspberry Pi 5 running a
/// 64-bit OS becomes a valid profile with the board's facts.
final class DeviceProbeTests: XCTestCase {
    static let piFive = [
        "aarch64\n",
        (0..<4).map { i in
            "processor\t: \(i)\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\n"
                + "CPU implementer\t: 0x41\nCPU part\t: 0xd0b\n\n"
        }.joined(),
        "MemTotal:        8245200 kB\nMemFree:         7000000 kB\n",
        "2400000\n",
        "",
        "/dev/mmcblk0p2   30358348 5460748  23594856      19% /\n",
    ]

    func output(_ sections: [String]) -> String {
        sections.joined(separator: "@@perch-probe@@\n")
    }

    func testRaspberryPi5() throws {
        let p = try DeviceProbe.profile(fromOutput: output(Self.piFive), name: "probed-pi5").get()
        XCTAssertEqual(p.name, "probed-pi5")
        XCTAssertEqual(p.cpu, .init(isa: .aarch64, features: [.neon, .fp16, .dotprod], cores: 4, clockMHz: 2400, core: "cortex-a76"))
        XCTAssertEqual(p.memory.ramMB, 8051)
        XCTAssertEqual(p.storageMB, 23041)
        // What probe prints is a profile that validates and resolves to the same facts.
        let dir = NSTemporaryDirectory() + "perch-probe-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/probed-pi5.yaml"
        try p.yamlText().write(toFile: file, atomically: true, encoding: .utf8)
        let loader = ProfileLoader(searchPaths: [])
        XCTAssertTrue(loader.validate(file: file).isValid, "\(loader.validate(file: file).diagnostics)")
        let loaded = try loader.load(nameOrFile: file)
        XCTAssertEqual(loaded.cpu, p.cpu)
        XCTAssertEqual(loaded.memory.ramMB, p.memory.ramMB)
    }

    func testCgroupLimitCapsRAM() throws {
        var s = Self.piFive
        s[4] = "536870912\n"
        XCTAssertEqual(try DeviceProbe.profile(fromOutput: output(s), name: "x").get().memory.ramMB, 512)
        s[4] = "max\n"
        XCTAssertEqual(try DeviceProbe.profile(fromOutput: output(s), name: "x").get().memory.ramMB, 8051)
    }

    func testUnknownMachineAndGarbage() {
        var s = Self.piFive
        s[0] = "mips\n"
        XCTAssertEqual(DeviceProbe.profile(fromOutput: output(s), name: "x"), .failure(.unknownISA("mips")))
        XCTAssertEqual(DeviceProbe.profile(fromOutput: "Microsoft Windows [Version 10]\n", name: "x"), .failure(.unrecognizedOutput))
        s = Self.piFive
        s[2] = ""
        XCTAssertEqual(DeviceProbe.profile(fromOutput: output(s), name: "x"), .failure(.unrecognizedOutput))
    }

    func testProfileNames() {
        XCTAssertEqual(DeviceProbe.profileName(forHost: "Pi5.local"), "probed-pi5-local")
        XCTAssertEqual(DeviceProbe.profileName(forHost: "10.213.0.2"), "probed-10-213-0-2")
        XCTAssertEqual(DeviceProbe.profileName(forHost: "::1"), "probed-1")
    }
}
