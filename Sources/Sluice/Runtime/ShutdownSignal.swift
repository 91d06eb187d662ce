import CGlibcExtras
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Asks running pipelines to shut down gracefully: their sources stop reading, every record already read flows
/// through, and their sinks flush and close.
///
/// ```swift
/// let shutdown = ShutdownSignal()
/// var options = RunOptions()
/// options.shutdown = shutdown
/// async let report = pipeline.run(options)
/// …
/// shutdown.requestShutdown()      // e.g. on SIGTERM
/// let finished = try await report // finished.interrupted == true
/// ```
///
/// Inside a `ServiceGroup` (swift-service-lifecycle) a run does this by itself on the group's graceful shutdown.
/// To stop at once instead, cancel the task that runs the pipeline.
public final class ShutdownSignal: Sendable {
    private struct State {
        var requested = false
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
        /// A pipe whose read end becomes readable on request: blocked reads wait on it too (`poll`).
        var wakeRead: Int32 = -1
        var wakeWrite: Int32 = -1
    }

    private let state = Locked(State())

    /// Creates a signal that has not been raised.
    public init() {}

    deinit {
        self.state.withLock { state in
            if state.wakeRead >= 0 { close(state.wakeRead) }
            if state.wakeWrite >= 0 { close(state.wakeWrite) }
        }
    }

    /// Whether a shutdown was requested.
    public var isRequested: Bool {
        self.state.withLock { $0.requested }
    }

    /// Requests a graceful shutdown of every run using this signal. Requesting it again changes nothing.
    public func requestShutdown() {
        let (waiters, wake) = self.state.withLock { state -> ([CheckedContinuation<Void, Never>], Int32) in
            guard !state.requested else { return ([], -1) }
            state.requested = true
            defer { state.waiters.removeAll() }
            return (Array(state.waiters.values), state.wakeWrite)
        }
        if wake >= 0 {
            var byte: UInt8 = 1
            _ = write(wake, &byte, 1)
        }
        for waiter in waiters {
            waiter.resume()
        }
    }

    /// Returns once a shutdown is requested, or when the calling task is cancelled.
    public func wait() async {
        let id = self.state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = self.state.withLock { state -> Bool in
                    if state.requested || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = self.state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }

    /// A descriptor that becomes readable once a shutdown is requested, for `poll` next to a blocking read.
    var wakeDescriptor: Int32 {
        self.state.withLock { state in
            if state.wakeRead < 0 {
                var ends: [Int32] = [-1, -1]
                if pipe2(&ends, O_CLOEXEC | O_NONBLOCK) == 0 {
                    state.wakeRead = ends[0]
                    state.wakeWrite = ends[1]
                    if state.requested {
                        var byte: UInt8 = 1
                        _ = write(state.wakeWrite, &byte, 1)
                    }
                }
            }
            return state.wakeRead
        }
    }
}
