import Foundation
import XCTest
@testable import PerchProfiles

/// The repository's bundled profiles, and scratch directories for profiles written by a test.
class ProfileTestCase: XCTestCase {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let bundledDirectory = repoRoot.appendingPathComponent("device-profiles").path

    var dir: String!
    var loader: ProfileLoader!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("perch-profiles-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        loader = ProfileLoader(searchPaths: [Self.bundledDirectory])
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Writes `text` to `<dir>/<name>.yaml` and returns the path.
    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let path = dir + "/" + name + ".yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The diagnostics of validating `text` as `<name>.yaml`, as `LINE:COL: message` strings
    /// (the file is checked separately), in the order reported.
    func problems(_ name: String, _ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
        let path = try write(name, text)
        let result = loader.validate(file: path)
        for d in result.diagnostics {
            XCTAssertEqual(d.file, path, "diagnostic in another file: \(d)", file: file, line: line)
        }
        return result.diagnostics.map { "\($0.line):\($0.column): \($0.message)" }
    }
}
