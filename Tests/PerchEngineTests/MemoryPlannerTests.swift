@testable import PerchEngine
import XCTest

final class MemoryPlannerTests: XCTestCase {
    func testBuffersAliveTogetherDoNotOverlap() {
        let requests: [MemoryPlanner.Request] = [
            .init(bytes: 100, firstStep: 0, lastStep: 1),
            .init(bytes: 200, firstStep: 1, lastStep: 2),
            .init(bytes: 50, firstStep: 2, lastStep: 3),
            .init(bytes: 300, firstStep: 3, lastStep: 4),
        ]
        let plan = MemoryPlanner.plan(requests)
        for i in requests.indices {
            for j in requests.indices where i < j && requests[i].overlapsInTime(requests[j]) {
                let a = plan.offsets[i]..<(plan.offsets[i] + MemoryPlanner.roundUp(requests[i].bytes, 64))
                let b = plan.offsets[j]..<(plan.offsets[j] + MemoryPlanner.roundUp(requests[j].bytes, 64))
                XCTAssertFalse(a.overlaps(b), "requests \(i) and \(j) overlap")
            }
        }
        for o in plan.offsets { XCTAssertEqual(o % 64, 0) }
        XCTAssertGreaterThanOrEqual(plan.arenaBytes, plan.lowerBound)
        // A chain reuses memory: far less than the sum of all buffers.
        XCTAssertLessThan(plan.arenaBytes, 128 + 256 + 64 + 320)
    }

    func testLowerBoundIsLargestLiveSet() {
        let plan = MemoryPlanner.plan([
            .init(bytes: 64, firstStep: 0, lastStep: 0),
            .init(bytes: 128, firstStep: 0, lastStep: 1),
            .init(bytes: 64, firstStep: 1, lastStep: 1),
        ])
        XCTAssertEqual(plan.lowerBound, 192)
        XCTAssertEqual(plan.arenaBytes, 192)
    }

    /// Largest-first alone leaves a hole here (576 B); another order reaches the lower bound.
    func testTriesOrdersUntilTheLowerBoundFits() {
        let plan = MemoryPlanner.plan([
            .init(bytes: 256, firstStep: 3, lastStep: 5),
            .init(bytes: 192, firstStep: 2, lastStep: 4),
            .init(bytes: 128, firstStep: 0, lastStep: 2),
            .init(bytes: 256, firstStep: 0, lastStep: 0),
        ])
        XCTAssertEqual(plan.lowerBound, 448)
        XCTAssertEqual(plan.arenaBytes, 448)
    }
}
