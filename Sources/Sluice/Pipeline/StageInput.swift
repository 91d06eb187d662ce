/// What a stage or sink receives: the batches its upstream sends, in order, as an `AsyncSequence`.
///
/// ```swift
/// for try await batch in input {
///     for record in batch { … }
/// }
/// ```
///
/// Iteration ends when every upstream stage finished; it throws if the run is cancelled. Stopping early (leaving
/// the loop) tells the upstream stages that nobody consumes their output any more, and they stop too.
///
/// - Important: A stage's input has a single consumer: iterate it once, from the stage's own task.
public struct StageInput<Record: Sendable>: Sendable, AsyncSequence {
    public typealias Element = Batch<Record>
    public typealias Failure = any Error

    let channel: BoundedChannel<Batch<Record>>
    let recorder: StageRecorder
    let flight: PeakCounter
    /// The run's clock and its ``RunOptions/maxDelay``, for stages that hold records back.
    let clock: RunClock
    let maxDelay: Duration
    /// Called before the iterator waits on an idle input: a user's stage's partial output batch goes on then.
    var beforeWait: BeforeWait?

    /// What a user's stage does before it waits for input: send on the records it emitted.
    final class BeforeWait: @unchecked Sendable {
        // Called only from the stage's own task, which owns the output it flushes.
        let action: () async throws -> Void

        init(_ action: @escaping () async throws -> Void) {
            self.action = action
        }
    }

    /// Adds to the stage's byte counts in the run report.
    func countBytes(in bytesIn: Int, out bytesOut: Int) {
        self.recorder.bytesIn.wrappingAdd(bytesIn, ordering: .relaxed)
        self.recorder.bytesOut.wrappingAdd(bytesOut, ordering: .relaxed)
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(
            base: self.channel.makeAsyncIterator(),
            storage: self.channel.storage,
            recorder: self.recorder,
            flight: self.flight,
            clock: self.clock,
            beforeWait: self.beforeWait
        )
    }

    /// Runs `body` with a ``FlushTimer`` that wakes `next(orUntil:timer:)` on this input when its deadline passes.
    func withFlushTimer<Result: Sendable>(_ body: (FlushTimer) async throws -> Result) async throws -> Result {
        let timer = FlushTimer()
        let (clock, storage) = (self.clock, self.channel.storage)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await timer.run(clock: clock) { storage.wakeConsumer() } }
            defer { group.cancelAll() }
            return try await body(timer)
        }
    }

    /// Receives the batches of a ``StageInput``.
    public struct Iterator: AsyncIteratorProtocol {
        public typealias Failure = any Error

        private var base: BoundedChannel<Batch<Record>>.Iterator
        private let storage: BoundedChannelStorage<Batch<Record>>
        private let recorder: StageRecorder
        private let flight: PeakCounter
        private let clock: RunClock
        private let beforeWait: BeforeWait?
        /// Records of the batch last handed out, still counted in flight until the stage asks for the next one.
        private var held = 0
        /// Whether to time each batch (see ``StageRecorder/timesBatches``), and when the last one came.
        private let timesBatches: Bool
        private var receivedAt: UInt64 = 0
        private var blockedAtReceipt: UInt64 = 0

        init(
            base: BoundedChannel<Batch<Record>>.Iterator,
            storage: BoundedChannelStorage<Batch<Record>>,
            recorder: StageRecorder,
            flight: PeakCounter,
            clock: RunClock,
            beforeWait: BeforeWait? = nil
        ) {
            self.base = base
            self.storage = storage
            self.recorder = recorder
            self.flight = flight
            self.clock = clock
            self.beforeWait = beforeWait
            self.timesBatches = recorder.timesBatches.load(ordering: .relaxed)
        }

        /// The next batch, or `nil` at the end of the input.
        ///
        /// - Throws: `CancellationError` if the run is cancelled.
        public mutating func next() async throws -> Batch<Record>? {
            self.release()
            self.timeLastBatch()
            if let beforeWait = self.beforeWait, self.isIdle {
                try await beforeWait.action()  // nothing to read now: what the stage emitted goes on first
            }
            let start = monotonicNanoseconds()
            self.recorder.beginWait()
            defer { self.recorder.endWait() }
            guard let batch = try await self.base.next() else {
                self.recorder.waited(monotonicNanoseconds() &- start)
                return nil
            }
            let received = monotonicNanoseconds()
            self.recorder.received(batch.count, waited: received &- start)
            let depth = self.storage.depth
            self.recorder.metrics.channelDepth.record(depth.now)
            self.recorder.metrics.queueDepthPeak.record(depth.peak)
            self.held = batch.count
            if self.timesBatches {
                self.receivedAt = received
                self.blockedAtReceipt = self.recorder.blockedNanoseconds.load(ordering: .relaxed)
            }
            return batch
        }

        /// Records how long the stage took on the batch it received last: until now, less the time it waited for
        /// room downstream meanwhile.
        private mutating func timeLastBatch() {
            guard self.receivedAt != 0 else { return }
            let elapsed = monotonicNanoseconds() &- self.receivedAt
            let blocked = self.recorder.blockedNanoseconds.load(ordering: .relaxed) &- self.blockedAtReceipt
            self.recorder.took(elapsed &- Swift.min(elapsed, blocked))
            self.receivedAt = 0
        }

        /// Whether the next call to ``next()`` would wait: nothing has arrived since the last batch and the input has
        /// not ended. A stage holding records back (a write buffer, a partial batch) passes them on now.
        var isIdle: Bool { self.storage.isAwaitingElements }

        /// What ``next(orUntil:timer:)`` returns.
        enum Event {
            case batch(Batch<Record>)
            /// The input ended.
            case end
            /// `deadline` came while the input was idle; the next call waits for input again.
            case deadline
        }

        /// The next batch, or ``Event/deadline`` if nothing arrives before `deadline` on the run's clock.
        ///
        /// A batch that is already there is returned without looking at the clock; only an idle input waits for
        /// both, and neither is consumed by losing: `timer` (see ``StageInput/withFlushTimer(_:)``) wakes the wait
        /// when the deadline passes.
        ///
        /// - Throws: As ``next()``.
        mutating func next(orUntil deadline: Duration?, timer: FlushTimer) async throws -> Event {
            timer.setDue(deadline)
            if let deadline, self.isIdle {
                self.release()
                self.timeLastBatch()
                let start = monotonicNanoseconds()
                self.recorder.beginWait()
                defer {
                    self.recorder.endWait()
                    self.recorder.waited(monotonicNanoseconds() &- start)
                }
                while self.isIdle {
                    if self.clock.elapsed() >= deadline { return .deadline }
                    await self.storage.waitForElement()
                    try Task.checkCancellation()
                }
            }
            return try await self.next().map(Event.batch) ?? .end
        }

        /// Stops counting the last batch as in flight: the stage is done with it.
        mutating func release() {
            self.flight.add(-self.takeHeld())
        }

        /// Hands the count of the last batch to the caller, which stops counting it when it sends its output
        /// (one counter update instead of two).
        @usableFromInline
        mutating func takeHeld() -> Int {
            defer { self.held = 0 }
            return self.held
        }
    }
}

@available(*, unavailable)
extension StageInput.Iterator: Sendable {}
