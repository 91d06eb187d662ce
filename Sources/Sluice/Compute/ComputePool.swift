import DequeModule
import Synchronization

#if canImport(Glibc)
import CGlibcExtras
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A fixed set of threads owned by the process, for CPU-heavy and blocking work that must stay off Swift's
/// cooperative thread pool.
///
/// The cooperative pool has one thread per core and expects every job to return quickly; a job that blocks in a
/// `read(2)` or computes for milliseconds starves every other task. A `ComputePool` is where that work goes:
///
/// - As a `TaskExecutor` (SE-0417): `withTaskExecutorPreference(pool) { … }`, or a pipeline stage placed with
///   `on: .compute`, runs a whole stage's code on the pool's threads — no per-record hand-off at all.
/// - Through ``run(_:)``: one blocking call (a file read, a zlib call) sent to the pool, its result returned.
///
/// ```swift
/// let pool = try ComputePool(threads: 2)
/// let digest = try await pool.run { expensiveHash(bytes) }
/// await pool.shutdown()
/// ```
///
/// - Important: The pool's threads run until ``shutdown()``; nothing tears them down implicitly. A pool that a
///   pipeline run creates for itself is shut down when the run ends. After shutdown, ``run(_:)`` throws
///   ``ComputePoolError/Code/shutDown``; a task that still prefers the pool as its executor continues on the
///   global concurrent executor rather than hang.
public final class ComputePool: Sendable {
    /// How many threads the pool runs.
    public let threadCount: Int
    /// The pool's name, used in errors and to name its threads.
    public let name: String
    /// How the pool's threads compete for the cores with the process's other threads.
    public let priority: Priority

    /// How a pool's threads compete for the cores with the process's other threads.
    public enum Priority: Sendable, Equatable {
        /// The process's priority: for threads that block (reads, writes, `fsync`), which the work waits on.
        case process
        /// One nice level below the process (on Linux, where each thread has one; a CPU weight a fifth lower), for
        /// threads that compute: when every core is busy, the process's other threads run first — a run's reader
        /// and writer, on whose progress every stage waits, and the cooperative pool. A pipeline whose reader is its
        /// slowest stage (inflating gzip on one thread) then keeps it running on a 2-core machine instead of queueing
        /// it behind the compressors. Against other processes the pool's threads weigh a fifth less. Elsewhere the
        /// same as ``process``.
        case yielding
    }

    private enum Job: Sendable {
        case closure(@Sendable () -> Void)
        case task(UnownedJob)
    }

    private enum Lifecycle {
        case running
        case shuttingDown
        case shutDown
    }

    private struct State {
        var jobs: Deque<Job> = []
        var lifecycle = Lifecycle.running
        var idleThreads = 0
        var liveThreads = 0
        var shutdownWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = ConditionLock(State())
    private let threads = Locked<[pthread_t]>([])
    /// What the pool does, reported to tests: a job queued (with the queue's length then), a shutdown begun.
    enum Event: Sendable, Equatable {
        case queued(Int)
        case shutdownBegan
    }

    private let onEvent: (@Sendable (Event) -> Void)?

    /// Starts a pool of `threads` threads.
    ///
    /// - Parameters:
    ///   - threads: How many threads; at least 1. Defaults to the number of processors online.
    ///   - name: The pool's name, used in errors and to name its threads (`top -H`, `perf`).
    ///   - priority: How its threads compete with the process's others: ``Priority/process`` (the default) for a
    ///     pool that blocks, ``Priority/yielding`` for one that computes (the pool a run creates for itself).
    /// - Throws: ``ConfigurationError`` if `threads` is less than 1; ``ComputePoolError`` with
    ///   ``ComputePoolError/Code/threadCreationFailed`` if the system refuses a thread (those already started are
    ///   shut down first).
    public convenience init(
        threads: Int = ComputePool.activeProcessorCount,
        name: String = "sluice-compute",
        priority: Priority = .process
    ) throws {
        try self.init(threads: threads, name: name, priority: priority, onEvent: nil)
    }

    /// A pool that reports what it does to `onEvent` (a hook for tests), called outside its lock.
    init(
        threads: Int,
        name: String,
        priority: Priority = .process,
        onEvent: (@Sendable (Event) -> Void)?
    ) throws {
        try ConfigurationError.requirePositive(threads, "threads")
        self.threadCount = threads
        self.name = name
        self.priority = priority
        self.onEvent = onEvent
        for number in 1...threads {
            do {
                try self.startThread(number: number)
            } catch {
                self.shutdownAndWait()
                throw error
            }
        }
    }

    /// The number of processors currently online: the default pool size.
    public static var activeProcessorCount: Int {
        max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// How many of the pool's threads are running (0 once it is shut down).
    public var liveThreads: Int {
        self.state.withLock { $0.liveThreads }
    }

    /// Jobs waiting for a thread (for tests).
    var queuedJobs: Int {
        self.state.withLock { $0.jobs.count }
    }

    /// Whether the calling code runs on one of the pool's threads.
    var containsCurrentThread: Bool {
        let current = pthread_self()
        return self.threads.withLock { $0.contains { pthread_equal($0, current) != 0 } }
    }

    /// Whether ``shutdown()`` was called.
    public var isShuttingDown: Bool {
        self.state.withLock { $0.lifecycle != .running }
    }

    /// Runs `body` on one of the pool's threads and returns its result.
    ///
    /// Use it for one blocking call or a chunk of CPU work worth at least ~100 µs: the round trip to a sleeping
    /// thread costs ~25 µs on a small VM. For many small jobs, run the whole loop on the pool instead, with
    /// `withTaskExecutorPreference(pool)`.
    ///
    /// - Parameter body: The work; it may block.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws; `CancellationError` if the calling task was cancelled before the work was
    ///   queued (once queued, the work runs to its end); ``ComputePoolError/Code/shutDown`` if the pool was shut
    ///   down.
    public func run<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        try Task.checkCancellation()
        // A checked continuation: its resume is an edge ThreadSanitizer sees (with an unsafe one, resumed from a
        // pool thread, TSan reports the awaiting task's next write to its own frame as a race).
        return try await withCheckedThrowingContinuation { continuation in
            let accepted = self.submit(.closure { continuation.resume(with: Swift.Result(catching: body)) })
            if !accepted {
                continuation.resume(throwing: ComputePoolError(.shutDown, pool: self.name))
            }
        }
    }

    /// Stops the pool: work already queued runs to its end, then every thread exits and is joined.
    ///
    /// Returns when no thread of the pool is left. Calling it again waits for the same end.
    public func shutdown() async {
        let finished = self.beginShutdown()
        if !finished {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let done = self.state.withLock { state in
                    guard state.lifecycle != .shutDown else { return true }
                    state.shutdownWaiters.append(continuation)
                    return false
                }
                if done { continuation.resume() }
            }
        }
        self.joinThreads()
    }

    /// Stops the pool and blocks the calling thread until every thread has exited and been joined.
    ///
    /// - Important: Blocks; from async code use ``shutdown()``. Never call it from one of the pool's own threads.
    @available(*, noasync, message: "blocks the calling thread; use shutdown()")
    public func shutdownAndWait() {
        _ = self.beginShutdown()
        self.state.withLock(waitingWhile: { $0.lifecycle != .shutDown }, then: { _ in })
        self.joinThreads()
    }

    // MARK: - Internals

    /// Queues `job`; `false` if the pool no longer accepts work.
    private func submit(_ job: Job) -> Bool {
        let (queued, wake) = self.state.withLock { state -> (Int?, Bool) in
            guard state.lifecycle == .running else { return (nil, false) }
            state.jobs.append(job)
            return (state.jobs.count, state.idleThreads > 0)
        }
        if wake {
            self.state.signal()
        }
        if let queued { self.onEvent?(.queued(queued)) }
        return queued != nil
    }

    /// Marks the pool as shutting down; returns whether it had already finished.
    private func beginShutdown() -> Bool {
        let finished = self.state.withLock { state -> Bool in
            if state.lifecycle == .running {
                state.lifecycle = state.liveThreads == 0 ? .shutDown : .shuttingDown
            }
            return state.lifecycle == .shutDown
        }
        self.state.broadcast()
        self.onEvent?(.shutdownBegan)
        return finished
    }

    /// The name a pool thread shows in `top -H`, `perf` and `gdb`: the pool's name, numbered when the pool has several
    /// threads, cut to the 15 bytes Linux keeps (without the `sluice-` prefix first, the number kept).
    static func threadName(pool: String, number: Int, of count: Int) -> String {
        let suffix = count > 1 ? "-\(number)" : ""
        var base = Substring(pool)
        if base.utf8.count + suffix.utf8.count > 15, base.hasPrefix("sluice-") { base = base.dropFirst(7) }
        var kept = ""
        for character in base {
            guard kept.utf8.count + character.utf8.count + suffix.utf8.count <= 15 else { break }
            kept.append(character)
        }
        return kept + suffix
    }

    private func joinThreads() {
        let threads = self.threads.withLock { threads in
            defer { threads.removeAll() }
            return threads
        }
        for thread in threads {
            pthread_join(thread, nil)
        }
    }

    #if canImport(Glibc)
    /// Sets the calling thread's nice value one above the process's (its main thread's: a pool started from a
    /// yielding thread does not sink further), at most 19. Linux keeps a nice value per thread, and lowering one's
    /// own priority needs no privilege; a failure leaves the thread as it was.
    private static func yieldToTheProcess() {
        let which = __priority_which_t(PRIO_PROCESS.rawValue)
        errno = 0
        let process = getpriority(which, id_t(getpid()))
        guard errno == 0 else { return }
        _ = setpriority(which, 0, min(process + 1, 19))  // 0: the calling thread, on Linux
    }
    #endif

    private func startThread(number: Int) throws {
        self.state.withLock { $0.liveThreads += 1 }
        let threadName = Self.threadName(pool: self.name, number: number, of: self.threadCount)
        let box = Unmanaged.passRetained(
            ThreadBody { [self] in
                #if canImport(Glibc)
                _ = pthread_setname_np(pthread_self(), threadName)
                if self.priority == .yielding { Self.yieldToTheProcess() }
                #endif
                self.workLoop()
            }
        )
        var thread = pthread_t()
        let result = pthread_create(
            &thread,
            nil,
            { argument in
                Unmanaged<ThreadBody>.fromOpaque(argument!).takeRetainedValue().body()
                return nil
            },
            box.toOpaque()
        )
        guard result == 0 else {
            box.release()
            self.threadExited()
            throw ComputePoolError(.threadCreationFailed, pool: self.name, errno: result)
        }
        self.threads.withLock { $0.append(thread) }
    }

    private func workLoop() {
        while true {
            let job = self.state.withLock(
                waitingWhile: { $0.jobs.isEmpty && $0.lifecycle == .running },
                onWait: { $0.idleThreads += 1 },
                onWake: { $0.idleThreads -= 1 },
                then: { $0.jobs.popFirst() }
            )
            guard let job else { break }  // shutting down and nothing left to run
            switch job {
            case .closure(let body):
                body()
            case .task(let task):
                task.runSynchronously(on: self.asUnownedTaskExecutor())
            }
        }
        self.threadExited()
    }

    private func threadExited() {
        let waiters = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.liveThreads -= 1
            guard state.liveThreads == 0, state.lifecycle != .running else { return [] }
            state.lifecycle = .shutDown
            defer { state.shutdownWaiters.removeAll() }
            return state.shutdownWaiters
        }
        self.state.broadcast()
        for waiter in waiters {
            waiter.resume()
        }
    }
}

extension ComputePool: TaskExecutor {
    public func enqueue(_ job: consuming ExecutorJob) {
        let task = UnownedJob(job)
        if !self.submit(.task(task)) {
            // Shut down: a task still preferring this pool goes on elsewhere instead of never running again.
            globalConcurrentExecutor.enqueue(ExecutorJob(task))
        }
    }
}

/// What a pool thread runs; boxed to cross `pthread_create`'s C callback.
private final class ThreadBody {
    let body: () -> Void

    init(_ body: @escaping () -> Void) {
        self.body = body
    }
}
