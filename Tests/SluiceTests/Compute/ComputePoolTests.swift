import CGlibcExtras
import Dispatch
import Glibc
import Synchronization
import Testing

@testable import Sluice

@Suite("ComputePool", .timeLimit(.minutes(1)))
struct ComputePoolTests {
    @Test func run_returnsTheResult_onAPoolThread() async throws {
        let pool = try ComputePool(threads: 2)
        let (value, onPool) = try await pool.run { (21 * 2, pool.containsCurrentThread) }
        #expect(value == 42)
        #expect(onPool)
        #expect(!pool.containsCurrentThread)
        await pool.shutdown()
    }

    @Test func threads_areNamedAfterThePool() async throws {
        let pool = try ComputePool(threads: 1, name: "parse")
        let name = try await pool.run { () -> String in
            var buffer = [CChar](repeating: 0, count: 16)
            _ = pthread_getname_np(pthread_self(), &buffer, buffer.count)
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        #expect(name == "parse")
        await pool.shutdown()
    }

    @Test func threadNames_fitLinuxs15Bytes_keepingTheNumber() {
        #expect(ComputePool.threadName(pool: "sluice-compute", number: 2, of: 2) == "compute-2")
        #expect(ComputePool.threadName(pool: "sluice-io:read", number: 1, of: 1) == "sluice-io:read")
        #expect(ComputePool.threadName(pool: "sluice-io:gzip-write", number: 1, of: 1) == "io:gzip-write")
        #expect(ComputePool.threadName(pool: "a-very-long-pool-name", number: 12, of: 16) == "a-very-long--12")
        #expect(ComputePool.threadName(pool: "ééééééééé", number: 3, of: 4) == "éééééé-3")
    }

    /// The nice value of the calling thread (Linux keeps one per thread), and the process's (its main thread's).
    static func niceValues() -> (thread: Int32, process: Int32) {
        (
            getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0),
            getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(getpid()))
        )
    }

    @Test func aYieldingPool_runsOneNiceLevelBelowTheProcess_andADefaultPoolAtItsLevel() async throws {
        let yielding = try ComputePool(threads: 2, priority: .yielding)
        let standard = try ComputePool(threads: 1)
        for _ in 0..<4 {  // a job on each thread, likely
            let nice = try await yielding.run { Self.niceValues() }
            #expect(nice.thread == min(nice.process + 1, 19))
        }
        let nice = try await standard.run { Self.niceValues() }
        #expect(nice.thread == nice.process)
        await yielding.shutdown()
        await standard.shutdown()
    }

    @Test func aRunsOwnPool_yields_andItsReaderDoesNot() async throws {
        let directory = TemporaryDirectory()
        try writeFile(directory.file("in.txt"), Array("a\nb\n".utf8))
        let seen = Locked<[Int32]>([])
        _ = try await Pipeline.lines(from: [directory.file("in.txt")])
            .map(on: .compute) { line in
                let nice = Self.niceValues()
                seen.withLock { $0.append(nice.thread - nice.process) }
                return line
            }
            .drain()
            .run(RunOptions(computeThreads: 2))
        #expect(!seen.withLock { $0 }.isEmpty)
        #expect(seen.withLock { $0 }.allSatisfy { $0 == 1 || $0 == 0 && Self.niceValues().process == 19 })
        let reader = try IOThreads().makeThread(for: "read")
        let nice = try await reader.run { Self.niceValues() }
        #expect(nice.thread == nice.process, "I/O threads keep the process's priority")
        await reader.shutdown()
    }

    @Test func run_rethrowsTheBodysError() async throws {
        let pool = try ComputePool(threads: 1)
        await #expect(throws: TestError(id: 5)) { try await pool.run { throw TestError(id: 5) } }
        await pool.shutdown()
    }

    @Test func blockingJobs_moreThanTheCooperativePoolHasThreads_doNotStarveIt() async throws {
        // Each job blocks its thread until an ordinary async task signals it. On the cooperative pool (one thread
        // per core) the jobs would occupy every thread and the signalling task could never run: a deadlock.
        let jobs = ComputePool.activeProcessorCount + 2
        let pool = try ComputePool(threads: jobs)
        let semaphore = DispatchSemaphore(value: 0)
        let waiting = EventCounter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<jobs {
                group.addTask {
                    try await pool.run {
                        waiting.signal()
                        semaphore.wait()
                    }
                }
            }
            group.addTask {
                // An ordinary task on the cooperative pool: it runs because no cooperative thread is blocked.
                for seen in 0..<jobs { await waiting.wait(beyond: seen) }
                for _ in 0..<jobs { semaphore.signal() }
            }
            try await group.waitForAll()
        }
        #expect(waiting.value == jobs)
        await pool.shutdown()
    }

    @Test func taskExecutorPreference_runsTheTaskOnThePool() async throws {
        let pool = try ComputePool(threads: 2)
        let onPool = await withTaskExecutorPreference(pool) {
            await Task.yield()
            return pool.containsCurrentThread
        }
        #expect(onPool)
        await pool.shutdown()
    }

    @Test func shutdown_letsQueuedWorkFinish_joinsTheThreads_andLaterWorkThrows() async throws {
        let pool = try ComputePool(threads: 2)
        #expect(pool.liveThreads == 2)
        let done = EventCounter()
        let gate = DispatchSemaphore(value: 0)
        let jobs = (0..<20).map { _ in
            Task {
                try await pool.run {
                    gate.wait()
                    done.signal()
                }
            }
        }
        // Let the queue fill before shutting down, then release the work.
        for _ in 0..<20 { gate.signal() }
        for job in jobs { try await job.value }
        await pool.shutdown()
        #expect(done.value == 20)
        #expect(pool.liveThreads == 0)
        #expect(pool.isShuttingDown)
        let error = await #expect(throws: ComputePoolError.self) { try await pool.run { 1 } }
        #expect(error?.code == .shutDown)
        await pool.shutdown()  // a second shutdown returns at once
    }

    @Test func shutdown_whileJobsAreQueued_runsThemAll() async throws {
        let queued = EventCounter()
        let shuttingDown = EventCounter()
        let pool = try ComputePool(threads: 1, name: "test") { event in
            switch event {
            case .queued: queued.signal()
            case .shutdownBegan: shuttingDown.signal()
            }
        }
        let gate = DispatchSemaphore(value: 0)
        let started = EventCounter()
        let completed = EventCounter()
        let blocker = Task {
            try await pool.run {
                started.signal()
                gate.wait()
            }
        }
        await started.wait(beyond: 0)
        let jobs = (0..<10).map { _ in Task { try await pool.run { completed.signal() } } }
        await queued.wait(beyond: 10)  // the blocker, then the ten behind it
        #expect(pool.queuedJobs == 10)
        let shutdown = Task { await pool.shutdown() }
        await shuttingDown.wait(beyond: 0)
        gate.signal()
        try await blocker.value
        for job in jobs { try await job.value }
        await shutdown.value
        #expect(completed.value == 10)
        #expect(pool.liveThreads == 0)
    }

    @Test func run_inACancelledTask_throwsCancellation_withoutRunning() async throws {
        let pool = try ComputePool(threads: 1)
        let ran = EventCounter()
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await pool.run { ran.signal() }
        }
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(ran.value == 0)
        await pool.shutdown()
    }

    @Test(arguments: [0, -1])
    func init_rejectsFewerThanOneThread(threads: Int) {
        #expect(throws: ConfigurationError.self) { try ComputePool(threads: threads) }
    }
}
