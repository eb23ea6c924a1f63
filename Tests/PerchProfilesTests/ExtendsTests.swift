import Foundation
import XCTest
@testable import PerchProfiles

/// `extends`: deep merge (child wins), lookup beside the file and in the bundled profiles,
/// missing parents and cycles.
final class ExtendsTests: ProfileTestCase {
    func testDeepMergeChildWins() throws {
        try write("base", """
            name: base
            abstract: true
            description: not inherited
            cpu:
              isa: aarch64
              features: [neon, dotprod]
              cores: 4
              clock_mhz: 1800
            memory:
              model_share: 0.25
            storage_mb: 1000
            budgets:
              latency_ms: 30
              max_accuracy_drop: 0.5
            """)
        let child = try write("child", """
            name: child
            extends: base
            cpu:
              features: [neon]
              clock_mhz: 1200
            memory:
              ram_mb: 2048
            budgets:
              latency_ms: 10
            """)
        XCTAssertEqual(try loader.load(file: child), DeviceProfile(
            name: "child", extends: "base", description: nil,
            cpu: .init(isa: .aarch64, features: [.neon], cores: 4, clockMHz: 1200),
            memory: .init(ramMB: 2048, modelShare: 0.25),
            storageMB: 1000,
            budgets: .init(latencyMS: 10, maxAccuracyDrop: 0.5)
        ))
    }

    func testChainOfThreeAndDefaults() throws {
        try write("a", "name: a\nabstract: true\ncpu: {isa: x86_64, features: [avx2]}\n")
        try write("b", "name: b\nabstract: true\nextends: a\ncpu: {cores: 8}\n")
        let c = try write("c", "name: c\nextends: b\nmemory: {ram_mb: 100}\n")
        let p = try loader.load(file: c)
        XCTAssertEqual(p.cpu, .init(isa: .x86_64, features: [.avx2], cores: 8))
        XCTAssertEqual(p.memory, .init(ramMB: 100, modelShare: 0.5))
        XCTAssertEqual(p.memoryBudgetBytes, 50 * 1_048_576)
        XCTAssertEqual(p.accelerator, .none)
    }

    func testExtendsABundledProfile() throws {
        let mine = try write("my-pi", "name: my-pi\nextends: rpi4\nmemory: {ram_mb: 8192}\n")
        let p = try loader.load(file: mine)
        XCTAssertEqual(p.cpu.core, "cortex-a72")
        XCTAssertEqual(p.memory.ramMB, 8192)
        XCTAssertEqual(p.budgets.latencyMS, 50)
        XCTAssertNil(p.description, "description is not inherited")
    }

    func testRequiredKeyInheritedFromParentIsNotMissing() throws {
        try write("p", "name: p\ncpu: {isa: riscv64, features: [rvv]}\nmemory: {ram_mb: 64}\n")
        XCTAssertEqual(try problems("k", "name: k\nextends: p\n"), [])
        // ... but a feature the child adds is checked against the inherited ISA, in the child.
        XCTAssertEqual(try problems("k2", "name: k2\nextends: p\ncpu:\n  features: [rvv, neon]\n"),
                       ["4:19: cpu feature 'neon' does not exist on riscv64 (riscv64 features: rvv, zfh, zvfh)"])
    }

    func testExtendsNamesNothing() throws {
        XCTAssertEqual(try problems("orphan", "name: orphan\nextends: rpi44\ncpu: {isa: aarch64}\nmemory: {ram_mb: 1}\n"), [
            "2:10: extends 'rpi44', but no profile has that name (looked for rpi44.yaml in \(dir!), \(Self.bundledDirectory)); did you mean 'rpi4'?",
        ])
    }

    func testCycleIsNamed() throws {
        try write("x", "name: x\nextends: y\ncpu: {isa: aarch64}\nmemory: {ram_mb: 1}\n")
        try write("y", "name: y\nextends: z\n")
        let z = try write("z", "name: z\n\nextends: x\n")
        let v = loader.validate(file: dir + "/x.yaml")
        XCTAssertEqual(v.diagnostics, [
            ProfileDiagnostic(file: z, line: 3, column: 10, message: "extends cycle: x → y → z → x"),
        ])
        XCTAssertNil(v.profile)
        let selfCycle = try problems("me", "name: me\nextends: me\ncpu: {isa: aarch64}\nmemory: {ram_mb: 1}\n")
        XCTAssertEqual(selfCycle, ["2:10: extends cycle: me → me"])
    }

    func testProblemsInTheParentPointAtTheParent() throws {
        let parent = try write("parent", "name: parent\ncpu:\n  isa: aarch64\n  cores: zero\n")
        let child = try write("kid", "name: kid\nextends: parent\nmemory: {ram_mb: 10}\n")
        let v = loader.validate(file: child)
        XCTAssertEqual(v.diagnostics.map(\.description), [parent + ":4:10: cpu.cores must be an integer, found string 'zero'"])
    }
}
