/// Assigns every intermediate tensor an offset in one arena before the first run, so that
/// execution never allocates.
///
/// Greedy by size: the largest buffers are placed first, each at the lowest aligned offset that
/// does not overlap a buffer alive at the same time. The result is usually within a few percent of
/// `lowerBound`, the largest total size of buffers alive at one step (no plan can beat that).
public enum MemoryPlanner {
    /// One buffer's size and the steps during which it must hold its contents (inclusive).
    public struct Request: Sendable, Equatable {
        public var bytes: Int
        public var firstStep: Int
        public var lastStep: Int

        public init(bytes: Int, firstStep: Int, lastStep: Int) {
            self.bytes = bytes
            self.firstStep = firstStep
            self.lastStep = lastStep
        }

        func overlapsInTime(_ other: Request) -> Bool {
            firstStep <= other.lastStep && other.firstStep <= lastStep
        }
    }

    public struct Plan: Sendable, Equatable {
        /// Offset of each request, in request order.
        public var offsets: [Int]
        /// Bytes the arena needs.
        public var arenaBytes: Int
        /// Largest sum of buffer sizes alive at one step.
        public var lowerBound: Int
    }

    public static func plan(_ requests: [Request], alignment: Int = 64) -> Plan {
        let order = requests.indices.sorted { a, b in
            requests[a].bytes != requests[b].bytes ? requests[a].bytes > requests[b].bytes : a < b
        }
        var offsets = [Int](repeating: 0, count: requests.count)
        var placed = [Int]()  // indices placed so far
        var arenaBytes = 0
        for r in order {
            let size = roundUp(requests[r].bytes, alignment)
            // Intervals of overlapping-in-time placed buffers, sorted by offset.
            var busy = [(Int, Int)]()
            for p in placed where requests[p].overlapsInTime(requests[r]) {
                busy.append((offsets[p], offsets[p] + roundUp(requests[p].bytes, alignment)))
            }
            busy.sort { $0.0 < $1.0 }
            var candidate = 0
            for (start, end) in busy {
                if candidate + size <= start { break }
                if end > candidate { candidate = end }
            }
            offsets[r] = candidate
            arenaBytes = Swift.max(arenaBytes, candidate + size)
            placed.append(r)
        }
        // Lower bound: sweep over steps.
        var lastStep = 0
        for r in requests { lastStep = Swift.max(lastStep, r.lastStep) }
        var lowerBound = 0
        if !requests.isEmpty {
            var delta = [Int](repeating: 0, count: lastStep + 2)
            for r in requests {
                delta[r.firstStep] += roundUp(r.bytes, alignment)
                delta[r.lastStep + 1] -= roundUp(r.bytes, alignment)
            }
            var live = 0
            for d in delta {
                live += d
                lowerBound = Swift.max(lowerBound, live)
            }
        }
        return Plan(offsets: offsets, arenaBytes: arenaBytes, lowerBound: lowerBound)
    }

    @inline(__always)
    static func roundUp(_ n: Int, _ a: Int) -> Int { (n + a - 1) / a * a }
}
