import Foundation
import XCTest
@testable import PerchProfiles

final class HostProfileTests: XCTestCase {
    func testThisMachineIsSane() throws {
        let p = HostProfile.detect()
        XCTAssertEqual(p.name, "host")
        #if arch(x86_64)
        XCTAssertEqual(p.cpu.isa, .x86_64)
        #elseif arch(arm64)
        XCTAssertEqual(p.cpu.isa, .aarch64)
        #endif
        XCTAssertGreaterThanOrEqual(p.cpu.cores ?? 0, 1)
        XCTAssertGreaterThan(p.memory.ramMB, 64)
        XCTAssertLessThan(p.memory.ramMB, 64 * 1024 * 1024)
        XCTAssertEqual(p.memory.modelShare, 0.5)
        for f in p.cpu.features { XCTAssertTrue(f.isas.contains(p.cpu.isa), "\(f)") }
        // The detected profile is itself a valid profile file.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("host-\(UUID().uuidString).yaml").path
        try p.yamlText().write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertEqual(try ProfileLoader(searchPaths: []).load(file: path), p)
    }

    func testLoaderNameHostIsDetected() throws {
        XCTAssertEqual(try ProfileLoader(searchPaths: []).load(name: "host").name, "host")
    }

    func testRaspberryPi4CPUInfo() {
        let cpuinfo = (0..<4).map { i in """
            processor\t: \(i)
            BogoMIPS\t: 108.00
            Features\t: fp asimd evtstrm crc32 cpuid
            CPU implementer\t: 0x41
            CPU architecture: 8
            CPU variant\t: 0x0
            CPU part\t: 0xd08
            CPU revision\t: 3

            """ }.joined() + "Hardware\t: BCM2835\nModel\t: Raspberry Pi 4 Model B Rev 1.4\n"
        let p = HostProfile.detect(machine: "aarch64", cpuinfo: cpuinfo, meminfo: "MemTotal:        3884356 kB\nMemFree: 1 kB\n", cpuMaxKHz: 1_800_000)
        XCTAssertEqual(p.cpu, .init(isa: .aarch64, features: [.neon], cores: 4, clockMHz: 1800, core: "cortex-a72"))
        XCTAssertEqual(p.memory.ramMB, 3793)
    }

    func testRaspberryPi5CPUInfo() {
        let cpuinfo = """
            processor\t: 0
            Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
            CPU implementer\t: 0x41
            CPU part\t: 0xd0b
            """
        let p = HostProfile.detect(machine: "aarch64", cpuinfo: cpuinfo, meminfo: "MemTotal: 8245200 kB\n")
        XCTAssertEqual(p.cpu.features, [.neon, .fp16, .dotprod])
        XCTAssertEqual(p.cpu.core, "cortex-a76")
        XCTAssertTrue(p.supportsFP16Arithmetic && p.supportsInt8Dot)
    }

    func testArmv7AndX86AndRISCV() {
        let pi3 = HostProfile.detect(machine: "armv7l", cpuinfo: "processor : 0\nFeatures : half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm crc32\nCPU implementer : 0x41\nCPU part : 0xd03\n", meminfo: "MemTotal: 948304 kB")
        XCTAssertEqual(pi3.cpu, .init(isa: .armv7, features: [.neon, .vfpv4], cores: 1, core: "cortex-a53"))
        XCTAssertEqual(pi3.memory.ramMB, 926)

        let n100 = HostProfile.detect(machine: "x86_64", cpuinfo: "processor : 0\nmodel name : Intel(R) N100\ncpu MHz : 806.4\nflags : fpu sse4_1 sse4_2 avx f16c fma avx2 avx_vnni\nprocessor : 1\n", meminfo: "MemTotal: 16000000 kB")
        XCTAssertEqual(n100.cpu, .init(isa: .x86_64, features: [.sse4_2, .avx, .avx2, .fma, .f16c, .avxvnni], cores: 2, clockMHz: 806, core: "Intel(R) N100"))

        let rv = HostProfile.detect(machine: "riscv64", cpuinfo: "processor : 0\nisa : rv64imafdcv_zicsr_zfh\n", meminfo: "MemTotal: 2048000 kB")
        XCTAssertEqual(rv.cpu.features, [.rvv, .zfh])
        XCTAssertEqual(HostProfile.isa(machine: "armv8l"), .armv7)
        XCTAssertNil(HostProfile.isa(machine: "i686"))
    }
}
