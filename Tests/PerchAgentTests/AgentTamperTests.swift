import Crypto
import Foundation
import PerchBundle
import XCTest

/// Every refusal of the acceptance list, on a device that runs 1.0.0: exit 4, a message
/// naming what failed, and afterwards 1.0.0 is still active and runs, with nothing left behind.
final class AgentTamperTests: AgentTestCase {
    override func setUpWithError() throws {
        try super.setUpWithError()
        let r = try agent(["install", try bundle("1.0.0")])
        XCTAssertEqual(r.status, 0, r.err)
    }

    func refuse(_ bundlePath: String, mentions: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let before = try FileManager.default.contentsOfDirectory(atPath: state + "/versions").sorted()
        assertRefused(try agent(["install", bundlePath]), mentions: mentions, file: file, line: line)
        assertActiveAndRuns("1.0.0", file: file, line: line)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: state + "/versions").sorted(), before, "versions/ unchanged", file: file, line: line)
        XCTAssertTrue(stagingIsEmpty(), "staging/ cleaned up", file: file, line: line)
    }

    func fileBytes(_ e: ArchiveEntry) -> [UInt8] {
        if case .file(let b) = e.kind { return b }
        return []
    }

    func testFlippedByteInModel() throws {
        let t = try tampered(try bundle("2.0.0")) { e in
            var b = self.fileBytes(e[2])
            b[b.count / 2] ^= 0x40
            e[2] = ArchiveEntry("model.perchm", .file(b))
        }
        try refuse(t, mentions: "hash check failed: SHA-256 of model.perchm")
    }

    func testEditedManifest() throws {
        let t = try tampered(try bundle("2.0.0")) { e in
            let text = String(decoding: self.fileBytes(e[0]), as: UTF8.self).replacingOccurrences(of: "\"test-device\"", with: "\"evil-device\"")
            e[0] = ArchiveEntry("manifest.json", .file(Array(text.utf8)))
        }
        try refuse(t, mentions: "signature check failed: manifest.sig does not verify")
    }

    func testSignatureByAnotherKey() throws {
        try refuse(try bundle("2.0.0", signedBy: .some(Curve25519.Signing.PrivateKey())), mentions: "does not verify against any trusted key")
    }

    func testMissingSignature() throws {
        let t = try tampered(try bundle("2.0.0")) { e in e.remove(at: 1) }
        try refuse(t, mentions: "not signed")
    }

    func testDotDotEntry() throws {
        let t = try tampered(try bundle("2.0.0")) { e in e.append(ArchiveEntry("eval/../../../evil.sh", .file(Array("#!/bin/sh\n".utf8)))) }
        try refuse(t, mentions: "path contains '..'")
        XCTAssertFalse(FileManager.default.fileExists(atPath: state + "/evil.sh"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/evil.sh"))
    }

    func testAbsolutePathEntry() throws {
        let target = "/tmp/perch-agent-evil-" + UUID().uuidString
        let t = try tampered(try bundle("2.0.0")) { e in e.append(ArchiveEntry(target, .file(Array("x".utf8)))) }
        try refuse(t, mentions: "absolute path")
        XCTAssertFalse(FileManager.default.fileExists(atPath: target))
    }

    func testSymlinkToEtc() throws {
        let t = try tampered(try bundle("2.0.0")) { e in e.insert(ArchiveEntry("model.perchm", .symlink("/etc")), at: 2) }
        try refuse(t, mentions: "symbolic link to '/etc'")
    }

    func testDecompressionBomb() throws {
        let t = try tampered(try bundle("2.0.0")) { e in e[2] = ArchiveEntry("model.perchm", .zeros(256 << 20)) }
        XCTAssertLessThan(try FileManager.default.attributesOfItem(atPath: t)[.size] as? Int ?? 0, 1 << 20)
        let t0 = Date()
        try refuse(t, mentions: "decompression bomb")
        XCTAssertLessThan(Date().timeIntervalSince(t0), 10, "stops early instead of inflating 256 MiB")
    }

    func testTruncatedArchive() throws {
        let full = try bundle("2.0.0", elements: 1 << 16)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: full))
        let cut = dir + "/cut.perch"
        write([UInt8](bytes.prefix(bytes.count * 2 / 3)), cut)
        try refuse(cut, mentions: "truncated")
    }

    func testOlderSignedBundleReplayed() throws {
        let old = try bundle("1.5.0")
        XCTAssertEqual(try agent(["install", try bundle("2.0.0")]).status, 0)
        XCTAssertEqual(try agent(["rollback", "--to", "1.0.0"]).status, 0)
        // 1.5.0 is correctly signed and newer than the active 1.0.0, but older than 2.0.0 which the
        // device has held: a captured old bundle cannot push the device back.
        try refuse(old, mentions: "downgrade refused")
        // Same version, different content: replay of a conflicting build.
        try refuse(try bundle("2.0.0", seed: 42), mentions: "replay refused")
        // The explicit way back still works.
        XCTAssertEqual(try agent(["rollback", "--to", "2.0.0"]).status, 0)
        assertActiveAndRuns("2.0.0")
    }

    func testDowngradeRefusedEvenAfterGC() throws {
        XCTAssertEqual(try agent(["install", try bundle("2.0.0")]).status, 0)
        XCTAssertEqual(try agent(["gc", "--keep", "1"]).status, 0)
        assertRefused(try agent(["install", try bundle("1.0.0")]), mentions: "downgrade refused")
        assertActiveAndRuns("2.0.0")
    }
}
