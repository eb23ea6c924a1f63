import Foundation
import XCTest

/// SIGKILL at every named step of an install, at random moments, and full disks (simulated and a
/// real tmpfs): the previous version stays active and runs, and the next install succeeds.
final class AgentCrashTests: AgentTestCase {
    static let steps = ["locked", "verified", "staging", "extracting", "extracted", "synced", "renamed", "recorded", "linked", "switched"]

    /// After a kill: the active version is the old one or (only once the switch happened) the new
    /// one, complete; bench runs it; a fresh install recovers.
    func checkRecovered(new: String, newBundle: String, switched: Bool?, file: StaticString = #filePath, line: UInt = #line) throws {
        let active = activeVersion(file: file, line: line)
        if let switched {
            XCTAssertEqual(active, switched ? new : "1.0.0", file: file, line: line)
        } else {
            XCTAssertTrue(active == "1.0.0" || active == new, "active \(active ?? "none")", file: file, line: line)
        }
        assertActiveAndRuns(active ?? "?", file: file, line: line)
        for v in try FileManager.default.contentsOfDirectory(atPath: state + "/versions") {
            XCTAssertTrue(FileManager.default.fileExists(atPath: state + "/versions/" + v + "/model.perchm"), "complete: " + v, file: file, line: line)
        }
        let again = try agent(["install", newBundle])
        XCTAssertEqual(again.status, 0, "install after the kill: " + again.err, file: file, line: line)
        XCTAssertEqual(activeVersion(file: file, line: line), new, file: file, line: line)
        XCTAssertTrue(stagingIsEmpty(), file: file, line: line)
    }

    func testKillAtEveryStep() throws {
        let v1 = try bundle("1.0.0")
        let v2 = try bundle("2.0.0", elements: 1 << 16)
        for (i, step) in Self.steps.enumerated() {
            try? FileManager.default.removeItem(atPath: state + "/versions")
            try? FileManager.default.removeItem(atPath: state + "/active")
            try? FileManager.default.removeItem(atPath: state + "/highest")
            XCTAssertEqual(try agent(["install", v1]).status, 0)
            let r = try agent(["install", v2], env: ["PERCH_AGENT_CRASH_AT": step])
            XCTAssertTrue(r.killed, "killed at " + step + ": " + r.err)
            XCTAssertEqual(r.status, 9, step)
            try checkRecovered(new: "2.0.0", newBundle: v2, switched: i == Self.steps.count - 1)
        }
    }

    func testKillAtRandomMoments() throws {
        let v1 = try bundle("1.0.0")
        let v2 = try bundle("2.0.0", elements: 1 << 20)  // a 4 MiB model makes the install take a while
        // The kill window starts at the fastest of three timed installs and shrinks whenever an
        // install outruns the kill, so a slow first run (cold page cache, a loaded CI machine)
        // cannot leave most draws past the end of the install.
        var window = Double.infinity
        for _ in 0..<3 {
            reset()
            XCTAssertEqual(try agent(["install", v1]).status, 0)
            let t0 = Date()
            XCTAssertEqual(try agent(["install", v2]).status, 0)
            window = min(window, Date().timeIntervalSince(t0))
        }
        var generator = SystemRandomNumberGenerator()
        var outcomes = [String: Int]()
        var attempts = 0
        while (outcomes["killed"] ?? 0) < 15 && attempts < 40 {
            attempts += 1
            reset()
            XCTAssertEqual(try agent(["install", v1]).status, 0)
            let run = try start(["install", v2])
            Thread.sleep(forTimeInterval: Double.random(in: 0...window, using: &generator))
            kill(run.0.processIdentifier, SIGKILL)
            let r = finish(run)
            outcomes[r.killed ? "killed" : "finished", default: 0] += 1
            if !r.killed { window *= 0.7 }
            try checkRecovered(new: "2.0.0", newBundle: v2, switched: r.killed ? nil : true)
        }
        XCTAssertGreaterThanOrEqual(outcomes["killed"] ?? 0, 15, "installs interrupted at random moments: \(outcomes), final window \(window) s")
    }

    private func reset() {
        for name in ["versions", "active", "highest"] { try? FileManager.default.removeItem(atPath: state + "/" + name) }
    }

    func testSimulatedFullDisk() throws {
        XCTAssertEqual(try agent(["install", try bundle("1.0.0")]).status, 0)
        let r = try agent(["install", try bundle("2.0.0")], env: ["PERCH_AGENT_FAKE_FREE_BYTES": "1000"])
        assertRefused(r, code: 3, mentions: "not enough free storage")
        assertActiveAndRuns("1.0.0")
        XCTAssertTrue(stagingIsEmpty())
    }

    /// A real full disk: the state directory on a 2 MiB tmpfs. First the free-space check refuses a
    /// bundle that cannot fit; then, with the check fooled, the write itself hits ENOSPC.
    func testRealFullDiskOnTmpfs() throws {
        let mnt = dir + "/small"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt]
        mount.standardError = FileHandle.nullDevice
        try mount.run()
        mount.waitUntilExit()
        guard mount.terminationStatus == 0 else { throw XCTSkip("cannot mount a tmpfs here (needs root)") }
        defer {
            let u = Process()
            u.executableURL = URL(fileURLWithPath: "/bin/umount")
            u.arguments = [mnt]
            try? u.run()
            u.waitUntilExit()
        }
        let keys = state + "/trusted-keys"
        state = mnt + "/state"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: keys, toPath: state + "/trusted-keys")
        XCTAssertEqual(try agent(["install", try bundle("1.0.0")]).status, 0)
        let big = try bundle("2.0.0", elements: 1 << 20)  // incompressible-ish 4 MiB of weights
        assertRefused(try agent(["install", big]), code: 3, mentions: "not enough free storage")
        assertActiveAndRuns("1.0.0")
        let r = try agent(["install", big], env: ["PERCH_AGENT_FAKE_FREE_BYTES": String(1 << 40)])
        assertRefused(r, code: 3, mentions: "storage full")
        assertActiveAndRuns("1.0.0")
        XCTAssertTrue(stagingIsEmpty(), "the partial copy is removed, freeing the space")
    }
}
