import CGlibcExtras
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The run's budget of bytes in flight: the data buffers the engine holds — decoded input, the lines framed from
/// it, gzip blocks — counted while any batch or stage holds them, with their peak; readers wait for room before
/// they read more (``RunOptions/maxBytesInFlight``).
///
/// Buffers add their size when they are made and take it off when the engine lets go of them, so a buffer that
/// several batches share counts once. The engine's own stages never keep a batch while they wait for input, so once
/// readers stop, what is in flight drains and room comes back.
final class ByteBudget: Sendable {
    /// Readers wait while this many bytes are in flight.
    let limit: Int
    private let counter = PeakCounter()
    /// Readers waiting for room; a release writes to `wake` only when there is one.
    private let waiters = Atomic<Int>(0)
    /// A pipe whose read end becomes readable when bytes are released while a reader waits.
    let wake: (read: Int32, write: Int32)
    /// Set once a reader went over the budget because nothing was released for a long time (see `waitForRoom`).
    private let warned = Atomic<Bool>(false)

    /// How long a reader waits while nothing at all is released before it reads on anyway: something outside
    /// the engine keeps batches (a custom stage or sink holding them while it waits for input). Without this
    /// valve such a pipeline would hang; with it, memory grows by one read per interval, and a warning says why.
    static let stallLimit: Duration = .seconds(5)
    private let stallLimit: Duration

    init(limit: Int, stallLimit: Duration = ByteBudget.stallLimit) {
        self.limit = limit
        self.stallLimit = stallLimit
        var ends: [Int32] = [-1, -1]
        // Without a pipe (out of descriptors) the ends stay -1 and readers do not wait for room: memory is then
        // bounded by the channels alone.
        _ = pipe2(&ends, O_CLOEXEC | O_NONBLOCK)
        self.wake = (ends[0], ends[1])
    }

    deinit {
        if self.wake.read >= 0 {
            _ = close(self.wake.read)
            _ = close(self.wake.write)
        }
    }

    /// Bytes in flight now, and the most at once so far.
    var value: Int { self.counter.value }
    var peak: Int { self.counter.peak }

    /// Counts `count` more bytes in flight.
    func add(_ count: Int) {
        self.counter.add(count)
    }

    /// Counts `count` bytes as no longer in flight, waking a reader that waits for room.
    func release(_ count: Int) {
        self.counter.add(-count)
        if self.waiters.load(ordering: .sequentiallyConsistent) > 0 {
            var byte: UInt8 = 1
            _ = write(self.wake.write, &byte, 1)
        }
    }

    /// Blocks while the budget is used up, until bytes are released, a shutdown is requested or the task is
    /// cancelled (through `waiter`).
    ///
    /// - Throws: `CancellationError` if the task was cancelled; ``FileError`` if `poll` fails.
    @available(*, noasync, message: "blocks: call from a stage placed on .io")
    func waitForRoom(_ waiter: InputWaiter, path: String, logger: Logger) throws {
        guard self.counter.value >= self.limit, self.wake.read >= 0 else { return }
        self.waiters.wrappingAdd(1, ordering: .sequentiallyConsistent)
        defer { self.waiters.wrappingSubtract(1, ordering: .sequentiallyConsistent) }
        var lowest = self.counter.value
        var stalledSince = ContinuousClock.now
        while self.counter.value >= self.limit {
            // Registered as a waiter before this check: a release after it leaves a byte in the pipe.
            switch try waiter.wait(for: self.wake.read, path: path, timeout: min(.milliseconds(100), self.stallLimit)) {
            case .shutdown: return
            case .ready: self.drainWakeUps()
            case .timedOut: break
            }
            let now = self.counter.value
            if now < lowest {
                lowest = now
                stalledSince = .now
            } else if ContinuousClock.now - stalledSince > self.stallLimit {
                if !self.warned.exchange(true, ordering: .relaxed) {
                    logger.warning(
                        "bytes in flight stay over the budget: a stage keeps batches while it waits; reading on",
                        metadata: ["bytes-in-flight": "\(now)", "budget": "\(self.limit)", "path": "\(path)"]
                    )
                }
                return
            }
        }
    }

    private func drainWakeUps() {
        var bytes = [UInt8](repeating: 0, count: 64)
        while read(self.wake.read, &bytes, bytes.count) > 0 {}
    }
}
