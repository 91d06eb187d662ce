import CGlibcExtras

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Waits for input on a descriptor — a pipe, a fifo, a terminal, a socket, an inotify queue — so that neither a
/// graceful shutdown nor a cancellation is held hostage by silent input.
///
/// Every wait polls three descriptors: the input, the shutdown signal's wake pipe, and a pipe of its own that the
/// task's cancellation handler writes to. A wait therefore ends when input comes, when a shutdown is requested,
/// or when the waiting task is cancelled — before the first byte as much as after.
///
/// - Important: ``wait(for:path:timeout:)`` blocks its thread: call it on an I/O thread (``Placement/io``), inside
///   ``wakingOnCancellation(_:)``. Close the waiter explicitly when done.
struct InputWaiter: Sendable {
    /// How a wait ended.
    enum Outcome: Equatable {
        /// The descriptor has data, is at its end, or is in error: a read will not block.
        case ready
        /// A graceful shutdown was requested: stop reading.
        case shutdown
        /// The timeout passed first.
        case timedOut
    }

    let shutdown: ShutdownSignal
    /// Called before each wait (a hook for tests).
    private let onWait: (@Sendable () -> Void)?
    /// A pipe whose read end becomes readable (and stays so) when the waiting task is cancelled.
    let cancellation: (read: Int32, write: Int32)

    /// - Throws: ``FileError`` if the system refuses a pipe.
    init(shutdown: ShutdownSignal, path: String, onWait: (@Sendable () -> Void)? = nil) throws(FileError) {
        self.shutdown = shutdown
        self.onWait = onWait
        var ends: [Int32] = [-1, -1]
        guard pipe2(&ends, O_CLOEXEC | O_NONBLOCK) == 0 else { throw FileError.system(errno, "pipe", path: path) }
        self.cancellation = (ends[0], ends[1])
    }

    /// Runs `body` so that cancelling the task wakes every wait inside it.
    ///
    /// A task cancelled before this is called wakes its waits at once, too.
    func wakingOnCancellation<Result>(_ body: () async throws -> Result) async throws -> Result {
        let wake = self.cancellation.write
        return try await withTaskCancellationHandler {
            try await body()
        } onCancel: {
            var byte: UInt8 = 1
            _ = write(wake, &byte, 1)
        }
    }

    /// Blocks until `descriptor` can be read without blocking, a shutdown is requested, the task is cancelled, or
    /// `timeout` passes.
    ///
    /// - Throws: `CancellationError` if the task was cancelled; ``FileError`` if `poll` fails.
    @available(*, noasync, message: "blocks: call from a stage placed on .io")
    func wait(for descriptor: Int32, path: String, timeout: Duration? = nil) throws -> Outcome {
        let wake = self.shutdown.wakeDescriptor
        var descriptors = [
            pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wake, events: Int16(POLLIN), revents: 0),
            pollfd(fd: self.cancellation.read, events: Int16(POLLIN), revents: 0),
        ]
        let milliseconds = timeout.map(Self.milliseconds) ?? -1
        self.onWait?()
        var ready: Int32
        repeat {
            ready = poll(&descriptors, 3, milliseconds)
        } while ready < 0 && errno == EINTR
        guard ready >= 0 else { throw FileError.system(errno, "poll", path: path) }
        if descriptors[2].revents != 0 { throw CancellationError() }
        if descriptors[1].revents != 0 || self.shutdown.isRequested { return .shutdown }
        return ready == 0 ? .timedOut : .ready
    }

    private static func milliseconds(_ duration: Duration) -> Int32 {
        let (seconds, attoseconds) = duration.components
        return Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }

    /// Whether the waiting task was cancelled (the cancellation handler ran).
    var isCancelled: Bool {
        var descriptor = pollfd(fd: self.cancellation.read, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) > 0
    }

    /// Releases the pipe. Call it once, after the last wait.
    func close() {
        _ = Glibc.close(self.cancellation.read)
        _ = Glibc.close(self.cancellation.write)
    }
}
