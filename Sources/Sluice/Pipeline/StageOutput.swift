import Synchronization

/// Where a source or stage sends its records: batches to the downstream stages, with backpressure.
///
/// Send whole batches with ``send(_:)``, or single records with ``emit(_:)``, which gathers them into batches
/// bounded by the run's ``BatchLimits``. The engine flushes the partial batch when the stage returns, and — in a
/// user's ``Source`` or ``Stage`` — whenever it would otherwise be held back: a stage's when it waits for input, a
/// source's at once while its consumers wait, or once its oldest record has waited ``RunOptions/maxDelay``.
/// ``flush()`` pushes a partial batch on at a moment of your choosing.
///
/// Every send may suspend: when a downstream channel is full, the stage waits — that is what bounds memory.
/// If the output feeds several branches (a tee), each batch goes to every branch, and the slowest branch sets
/// the pace.
///
/// - Important: Use a stage's output only from that stage's own task. It is not `Sendable`.
public final class StageOutput<Record: Sendable> {
    private var edges: [OutputEdge<Record>]
    private let recorder: StageRecorder
    private let flight: PeakCounter
    @usableFromInline
    let batchLimits: BatchLimits
    private let sizer = RecordSizer<Record>()
    private let onPark: (@Sendable () -> Void)?
    private var pending: [Record] = []
    private var pendingBytes = 0
    /// When the first record of `pending` was emitted, on the run's clock (tracked for a user's source only).
    private var pendingSince: Duration?
    private let clock: RunClock
    private let maxDelay: Duration
    /// For a user's source: the lock its task and its flush task take to send (see ``withTimelyFlushes(_:)``).
    private var sendLock: AsyncLock?
    private var flushTimer: FlushTimer?

    /// Set when every downstream consumer went away: the stage can stop, nobody needs its output.
    private(set) var downstreamGone = false
    /// Set for a user's ``Source``: once a graceful shutdown is requested, its next `emit` or `send` ends it as a
    /// normal end of input (what it emitted before still drains), even if it never looks at the shutdown itself.
    var endsOnShutdown = false
    @usableFromInline let shutdown: ShutdownSignal
    private let ioThreads: IOThreads
    /// The thread ``waitUntilReadable(_:)`` blocks, made on first use.
    private var waitThread: ComputePool?

    init(
        edges: [OutputEdge<Record>],
        recorder: StageRecorder,
        flight: PeakCounter,
        options: RunOptions,
        shutdown: ShutdownSignal,
        ioThreads: IOThreads,
        clock: RunClock
    ) {
        self.edges = edges
        self.clock = clock
        self.maxDelay = options.maxDelay
        self.recorder = recorder
        self.flight = flight
        self.shutdown = shutdown
        self.ioThreads = ioThreads
        self.batchLimits = options.batch
        if let hook = options.hooks.onSendSuspended {
            let name = recorder.name
            self.onPark = { hook(name) }
        } else {
            self.onPark = nil
        }
    }

    /// Whether the run is shutting down gracefully: a source should stop reading and return, and the engine
    /// sends on everything it already emitted. A source that waits for input should wait with
    /// ``waitUntilReadable(_:)`` or ``waitForInput(_:)``, which end the wait on a shutdown.
    @inlinable
    public var isShutdownRequested: Bool { self.shutdown.isRequested }

    /// Waits until `descriptor` — a pipe, a fifo, a terminal, a socket — can be read without blocking, unless a
    /// graceful shutdown comes first; records gathered by ``emit(_:)`` are sent on before the wait.
    ///
    /// ```swift
    /// struct SocketLines: Source {
    ///     let socket: Int32
    ///     func run(into output: StageOutput<String>) async throws {
    ///         var buffer = [UInt8](repeating: 0, count: 65_536)
    ///         while try await output.waitUntilReadable(socket) {
    ///             let count = read(socket, &buffer, buffer.count)   // ready: does not block
    ///             if count <= 0 { break }
    ///             try await output.emit(String(decoding: buffer[..<count], as: UTF8.self))
    ///         }
    ///     }
    /// }
    /// ```
    ///
    /// The wait blocks no cooperative or compute-pool thread: it runs on an I/O thread of the stage's own, and the
    /// time counts as waiting for input in the run report, not as work.
    ///
    /// - Parameter descriptor: An open descriptor; the caller keeps it and closes it.
    /// - Returns: `true` when a read will not block (data, the end of the input, or an error to read); `false`
    ///   when a graceful shutdown was requested — stop reading and return.
    /// - Throws: `CancellationError` if the run is cancelled, before or during the wait; ``FileError`` if the
    ///   system refuses the wait.
    public func waitUntilReadable(_ descriptor: Int32) async throws -> Bool {
        try await self.flush()
        if self.shutdown.isRequested { return false }
        let name = "descriptor \(descriptor)"
        let waiter = try InputWaiter(shutdown: self.shutdown, path: name)
        defer { waiter.close() }
        let thread: ComputePool
        if let existing = self.waitThread {
            thread = existing
        } else {
            thread = try self.ioThreads.makeThread(for: self.recorder.name)
            self.waitThread = thread
        }
        let start = monotonicNanoseconds()
        self.recorder.beginWait()
        defer {
            self.recorder.endWait()
            self.recorder.waited(monotonicNanoseconds() &- start)
        }
        let outcome = try await waiter.wakingOnCancellation {
            try await thread.run { try waiter.wait(for: descriptor, path: name) }
        }
        return outcome == .ready
    }

    /// Awaits `input` — the next message of a connection, a queue, a callback — unless a graceful shutdown comes
    /// first; records gathered by ``emit(_:)`` are sent on before the wait.
    ///
    /// ```swift
    /// while let message = try await output.waitForInput({ try await connection.receive() }) {
    ///     try await output.emit(message)
    /// }
    /// ```
    ///
    /// The time counts as waiting for input in the run report, not as work.
    ///
    /// - Parameter input: Awaits the next input. On a shutdown it is cancelled: it should not take input it
    ///   cannot give back when cancelled.
    /// - Returns: What `input` returned, or `nil` when a graceful shutdown was requested first — stop reading and
    ///   return.
    /// - Throws: What `input` throws; `CancellationError` if the run is cancelled.
    public func waitForInput<Value: Sendable>(
        _ input: @escaping @Sendable () async throws -> Value
    ) async throws -> Value? {
        try await self.flush()
        if self.shutdown.isRequested { return nil }
        let shutdown = self.shutdown
        let start = monotonicNanoseconds()
        self.recorder.beginWait()
        defer {
            self.recorder.endWait()
            self.recorder.waited(monotonicNanoseconds() &- start)
        }
        let value = try await withThrowingTaskGroup(of: Optional<Value>.self) { group in
            group.addTask { try await input() }
            group.addTask {
                await shutdown.wait()
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        try Task.checkCancellation()
        return value
    }

    /// Sends `batch` downstream, split into several if it exceeds the run's batch limits.
    ///
    /// Records gathered by ``emit(_:)`` and not yet sent go first, so the order is kept.
    ///
    /// - Throws: `CancellationError` if the run is cancelled; ``ChannelError/Code/consumerGone`` once no
    ///   downstream stage consumes any more (the stage should then stop; the engine treats this as a normal end).
    public func send(_ batch: Batch<Record>) async throws {
        try self.checkNotShutDown()
        if let lock = self.sendLock {
            await lock.lock()
            defer { lock.unlock() }
            try self.checkDownstream()
            try await self.flushPending()
            try await self.send(batch, releasing: 0)
        } else {
            try await self.flushPending()
            try await self.send(batch, releasing: 0)
        }
    }

    /// Adds `record` to the batch being gathered, and sends that batch when it is full.
    ///
    /// In a ``Source``, the first `emit` or `send` after a graceful shutdown was requested ends the source instead
    /// (by throwing an error the engine takes as the end of the input): what was emitted before drains, nothing
    /// after it is sent, and a source need not check ``isShutdownRequested`` itself to stop in time.
    ///
    /// - Throws: As ``send(_:)``.
    public func emit(_ record: Record) async throws {
        try self.checkNotShutDown()
        if let lock = self.sendLock {
            await lock.lock()
            defer { lock.unlock() }
            try self.checkDownstream()
            if self.pending.isEmpty {
                let now = self.clock.elapsed()
                self.pendingSince = now
                self.flushTimer?.setDue(now + self.maxDelay)  // the flush task sends it then, if still here
            }
            try await self.append(record)
        } else {
            try await self.append(record)
        }
    }

    private func append(_ record: Record) async throws {
        self.pending.append(record)
        if let measure = self.sizer.measure {
            self.pendingBytes += measure(record)
        }
        if self.pending.count >= self.batchLimits.maxRecords || self.pendingBytes >= self.batchLimits.maxBytes
            || (self.endsOnShutdown && self.isDownstreamIdle)
        {
            try await self.flushPending()
        }
    }

    /// Once every consumer went away (seen by the flush task), a user's source's next send stops it.
    private func checkDownstream() throws(ChannelError) {
        if self.downstreamGone { throw ChannelError(.consumerGone) }
    }

    /// Runs a user's source (`body`) with a flush task beside it: records it emitted are sent when they have waited
    /// ``RunOptions/maxDelay``, even while the source's task is suspended in its own code (a sleep, an await that
    /// is not the wait API). The two take turns through a lock, so batches leave in order.
    func withTimelyFlushes(_ body: () async throws -> Void) async throws {
        let lock = AsyncLock()
        let timer = FlushTimer()
        self.sendLock = lock
        self.flushTimer = timer
        let output = UncheckedOutput(self)
        let clock = self.clock
        let (dues, due) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        // The timer is stopped by cancelling it (and awaited: no task outlives the stage); the flush task by ending
        // its stream, so that a send it has begun is finished, never cut off with the records in it.
        // The source's error is caught inside the group, so that the group never cancels the flush task on its way
        // out (a failing source's records still drain; only cancelling the run cuts a send short).
        let timerTask = Task { await timer.run(clock: clock) { due.yield() } }
        let outcome = await withTaskGroup(of: Void.self) { group -> Result<Void, any Error> in
            group.addTask {
                for await _ in dues {
                    await lock.lock()
                    // Every consumer gone or the run cancelled: the source's own next send reports it.
                    try? await output.value.flushIfDue()
                    lock.unlock()
                }
            }
            defer { due.finish() }
            do {
                try await body()
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        timerTask.cancel()
        await timerTask.value
        try outcome.get()
    }

    /// Sends the gathered records if the oldest has waited `maxDelay`. Called with the send lock held.
    private func flushIfDue() async throws {
        guard let since = self.pendingSince, self.clock.elapsed() >= since + self.maxDelay else { return }
        try await self.flushPending()
    }

    /// Whether every consumer downstream waits for input: a user's source then sends what it emitted at once, a
    /// record at a time if it comes that slowly, and gathers full batches only while its consumers are busy.
    private var isDownstreamIdle: Bool {
        self.edges.allSatisfy { $0.channel.storage.isAwaitingElements }
    }

    /// Adds every record of `records`, sending batches as they fill.
    ///
    /// - Throws: As ``send(_:)``.
    public func emit(contentsOf records: some Sequence<Record>) async throws {
        for record in records {
            try await self.emit(record)
        }
    }

    /// Runs `body` — the stage's own wait for its next input — counted as waiting for input, not work.
    func waitingForInput<Value>(_ body: () async throws -> Value) async rethrows -> Value {
        let start = monotonicNanoseconds()
        self.recorder.beginWait()
        defer {
            self.recorder.endWait()
            self.recorder.waited(monotonicNanoseconds() &- start)
        }
        return try await body()
    }

    /// Ends a user's source at its first `emit` or `send` after a graceful shutdown was requested.
    private func checkNotShutDown() throws(SourceEndedOnShutdown) {
        if self.endsOnShutdown && self.shutdown.isRequested { throw SourceEndedOnShutdown() }
    }

    /// Sends the records gathered by ``emit(_:)`` now, as a partial batch.
    ///
    /// - Throws: As ``send(_:)``.
    public func flush() async throws {
        if let lock = self.sendLock {
            await lock.lock()
            defer { lock.unlock() }
            try await self.flushPending()
        } else {
            try await self.flushPending()
        }
    }

    private func flushPending() async throws {
        self.pendingSince = nil
        self.flushTimer?.setDue(nil)
        guard !self.pending.isEmpty else { return }
        let batch = Batch(self.pending)
        self.pending = []
        self.pending.reserveCapacity(min(self.batchLimits.maxRecords, 4096))
        self.pendingBytes = 0
        try await self.deliver(batch, releasing: 0)
    }

    /// Sends `batch` and stops counting `released` input records as in flight, in one step.
    ///
    /// Stages that turn one input batch into one output batch release the input before they wait on the output,
    /// so each holds at most one batch at a time.
    ///
    /// - Parameters:
    ///   - cut: Whether the caller cut the batch within the limits already (it is not measured again).
    ///   - records: How many records the run report counts the batch as, if not its own count: a stage that
    ///     sends what it made of many records (gzip blocks of lines) reports those. Such a batch is sent as it is,
    ///     not measured against the limits.
    @usableFromInline
    func send(_ batch: Batch<Record>, releasing released: Int, cut: Bool = false, records: Int? = nil) async throws {
        guard !batch.isEmpty else {
            self.flight.add(-released)
            return
        }
        if let records {
            return try await self.deliver(batch, releasing: released, records: records)
        }
        if cut || (batch.count <= self.batchLimits.maxRecords && self.sizer.measure == nil) {
            return try await self.deliver(batch, releasing: released)
        }
        var release = released
        for chunk in self.chunks(of: batch) {
            try await self.deliver(chunk, releasing: release)
            release = 0
        }
    }

    /// Adds to the stage's byte counts in the run report.
    func countBytes(in bytesIn: Int, out bytesOut: Int) {
        self.recorder.bytesIn.wrappingAdd(bytesIn, ordering: .relaxed)
        self.recorder.bytesOut.wrappingAdd(bytesOut, ordering: .relaxed)
    }

    /// Tells every downstream channel that this producer is done (the last producer of a channel finishes it).
    func finish() {
        for edge in self.edges {
            edge.producerFinished()
        }
    }

    /// Ends every downstream channel with `failure`, after the batches already sent.
    func fail(_ failure: UpstreamFailure) {
        for edge in self.edges {
            edge.channel.fail(failure)
        }
    }

    private func deliver(_ batch: Batch<Record>, releasing released: Int, records: Int? = nil) async throws {
        let start = monotonicNanoseconds()
        self.recorder.beginWait()  // for room downstream, if a channel is full
        defer { self.recorder.endWait() }
        var suspended = false
        var delta = batch.count - released
        var index = 0
        while index < self.edges.count {
            // Each copy counts as in flight until its consumer is done with it.
            self.flight.add(delta)
            delta = batch.count
            do {
                if try await self.edges[index].channel.storage.send(batch, onPark: self.onPark) {
                    suspended = true
                }
                index += 1
            } catch let error as ChannelError where error.code == .consumerGone {
                // That branch stopped consuming (e.g. a sink that needed only the first records): keep the others.
                self.flight.add(-batch.count)
                self.edges.remove(at: index)
                if self.edges.isEmpty {
                    self.downstreamGone = true
                    throw error
                }
            }
        }
        self.recorder.sent(records ?? batch.count, blocked: monotonicNanoseconds() &- start, suspended: suspended)
    }

    private func chunks(of batch: Batch<Record>) -> [Batch<Record>] {
        let ranges = batch.ranges(within: self.batchLimits, measure: self.sizer.measure)
        guard ranges.count > 1 else { return [batch] }  // within the limits: sent as it is
        return ranges.map { batch.slice($0) }
    }
}

@available(*, unavailable)
extension StageOutput: Sendable {}

/// A stage's output handed to its flush task (``StageOutput/withTimelyFlushes(_:)``), which touches it only while
/// it holds the send lock, as the stage's own task does.
private struct UncheckedOutput<Record: Sendable>: @unchecked Sendable {
    let value: StageOutput<Record>

    init(_ value: StageOutput<Record>) {
        self.value = value
    }
}

/// A channel between stages, with the number of stages that send into it.
///
/// Several producers share one edge after a merge; the channel finishes when the last of them is done.
final class OutputEdge<Record: Sendable>: Sendable {
    let channel: BoundedChannel<Batch<Record>>
    private let producers = Atomic<Int>(0)

    init(channel: BoundedChannel<Batch<Record>>) {
        self.channel = channel
    }

    /// Called while the pipeline is built, once per producing stage.
    func registerProducer() {
        self.producers.wrappingAdd(1, ordering: .relaxed)
    }

    func producerFinished() {
        if self.producers.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
            self.channel.finish()
        }
    }
}

/// Measures records that conform to ``ByteSized``; for other records, batches are bounded by count alone.
struct RecordSizer<Record> {
    let measure: ((Record) -> Int)?

    init() {
        if let sized = Record.self as? any ByteSized.Type {
            self.measure = Self.measure(as: sized)
        } else {
            self.measure = nil
        }
    }

    /// Opens the existential once, so measuring a record costs a direct call rather than a dynamic cast.
    private static func measure<Sized: ByteSized>(as _: Sized.Type) -> (Record) -> Int {
        // `Record` is `Sized` here: the check above proved it.
        { unsafeBitCast($0, to: Sized.self).byteCount }
    }
}
