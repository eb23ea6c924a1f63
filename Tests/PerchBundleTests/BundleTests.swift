import Crypto
import Foundation
import PerchBundle
import PerchGraph
import XCTest

/// Pack/verify in the library, and every tampering case the device must refuse.
final class BundleTests: XCTestCase {
    var dir = ""
    let key = Curve25519.Signing.PrivateKey()
    let otherKey = Curve25519.Signing.PrivateKey()

    override func setUp() { dir = Fixtures.tempDirectory("bundle") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func refusal(_ bundle: [UInt8], allowUnsigned: Bool = false, file: StaticString = #filePath, line: UInt = #line) -> BundleError? {
        do {
            _ = try BundleVerifier.verify(bundle, trustedKeys: [key.publicKey], allowUnsigned: allowUnsigned)
            XCTFail("the bundle was accepted", file: file, line: line)
            return nil
        } catch let e as BundleError {
            XCTAssertTrue(e.isIntegrity, "refusal should be an integrity error: \(e)", file: file, line: line)
            return e
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
            return nil
        }
    }

    func testPackVerifyRoundTrip() throws {
        let b = try Fixtures.bundle(dir: dir, version: "1.2.0", seed: 1, key: key)
        let v = try BundleVerifier.verify(b, trustedKeys: [otherKey.publicKey, key.publicKey])
        XCTAssertEqual(v.manifest.modelName, "tiny")
        XCTAssertEqual(v.manifest.modelVersion, "1.2.0")
        XCTAssertEqual(v.signerIndex, 1)
        XCTAssertEqual(v.files.map(\.name), ["model.perchm"])
        XCTAssertEqual(v.files[0].bytes, Fixtures.model(seed: 1))
        let entries = try Fixtures.entries(b)
        XCTAssertEqual(entries.map(\.0), ["manifest.json", "manifest.sig", "model.perchm"])
        let manifestText = String(decoding: entries[0].1, as: UTF8.self)
        XCTAssertTrue(manifestText.hasPrefix("{\"bundle_format\":1,\"created\":\"2026-01-01T00:00:00Z\",\"engine_version\":\"0.1.0\",\"files\":{\"model.perchm\":{\"sha256\":\""), manifestText)
        XCTAssertFalse(manifestText.contains(" "), "canonical JSON has no whitespace")
        XCTAssertEqual(entries[1].1.count, 64)
    }

    func testPackingIsDeterministic() throws {
        let evalDir = dir + "/eval"
        try FileManager.default.createDirectory(atPath: evalDir + "/inputs", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: evalDir + "/outputs", withIntermediateDirectories: true)
        Fixtures.write(NPY.encode(Tensor(shape: [1, 16], values: [Float](repeating: 1, count: 16))), evalDir + "/inputs/x.npy")
        Fixtures.write(NPY.encode(Tensor(shape: [1, 16], values: [Float](repeating: 2, count: 16))), evalDir + "/outputs/y.npy")
        let a = try Fixtures.bundle(dir: dir, version: "1.0.0", seed: 1, key: key, evalDir: evalDir)
        let b = try Fixtures.bundle(dir: dir, version: "1.0.0", seed: 1, key: key, evalDir: evalDir)
        XCTAssertEqual(a, b)
        XCTAssertEqual(try Fixtures.entries(a).map(\.0), ["manifest.json", "manifest.sig", "model.perchm", "eval/inputs/x.npy", "eval/outputs/y.npy"])
        let c = try Fixtures.bundle(dir: dir, version: "1.0.1", seed: 1, key: key, evalDir: evalDir)
        XCTAssertNotEqual(a, c)
    }

    func testCreatedComesFromSourceDateEpochOrModelMtime() throws {
        let path = dir + "/m.perchm"
        Fixtures.write(Fixtures.model(seed: 1), path)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: 1_700_000_000)], ofItemAtPath: path)
        if ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"] == nil {
            XCTAssertEqual(try BundlePacker.createdTime(modelPath: path), "2023-11-14T22:13:20Z")
        }
        setenv("SOURCE_DATE_EPOCH", "0", 1)
        defer { unsetenv("SOURCE_DATE_EPOCH") }
        XCTAssertEqual(try BundlePacker.createdTime(modelPath: path), "1970-01-01T00:00:00Z")
    }

    func testFlippedModelByte() throws {
        var e = try Fixtures.entries(try Fixtures.bundle(dir: dir, version: "1.0.0", seed: 1, key: key))
        e[2].1[e[2].1.count / 2] ^= 0x01
        let err = refusal(try BundleArchive.write(e.map { ArchiveEntry($0.0, .file($0.1)) }))
        XCTAssertTrue(err?.description.contains("SHA-256 of model.perchm") == true, "\(String(describing: err))")
    }

    func testEditedManifest() throws {
        var e = try Fixtures.entries(try Fixtures.bundle(dir: dir, version: "1.0.0", seed: 1, key: key))
        e[0].1 = Array(String(decoding: e[0].1, as: UTF8.self).replacingOccurrences(of: "\"1.0.0\"", with: "\"9.0.0\"").utf8)
        let err = refusal(try BundleArchive.write(e.map { ArchiveEntry($0.0, .file($0.1)) }))
        XCTAssertTrue(err?.description.contains("does not verify") == true, "\(String(describing: err))")
    }

    func testSignedByAnotherKey() throws {
        let err = refusal(try Fixtures.bundle(dir: dir, version: "1.0.0", seed: 1, key: otherKey))
        XCTAssertTrue(err?.description.contains("does not verify against the trusted key") == true, "\(String(describing: err))")
    }

    func testMissingSignature() throws {
        let b = try Fixtures.bundle(dir: dir, version: "1.0.0", seed: 1, key: nil)
        let err = refusal(b)
        XCTAssertTrue(err?.description.contains("not signed") == true, "\(String(describing: err))")
        XCTAssertNoThrow(try BundleVerifier.verify(b, trustedKeys: [], allowUnsigned: true))
    }

    func hostile(_ extra: ArchiveEntry) throws -> [UInt8] {
        let e = try Fixtures.entries(try Fixtures.bundle(dir: dir, version: "1.0.0", seed: 1, key: key))
        return try BundleArchive.write(e.map { ArchiveEntry($0.0, .file($0.1)) } + [extra])
    }

    func testDotDotEntry() throws {
        let err = refusal(try hostile(ArchiveEntry("eval/../../evil.sh", .file(Array("x".utf8)))))
        XCTAssertTrue(err?.description.contains("'..'") == true, "\(String(describing: err))")
    }

    func testAbsolutePathEntry() throws {
        let err = refusal(try hostile(ArchiveEntry("/tmp/perch-evil", .file(Array("x".utf8)))))
        XCTAssertTrue(err?.description.contains("absolute path") == true, "\(String(describing: err))")
    }

    func testSymlinkToEtc() throws {
        let err = refusal(try hostile(ArchiveEntry("eval/inputs/x.npy", .symlink("/etc"))))
        XCTAssertTrue(err?.description.contains("symbolic link to '/etc'") == true, "\(String(describing: err))")
    }

    func testDeviceEntry() throws {
        let err = refusal(try hostile(ArchiveEntry("eval/inputs/x.npy", .characterDevice)))
        XCTAssertTrue(err?.description.contains("device") == true, "\(String(describing: err))")
    }

    func testDecompressionBomb() throws {
        let e = try Fixtures.entries(try Fixtures.bundle(dir: dir, version: "1.0.0", seed: 1, key: key))
        let bomb = try BundleArchive.write([ArchiveEntry(e[0].0, .file(e[0].1)), ArchiveEntry(e[1].0, .file(e[1].1)),
                                            ArchiveEntry("model.perchm", .zeros(64 << 20))])
        XCTAssertLessThan(bomb.count, 1 << 20, "the bomb should compress well")
        let err = refusal(bomb)
        XCTAssertTrue(err?.description.contains("decompression bomb") == true, "\(String(describing: err))")
    }

    func testTruncatedArchive() throws {
        let b = try Fixtures.bundle(dir: dir, version: "1.0.0", seed: 1, elements: 4096, key: key)
        let err = refusal(Array(b[0..<(b.count / 2)]))
        XCTAssertTrue(err?.description.contains("truncated") == true, "\(String(describing: err))")
    }

    func testKeysRoundTrip() throws {
        let paths = try BundleKeys.generate(in: dir + "/keys")
        let secret = try BundleKeys.loadSecret(paths.secretPath)
        let pub = try BundleKeys.loadPublic(paths.publicPath)
        XCTAssertEqual(secret.publicKey.rawRepresentation, pub.rawRepresentation)
        let mode = try FileManager.default.attributesOfItem(atPath: paths.secretPath)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)
        XCTAssertThrowsError(try BundleKeys.generate(in: dir + "/keys"))
        XCTAssertThrowsError(try BundleKeys.loadPublic(paths.secretPath))
    }

    func testVersionOrdering() {
        XCTAssertEqual(BundleManifest.compareVersions("1.10.0", "1.9.9"), 1)
        XCTAssertEqual(BundleManifest.compareVersions("1.0", "1.0.0"), 0)
        XCTAssertFalse(BundleManifest.isValidVersion("1.0-beta"))
        XCTAssertFalse(BundleManifest.isValidName("../x"))
    }
}
