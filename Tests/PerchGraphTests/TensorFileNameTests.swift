import PerchGraph
import XCTest

/// CONTRACTS.md: every character outside `[A-Za-z0-9._-]` becomes `_` — one `_` per character,
/// also for characters that take several UTF-8 bytes.
final class TensorFileNameTests: XCTestCase {
    func testContractRule() {
        XCTAssertEqual(NPY.fileName(forTensor: "gpu_0/data_0"), "gpu_0_data_0")
        XCTAssertEqual(NPY.fileName(forTensor: "input.1-A_z9"), "input.1-A_z9")
        XCTAssertEqual(NPY.fileName(forTensor: "a b:c\\d"), "a_b_c_d")
        XCTAssertEqual(NPY.fileName(forTensor: "größe"), "gr__e")
        XCTAssertEqual(NPY.fileName(forTensor: "x€😀y"), "x__y")
        XCTAssertEqual(NPY.fileName(forTensor: ""), "")
    }
}
