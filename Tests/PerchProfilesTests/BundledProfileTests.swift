import Foundation
import XCTest
@testable import PerchProfiles

/// The profiles in device-profiles/ validate and carry their hardware's facts.
final class BundledProfileTests: ProfileTestCase {
    func testEveryBundledProfileValidates() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.bundledDirectory).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertEqual(files, [
            "coral-dev-board.yaml", "jetson-orin-nano.yaml", "raspberry-pi-base.yaml", "rpi-zero-2w.yaml",
            "rpi3b-armv7.yaml", "rpi4.yaml", "rpi5.yaml", "x86-avx2-minipc.yaml",
        ])
        for file in files {
            let v = loader.validate(file: Self.bundledDirectory + "/" + file)
            XCTAssertEqual(v.diagnostics, [], file)
            XCTAssertEqual(v.name, String(file.dropLast(5)), "the name matches the file name")
            if file == "raspberry-pi-base.yaml" {
                XCTAssertTrue(v.isAbstract)
                XCTAssertNil(v.profile)
            } else {
                XCTAssertFalse(v.isAbstract, file)
                XCTAssertNotNil(v.profile, file)
            }
        }
    }

    func testRaspberryPi4() throws {
        let p = try loader.load(name: "rpi4")
        XCTAssertEqual(p, DeviceProfile(
            name: "rpi4", extends: "raspberry-pi-base",
            description: "Raspberry Pi 4 Model B (4x Cortex-A72 1.5-1.8 GHz, 4 GB)",
            cpu: .init(isa: .aarch64, features: [.neon], cores: 4, clockMHz: 1500, core: "cortex-a72"),
            memory: .init(ramMB: 4096, modelShare: 0.5),
            storageMB: 16384,
            accelerator: .none,
            budgets: .init(latencyMS: 50, maxAccuracyDrop: 1.0, maxModelMB: 256)
        ))
        XCTAssertEqual(p.memoryBudgetBytes, 2048 * 1_048_576)
        XCTAssertFalse(p.supportsInt8Dot)
        XCTAssertFalse(p.supportsFP16Arithmetic)
        XCTAssertTrue(p.hasVectorUnit)
        XCTAssertEqual(p.isaDescription, "aarch64+neon")
    }

    func testHardwareFacts() throws {
        let zero = try loader.load(name: "rpi-zero-2w")
        XCTAssertEqual(zero.cpu, .init(isa: .aarch64, features: [.neon], cores: 4, clockMHz: 1000, core: "cortex-a53"))
        XCTAssertEqual(zero.memory.ramMB, 512)
        XCTAssertEqual(zero.memoryBudgetBytes, Int(512.0 * 1_048_576 * 0.35))

        let pi3 = try loader.load(name: "rpi3b-armv7")
        XCTAssertEqual(pi3.cpu, .init(isa: .armv7, features: [.neon, .vfpv4], cores: 4, clockMHz: 1200, core: "cortex-a53"))
        XCTAssertEqual(pi3.memory.ramMB, 1024)

        let pi5 = try loader.load(name: "rpi5")
        XCTAssertEqual(pi5.cpu.features, [.neon, .dotprod, .fp16])
        XCTAssertEqual(pi5.cpu.clockMHz, 2400)
        XCTAssertEqual(pi5.memory.ramMB, 8192)
        XCTAssertTrue(pi5.supportsInt8Dot)
        XCTAssertTrue(pi5.supportsFP16Arithmetic)
        XCTAssertFalse(pi5.supportsInt8MatMul)

        let jetson = try loader.load(name: "jetson-orin-nano")
        XCTAssertEqual(jetson.cpu.cores, 6)
        XCTAssertEqual(jetson.cpu.core, "cortex-a78ae")
        XCTAssertEqual(jetson.memory.ramMB, 8192)
        XCTAssertEqual(jetson.accelerator.kind, .gpu)
        XCTAssertEqual(jetson.accelerator.dtypes, [.fp32, .fp16, .int8])
        XCTAssertFalse(jetson.accelerator.isIntegerOnly)
        XCTAssertTrue(jetson.accelerator.runs(.softmax), "no ops list: assumed to run any op")

        let coral = try loader.load(name: "coral-dev-board")
        XCTAssertEqual(coral.cpu.cores, 4)
        XCTAssertEqual(coral.memory.ramMB, 1024)
        XCTAssertEqual(coral.accelerator.kind, .tpu)
        XCTAssertTrue(coral.accelerator.isIntegerOnly)
        XCTAssertTrue(coral.accelerator.supports(.int8))
        XCTAssertFalse(coral.accelerator.supports(.fp16))
        XCTAssertTrue(coral.accelerator.runs(.conv))
        XCTAssertFalse(coral.accelerator.runs(.layerNormalization))

        let mini = try loader.load(name: "x86-avx2-minipc")
        XCTAssertEqual(mini.cpu.isa, .x86_64)
        XCTAssertEqual(mini.cpu.cores, 4)
        XCTAssertTrue(mini.cpu.has(.avx2) && mini.cpu.has(.fma))
        XCTAssertFalse(mini.cpu.has(.avx512f))
        XCTAssertTrue(mini.supportsInt8Dot, "AVX-VNNI")
        XCTAssertEqual(mini.memory.ramMB, 8192)
    }

    func testAbstractBaseCannotBeLoaded() {
        XCTAssertThrowsError(try loader.load(name: "raspberry-pi-base")) { error in
            guard case ProfileError.abstract(let name, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(name, "raspberry-pi-base")
        }
    }

    func testUnknownNameSuggestsClosest() {
        XCTAssertThrowsError(try loader.load(name: "rpi6")) { error in
            guard case ProfileError.notFound(let name, let searched, let suggestion) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(name, "rpi6")
            XCTAssertEqual(searched, [Self.bundledDirectory])
            XCTAssertEqual(suggestion, "rpi4")
        }
    }

    func testYAMLRenderingReadsBackAsTheSameProfile() throws {
        for name in ["rpi4", "coral-dev-board", "jetson-orin-nano", "x86-avx2-minipc"] {
            let p = try loader.load(name: name)
            let path = try write(name, p.yamlText())
            var expected = p
            expected.extends = nil
            XCTAssertEqual(try loader.load(file: path), expected, name)
        }
    }

    func testJSONRoundTrip() throws {
        let p = try loader.load(name: "coral-dev-board")
        let decoded = try JSONDecoder().decode(DeviceProfile.self, from: Data(p.jsonText().utf8))
        XCTAssertEqual(decoded, p)
        XCTAssertTrue(p.jsonText().contains("\"ram_mb\" : 1024"), p.jsonText())
    }

    func testSearchPaths() throws {
        let env = try write("x", "")  // a file, not a directory: skipped
        let paths = ProfileLoader.defaultSearchPaths(
            environment: ["PERCH_PROFILES": dir + ":" + env + ":/nonexistent"],
            currentDirectory: "/nonexistent",
            executablePath: Self.repoRoot.appendingPathComponent(".build/debug/perch").path
        )
        XCTAssertEqual(paths, [dir, Self.bundledDirectory])
    }
}
