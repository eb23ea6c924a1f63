/// Assigns every intermediate tensor an offset in one arena before the first run, so that
/// execution never allocates.
///
/// Greedy: buffers are placed one by one, each at the lowest aligned offset that does not overlap
/// a buffer alive at the same time. Which order fits best depends on the graph (largest first
/// usually; a fused chain whose buffers live longer can fragment that order), so a few orders are
/// tried — by size, by size × lifetime, by lifetime, by first step — and the smallest arena is
/// kept (ties: the earlier order). The result is usually within a few percent of `lowerBound`,
/// the largest total size of buffers alive at one step (no plan can beat that).
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
        var best: Plan?
        for key in 0..<4 {
            // Sort key per request (larger first); ties keep request order.
            func weight(_ r: Request) -> (Int, Int) {
                let life = r.lastStep - r.firstStep + 1
                switch key {
                case 0: return (r.bytes, 0)
                case 1: return (r.bytes * life, r.bytes)
                case 2: return (life, r.bytes)
                default: return (-r.firstStep, r.bytes)
                }
            }
            let order = requests.indices.sorted { a, b in
                let wa = weight(requests[a]), wb = weight(requests[b])
                return wa != wb ? wa > wb : a < b
            }
            let p = place(requests, order: order, alignment: alignment)
            if best == nil || p.arenaBytes < best!.arenaBytes { best = p }
        }
        return best!
    }

    static func place(_ requests: [Request], order: [Int], alignment: Int) -> Plan {
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
