import PerchSSH
import XCTest

final class SSHTargetTests: XCTestCase {
    func testParse() throws {
        XCTAssertEqual(try SSHTarget.parse("pi@10.0.0.5:2222"), SSHTarget(user: "pi", host: "10.0.0.5", port: 2222))
        XCTAssertEqual(try SSHTarget.parse("board", defaultUser: "me"), SSHTarget(user: "me", host: "board", port: 22))
        XCTAssertEqual(try SSHTarget.parse("u@[fe80::1]:23"), SSHTarget(user: "u", host: "fe80::1", port: 23))
        XCTAssertThrowsError(try SSHTarget.parse("u@host:notaport"))
        XCTAssertEqual(SSHTarget.display("h", 22), "h")
        XCTAssertEqual(SSHTarget.display("h", 2200), "[h]:2200")
    }

    func testShellQuote() {
        XCTAssertEqual(shellQuote("/tmp/a-b_c.perch"), "/tmp/a-b_c.perch")
        XCTAssertEqual(shellQuote("it's $HOME"), "'it'\\''s $HOME'")
        XCTAssertEqual(shellQuote(""), "''")
    }
}
