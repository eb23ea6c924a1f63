import Foundation
import XCTest
@testable import PerchProfiles

/// Every kind of problem, each at its exact line and column, all reported at once.
final class ValidationTests: ProfileTestCase {
    func testEveryProblemAtOnceWithPositions() throws {
        let found = try problems("bad", """
            name: bad
            cpu:
              isa: aarch64
              features: [neon, avx2, dotprd]
              cores: 0
              clok_mhz: 1500
            memory:
              ram_mb: -512
              model_share: 1.5
            storage_mb: "lots"
            accelerator:
              kind: none
              dtypes: [int8]
            budgets:
              latency_ms: fast
              max_accuracy_drop: 120
            colour: red
            """)
        XCTAssertEqual(found, [
            "4:20: cpu feature 'avx2' does not exist on aarch64 (aarch64 features: neon, fp16, dotprod, i8mm, bf16, sve, sve2)",
            "4:26: unknown cpu feature 'dotprd'; did you mean 'dotprod'?",
            "5:10: cpu.cores must be at least 1, found 0",
            "6:3: unknown key 'cpu.clok_mhz'; did you mean 'clock_mhz'?",
            "8:11: memory.ram_mb must be greater than 0, found -512",
            "9:16: memory.model_share must be a fraction in (0, 1], found 1.5",
            "10:13: storage_mb must be an integer, found string 'lots'",
            "13:11: accelerator.dtypes is set but accelerator.kind is none; remove dtypes or name the accelerator's kind",
            "15:15: budgets.latency_ms must be a number, found string 'fast'",
            "16:22: budgets.max_accuracy_drop must be between 0 and 100 (percentage points), found 120",
            "17:1: unknown key 'colour'; known keys: name, extends, abstract, description, cpu, memory, storage_mb, accelerator, budgets",
        ])
    }

    func testWrongTypes() throws {
        let found = try problems("types", """
            name: 42
            cpu: {isa: x86, cores: 4.5, features: neon}
            memory: [1]
            accelerator:
              kind: gpu
              dtypes: [fp16, 8]
            """)
        XCTAssertEqual(found, [
            // A bad name is reported once, not also as missing.
            "1:7: name must be a string, found integer 42",
            "2:12: unknown isa 'x86'; did you mean 'x86_64'?",
            "2:24: cpu.cores must be a whole number, found 4.5",
            "2:39: cpu.features must be a list, found string 'neon'",
            "3:9: memory must be a mapping, found a list",
            "6:18: accelerator.dtypes[1] must be a dtype name, found integer 8",
        ].sorted(by: Self.byPosition))
    }

    func testMissingRequiredKeys() throws {
        XCTAssertEqual(try problems("empty-cpu", """
            description: no name, no isa, no RAM
            cpu:
              cores: 4
            """), [
            "1:1: missing required key 'name'",
            "2:1: missing required key 'cpu.isa' (set it here or in the profile this extends)",
            "1:1: missing required key 'memory.ram_mb' (set it here or in the profile this extends)",
        ].sorted(by: Self.byPosition))
        XCTAssertEqual(try problems("gpu", """
            name: gpu
            cpu: {isa: aarch64}
            memory: {ram_mb: 1024}
            accelerator:
              name: something
            """), ["4:1: missing required key 'accelerator.kind' (none, gpu, npu or tpu)"])
        XCTAssertEqual(try problems("npu", """
            name: npu
            cpu: {isa: aarch64}
            memory: {ram_mb: 1024}
            accelerator: {kind: npu}
            """), ["4:21: accelerator.kind is npu but accelerator.dtypes is empty; list what it computes in, e.g. [int8] or [fp16, int8]"])
    }

    func testFeatureMustBelongToTheISA() throws {
        XCTAssertEqual(try problems("pi3", """
            name: pi3
            cpu:
              isa: armv7
              features:
                - neon
                - dotprod
            memory: {ram_mb: 1024}
            """), ["6:7: cpu feature 'dotprod' does not exist on armv7 (armv7 features: neon, vfpv4)"])
    }

    func testUnknownOpAndDuplicateKey() throws {
        XCTAssertEqual(try problems("tpu", """
            name: tpu
            cpu: {isa: aarch64}
            memory: {ram_mb: 1024}
            memory: {ram_mb: 2048}
            accelerator: {kind: tpu, dtypes: [int8], ops: [Conv, Softmaxx]}
            """), [
            "4:1: duplicate key 'memory' (first set at 3:1)",
            "5:54: unknown op 'Softmaxx'; did you mean 'Softmax'?",
        ])
    }

    func testYAMLSyntaxErrorAndEmptyFile() throws {
        XCTAssertEqual(try problems("syntax", "name: s\ncpu:\n  isa: [aarch64\nmemory: {}\n"),
                       ["4:7: YAML syntax error: while parsing a flow sequence did not find expected ',' or ']'"])
        XCTAssertEqual(try problems("empty", "# nothing\n"),
                       ["1:1: empty profile; a profile needs at least name, cpu.isa and memory.ram_mb"])
        XCTAssertEqual(try problems("list", "- a\n- b\n"), ["1:1: a profile must be a mapping, found a list"])
    }

    func testMissingFile() {
        let v = loader.validate(file: dir + "/nope.yaml")
        XCTAssertEqual(v.diagnostics.map(\.description), [dir + "/nope.yaml: no such file"])
    }

    func testDiagnosticDescriptionAndErrorMessage() throws {
        let path = try write("one", "name: one\ncpu: {isa: aarch64, cores: -1}\nmemory: {ram_mb: 1}\n")
        XCTAssertThrowsError(try loader.load(file: path)) { error in
            guard case ProfileError.invalid(let ds) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(ds.map(\.description), [path + ":2:28: cpu.cores must be at least 1, found -1"])
            XCTAssertEqual((error as? ProfileError)?.description, "1 problem in profile " + path)
        }
    }

    static func byPosition(_ a: String, _ b: String) -> Bool {
        func key(_ s: String) -> (Int, Int) {
            let parts = s.split(separator: ":")
            return (Int(parts[0])!, Int(parts[1])!)
        }
        return key(a) < key(b)
    }
}
