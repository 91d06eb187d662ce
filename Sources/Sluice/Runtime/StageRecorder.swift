import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Monotonic nanoseconds, read once per batch hand-off (never per record) for the run report.
@usableFromInline
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}

/// What one stage did during a run; the stage's own task writes it, a reader may look at any time.
///
/// Updated once per batch, with relaxed atomics: each counter has a single writer, and readers (the run report,
/// a progress display) need a recent value, not a synchronised one.
@usableFromInline
final class StageRecorder: Sendable {
    let name: String
    let kind: String
    /// The stage's swift-metrics instruments.
    let metrics: StageMetrics
    let recordsIn = Atomic<Int>(0)
    let batchesIn = Atomic<Int>(0)
    let recordsOut = Atomic<Int>(0)
    let batchesOut = Atomic<Int>(0)
    let waitingNanoseconds = Atomic<UInt64>(0)
    let blockedNanoseconds = Atomic<UInt64>(0)
    let blockedSends = Atomic<Int>(0)
    /// Bytes a byte-handling stage read (as stored, e.g. compressed) and wrote (as stored).
    let bytesIn = Atomic<Int>(0)
    let bytesOut = Atomic<Int>(0)
    /// Records handled by the stage's error policy.
    let skipped = Atomic<Int>(0)
    let retries = Atomic<Int>(0)
    let deadLettered = Atomic<Int>(0)
    let timedOut = Atomic<Int>(0)
    /// Waits in progress — for input, or for room downstream: a stage that waits is not busy, and the drain
    /// deadline does not name it.
    let waitsInProgress = Atomic<Int>(0)
    /// Batches with a parallel stage's workers, or calls of an async stage, in progress.
    let workInProgress = Atomic<Int>(0)
    let startNanoseconds = Atomic<UInt64>(0)
    /// For parallel stages: time the workers spent working, and how many workers there are.
    let workerNanoseconds = Atomic<UInt64>(0)
    let workers = Atomic<Int>(0)
    let endNanoseconds = Atomic<UInt64>(0)
    /// How long the stage took per batch — per call for asynchronous stages, per batch of a worker for parallel ones.
    let latency = LatencyRecorder()
    /// Whether the stage's input iterator times its batches (receipt to the next request, less the time blocked on
    /// output); `false` for stages whose workers or calls are timed instead.
    let timesBatches = Atomic<Bool>(true)
    /// The depth of the stage's input channel, for stages that have one.
    private let inputQueue = Locked<(@Sendable () -> QueueDepth)?>(nil)

    init(name: String, kind: String, metrics: StageMetrics) {
        self.name = name
        self.kind = kind
        self.metrics = metrics
    }

    func received(_ records: Int, waited nanoseconds: UInt64) {
        self.metrics.recordsIn.increment(by: records)
        self.recordsIn.wrappingAdd(records, ordering: .relaxed)
        self.batchesIn.wrappingAdd(1, ordering: .relaxed)
        self.waitingNanoseconds.wrappingAdd(nanoseconds, ordering: .relaxed)
    }

    /// Marks the start and the end of a wait (for input, or for room downstream).
    func beginWait() {
        self.waitsInProgress.wrappingAdd(1, ordering: .relaxed)
    }

    func endWait() {
        self.waitsInProgress.wrappingSubtract(1, ordering: .relaxed)
    }

    /// Whether the stage is waiting now rather than working: a wait is in progress, and none of its workers or
    /// calls is (a parallel or async stage's dispatcher waits for input while its workers are busy).
    var isWaiting: Bool {
        self.waitsInProgress.load(ordering: .relaxed) > 0 && self.workInProgress.load(ordering: .relaxed) == 0
    }

    /// Marks the start and the end of a worker's batch or an async stage's call.
    func beginWork() {
        self.workInProgress.wrappingAdd(1, ordering: .relaxed)
    }

    func endWork() {
        self.workInProgress.wrappingSubtract(1, ordering: .relaxed)
    }

    func waited(_ nanoseconds: UInt64) {
        self.waitingNanoseconds.wrappingAdd(nanoseconds, ordering: .relaxed)
    }

    func sent(_ records: Int, blocked nanoseconds: UInt64, suspended: Bool) {
        self.metrics.recordsOut.increment(by: records)
        self.recordsOut.wrappingAdd(records, ordering: .relaxed)
        self.batchesOut.wrappingAdd(1, ordering: .relaxed)
        self.blockedNanoseconds.wrappingAdd(nanoseconds, ordering: .relaxed)
        if suspended {
            self.blockedSends.wrappingAdd(1, ordering: .relaxed)
            self.metrics.blocked.recordNanoseconds(Int64(nanoseconds))
        }
    }

    func skippedRecord() {
        self.skipped.wrappingAdd(1, ordering: .relaxed)
        self.metrics.skipped.increment()
    }

    func retried() {
        self.retries.wrappingAdd(1, ordering: .relaxed)
        self.metrics.retries.increment()
    }

    func timedOutCall() {
        self.timedOut.wrappingAdd(1, ordering: .relaxed)
        self.metrics.timeouts.increment()
    }

    func deadLetteredRecord() {
        self.deadLettered.wrappingAdd(1, ordering: .relaxed)
        self.metrics.deadLetters.increment()
    }

    /// A parallel stage's worker spent `nanoseconds` on a batch, or an async stage's call (with its retries) took
    /// that long (called from the workers, hence the atomic add).
    func worked(_ nanoseconds: UInt64) {
        self.workerNanoseconds.wrappingAdd(nanoseconds, ordering: .relaxed)
    }

    /// A batch or a call took `nanoseconds`: into the latency histogram and the `sluice_stage_latency` timer (from
    /// any task).
    func took(_ nanoseconds: UInt64) {
        self.latency.record(nanoseconds: nanoseconds)
        self.metrics.latency.recordNanoseconds(Int64(truncatingIfNeeded: nanoseconds))
    }

    func attachInputQueue(_ depth: @escaping @Sendable () -> QueueDepth) {
        self.inputQueue.withLock { $0 = depth }
    }

    /// Batches waiting in the stage's input channel now, and the most that ever waited.
    var queueDepth: QueueDepth {
        self.inputQueue.withLock { $0 }?() ?? QueueDepth(now: 0, peak: 0)
    }

    func report(runEnd: UInt64) -> StageReport {
        let start = self.startNanoseconds.load(ordering: .relaxed)
        var end = self.endNanoseconds.load(ordering: .relaxed)
        if end == 0 { end = runEnd }
        let total = start == 0 ? 0 : end &- min(start, end)
        var waiting = self.waitingNanoseconds.load(ordering: .relaxed)
        let blocked = min(total, self.blockedNanoseconds.load(ordering: .relaxed))
        var busy = total &- min(total, waiting &+ blocked)
        let workers = self.workers.load(ordering: .relaxed)
        if workers > 0 {
            // A parallel stage's coordinator mostly waits; what matters is how busy its workers were, on average.
            busy = min(total &- blocked, self.workerNanoseconds.load(ordering: .relaxed) / UInt64(workers))
            waiting = total &- blocked &- busy
        }
        return StageReport(
            name: self.name,
            kind: self.kind,
            recordsIn: self.recordsIn.load(ordering: .relaxed),
            recordsOut: self.recordsOut.load(ordering: .relaxed),
            batchesIn: self.batchesIn.load(ordering: .relaxed),
            batchesOut: self.batchesOut.load(ordering: .relaxed),
            busy: .nanoseconds(Int64(busy)),
            waitingForInput: .nanoseconds(Int64(waiting)),
            blockedOnOutput: .nanoseconds(Int64(blocked)),
            blockedSends: self.blockedSends.load(ordering: .relaxed),
            bytesIn: self.bytesIn.load(ordering: .relaxed),
            bytesOut: self.bytesOut.load(ordering: .relaxed),
            skipped: self.skipped.load(ordering: .relaxed),
            retries: self.retries.load(ordering: .relaxed),
            deadLettered: self.deadLettered.load(ordering: .relaxed),
            timedOut: self.timedOut.load(ordering: .relaxed),
            latency: self.latency.summary,
            queueDepth: self.queueDepth
        )
    }

}
