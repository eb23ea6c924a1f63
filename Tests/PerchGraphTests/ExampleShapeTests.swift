import PerchGraph
import XCTest

/// The shapes Perch makes up for inputs with symbolic dimensions.
final class ExampleShapeTests: XCTestCase {
    func testSymbolicImageDimsAre224AndBatchIs1() {
        let nchw = TensorType(dtype: .f32, dims: [.symbolic("N"), .fixed(3), .symbolic("H"), .symbolic("W")])
        XCTAssertEqual(nchw.exampleShape(), [1, 3, 224, 224])
        let nhwc = TensorType(dtype: .u8, dims: [.symbolic("N"), .symbolic("h"), .symbolic("w"), .fixed(3)])
        XCTAssertEqual(nhwc.exampleShape(), [1, 224, 224, 3])
        // Not an image: token ids, a sequence.
        XCTAssertEqual(TensorType(dtype: .i64, dims: [.symbolic("b"), .symbolic("s")]).exampleShape(), [1, 1])
        XCTAssertEqual(TensorType(dtype: .f32, dims: [.symbolic("s"), .fixed(1), .fixed(40)]).exampleShape(), [1, 1, 40])
    }
}
