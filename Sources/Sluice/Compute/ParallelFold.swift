import Synchronization

/// Runs a parallel reduce: one long-lived worker task per worker, each folding the batches it is handed into its
/// own partial value, kept in a local variable and so mutated in place — never copied per batch.
///
/// The stage's task hands each batch to a worker with room in its queue (a channel of ``jobsPerWorker`` batches),
/// the emptiest first, so a worker that keeps up never goes to sleep between batches: with small batches, a
/// sleeping pool thread woken for every batch cost ~40 µs a batch. At the end of the input the workers return their
/// partial values, which are merged.
///
/// (An earlier design passed the partial values between tasks as tokens; the closure's capture kept a second
/// reference alive when a worker mutated its value, and copy-on-write then copied a worker's whole dictionary for
/// every batch: O(batches × distinct keys).)
enum ParallelFold {
    /// Jobs queued for one worker.
    static let jobsPerWorker = 2
    /// A job gathers batches already waiting until it has this many records, or ``jobBatches`` batches.
    static let jobRecords = 4096
    static let jobBatches = 8

    private struct Job<Input: Sendable>: Sendable {
        let records: Batch<Input>
        let firstIndex: Int
        /// Records counted in flight until the worker is done with them.
        let held: Int
    }

    static func run<Input: Sendable, Partial: Sendable>(
        input: StageInput<Input>,
        initialResult: Partial,
        pool: ComputePool?,
        workers: Int,
        recorder: StageRecorder,
        fold: @escaping @Sendable (inout Partial, Batch<Input>, Int) throws -> Void,
        merge: @escaping @Sendable (inout Partial, Partial) throws -> Void
    ) async throws -> Partial {
        let flight = input.flight
        return try await withThrowingTaskGroup(of: Partial.self) { group in
            var queues: [BoundedChannel<Job<Input>>] = []
            for _ in 0..<workers {
                let queue = try BoundedChannel<Job<Input>>(capacity: Self.jobsPerWorker)
                queues.append(queue)
                group.addTask(executorPreference: pool) {
                    var partial = initialResult
                    for try await job in queue {
                        recorder.beginWork()
                        let begin = monotonicNanoseconds()
                        defer { recorder.endWork() }
                        try fold(&partial, job.records, job.firstIndex)
                        let took = monotonicNanoseconds() &- begin
                        recorder.worked(took)
                        recorder.took(took)
                        flight.add(-job.held)
                    }
                    return partial
                }
            }
            do {
                var iterator = input.makeAsyncIterator()
                var firstIndex = 0
                var next = 0
                while let batch = try await iterator.next() {
                    // Small batches that are already waiting go to a worker together: one hand-off (and at most
                    // one wake-up of a pool thread) for several batches. Nothing waits for more input to do so.
                    var records = batch
                    var held = iterator.takeHeld()
                    var gathered = 1
                    while records.count < Self.jobRecords && gathered < Self.jobBatches && !iterator.isIdle,
                        let more = try await iterator.next()
                    {
                        records.append(more)
                        held += iterator.takeHeld()
                        gathered += 1
                    }
                    // The emptiest queue with room (a send to it does not wait), else the next in turn.
                    let chosen = queues.indices.min { queues[$0].storage.buffered < queues[$1].storage.buffered }
                    if let chosen, queues[chosen].storage.buffered < Self.jobsPerWorker {
                        next = chosen
                    }
                    let job = Job(records: records, firstIndex: firstIndex, held: held)
                    firstIndex += records.count
                    try await queues[next].send(job)
                    next = (next + 1) % queues.count
                }
            } catch let error as ChannelError where error.code == .consumerGone {
                // A worker failed and stopped reading its queue: its own error comes out of the group below.
            }
            for queue in queues {
                queue.finish()
            }
            guard var total = try await group.next() else { return initialResult }
            while let partial = try await group.next() {
                try merge(&total, partial)
            }
            return total
        }
    }
}
