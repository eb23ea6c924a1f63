import CPerchShims

/// A fixed set of worker threads (pthreads) that run the chunks of one job at a time, for
/// kernels that split a layer across cores.
///
/// `parallelFor` does not allocate: the job lives in a single slot, chunks are handed out by an
/// atomic counter, and the calling thread takes chunks too. Workers spin briefly after a job (the
/// next layer usually follows at once) and then sleep on a condition variable.
///
/// Thread safety: one job at a time; call `parallelFor` from one thread (the session's). Nested
/// calls from inside a chunk run serially on the calling worker.
public final class ThreadPool {
    /// Threads that take part in a job, the caller included.
    public let threads: Int
    let sync: UnsafeMutableRawPointer
    var handles: [UnsafeMutableRawPointer] = []
    /// The current job (chunk, slot); set only while `parallelChunks` runs.
    var job: ((Int, Int) -> Void)?
    var jobCount = 0
    var busy = false

    /// Spins of an idle worker before it sleeps (each a CPU pause hint, ~20 ns): ~1 ms, enough to
    /// cover the serial layers between two split ones (BatchNorm, pooling) in one run. Waking a
    /// sleeping worker costs 60–90 µs or more on a virtual machine's idle vCPU; with 0.05 ms of
    /// spinning ResNet-50 at 2 threads ran either 58 or 93 ms per run, with 1 ms always 54–55 ms.
    static let spins: Int32 = 50000

    /// Starts `threads - 1` workers. A pool of one thread runs everything on the caller.
    public init(threads: Int) {
        self.threads = Swift.max(1, threads)
        sync = perch_sync_create()!
        let entry: perch_thread_fn = { raw in
            let pool = Unmanaged<ThreadPool>.fromOpaque(raw!).takeUnretainedValue()
            pool.workerLoop()
            return nil
        }
        let me = Unmanaged.passUnretained(self).toOpaque()
        for _ in 1..<self.threads {
            if let h = perch_thread_start(entry, me) { handles.append(h) }
        }
    }

    deinit {
        perch_sync_stop(sync)
        for h in handles { perch_thread_join(h) }
        perch_sync_destroy(sync)
    }

    func workerLoop() {
        let slot = perch_sync_register(sync)
        var seen = 0
        while true {
            let g = perch_sync_wait(sync, seen, ThreadPool.spins)
            if g < 0 { return }
            seen = g
            runChunks(slot: slot)
            perch_sync_finish(sync)
        }
    }

    @inline(__always)
    func runChunks(slot: Int) {
        guard let body = job else { return }
        let count = jobCount
        while true {
            let i = perch_sync_take(sync)
            if i >= count { return }
            body(i, slot)
        }
    }

    /// Runs `body(i)` for every `i` in `0..<count`, spread over the pool's threads, and returns
    /// when all have finished. Chunks may run in any order and on any thread, but each index runs
    /// exactly once, so `i` can select a per-chunk workspace slot.
    public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        parallelChunks(count) { i, _ in body(i) }
    }

    /// `parallelFor` that also passes the slot (0..<threads) of the thread running the chunk:
    /// each thread's own, so a kernel can split its work into more chunks than threads (taken as
    /// threads come free, which balances a slower or preempted core) and still give each thread
    /// one workspace. Nested calls run serially in slot 0, so a kernel that nests must not use slots.
    public func parallelChunks(_ count: Int, _ body: (_ chunk: Int, _ slot: Int) -> Void) {
        if count <= 0 { return }
        if count == 1 || handles.isEmpty || busy {
            for i in 0..<count { body(i, 0) }
            return
        }
        busy = true
        withoutActuallyEscaping(body) { escaping in
            job = escaping
            jobCount = count
            _ = perch_sync_publish(sync)
            runChunks(slot: 0)
            perch_sync_join(sync, handles.count)
            job = nil
        }
        busy = false
    }
}

extension KernelArgs {
    /// Threads a kernel may split its work into (1 without a pool).
    @inline(__always)
    public var threads: Int { pool?.threads ?? 1 }

    /// Runs `body(chunk, slot)` for chunks `0..<count` on the session's pool (see
    /// `ThreadPool.parallelChunks`; `slot < threads`), or serially in slot 0 without one.
    @inline(__always)
    public func parallelChunks(_ count: Int, _ body: (_ chunk: Int, _ slot: Int) -> Void) {
        if let pool, count > 1 {
            pool.parallelChunks(count, body)
        } else {
            for i in 0..<count { body(i, 0) }
        }
    }

    /// Runs `body(i)` for `i` in `0..<count` on the session's pool, or serially without one.
    @inline(__always)
    public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        if let pool, count > 1 {
            pool.parallelFor(count, body)
        } else {
            for i in 0..<count { body(i) }
        }
    }
}

/// Splits `0..<total` into `parts` contiguous ranges whose bounds are multiples of `align`
/// (except the end); part `i` of them.
@inline(__always)
public func splitRange(_ total: Int, parts: Int, part i: Int, align: Int = 1) -> Range<Int> {
    let units = (total + align - 1) / align
    let lo = Swift.min(total, (units * i / parts) * align)
    let hi = Swift.min(total, (units * (i + 1) / parts) * align)
    return lo..<hi
}
