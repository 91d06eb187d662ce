import Synchronization

/// Threads for blocking I/O, apart from the compute pool: one for each stage that asks, owned by the run.
///
/// A blocking read of a silent pipe holds its thread for as long as the pipe is silent. On the compute pool that
/// would take a thread from parsing and compressing (with one worker, all of them); on the cooperative pool it
/// would stall every task. So each stage that blocks gets a thread of its own (as NIO keeps `NIOThreadPool` apart
/// from its event loops): a run has a handful of such stages — its readers and writers — never one per record.
/// The run joins every one of them when it ends.
final class IOThreads: Sendable {
    private let threads = Locked<[ComputePool]>([])

    /// A new thread for the stage `stage`, as a one-thread pool (a `TaskExecutor` and a `run { }`).
    ///
    /// - Throws: ``ComputePoolError`` if the system refuses a thread.
    func makeThread(for stage: String) throws -> ComputePool {
        let thread = try ComputePool(threads: 1, name: "sluice-io:\(stage)")
        self.threads.withLock { $0.append(thread) }
        return thread
    }

    /// Stops and joins every thread made so far (their stages have ended).
    func shutdown() async {
        let threads = self.threads.withLock { threads in
            defer { threads.removeAll() }
            return threads
        }
        for thread in threads {
            await thread.shutdown()
        }
    }
}
