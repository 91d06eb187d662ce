import Synchronization

// Parallel stages: whole batches go to workers on a compute pool.
//
// Cost model (measured on a 2-core VM): waking a sleeping pool thread costs ~25 µs, a fan-out ~1.3 µs per job,
// and running a whole stage under a task-executor preference costs nothing per record. So a parallel stage never
// sends single records to the pool: each job is a whole batch (1024 records of real parsing or hashing is well
// over the ~100 µs that makes the hand-off negligible), run as a child task that prefers the pool. A stage that
// only needs to run somewhere other than the cooperative pool uses `on: .compute` and pays nothing per record.

extension Pipeline {
    /// Transforms every record on several workers at once, whole batches at a time.
    ///
    /// ```swift
    /// lines.parallelMap(concurrency: 4) { parse($0) }                       // output in input order
    /// lines.parallelMap(ordered: false) { hash($0) }                        // output as batches complete
    /// lines.parallelMap(concurrency: 2, reorderWindow: 16) { parse($0) }    // more slack for uneven batches
    /// ```
    ///
    /// The number of workers (`concurrency`) and how far ahead of the oldest unfinished batch the stage may run
    /// (`reorderWindow`) are separate settings: a slow batch holds back at most `reorderWindow` batches, however
    /// many workers there are. In ordered mode those batches wait, finished, until the slow one is done; in
    /// unordered mode they go on as they complete.
    ///
    /// - Parameters:
    ///   - name: The stage's name in reports; defaults to `"parallelMap"`.
    ///   - concurrency: How many batches are transformed at once; defaults to the pool's thread count.
    ///   - ordered: Whether the output keeps the input order. Default `true`.
    ///   - reorderWindow: The most batches handed out and not yet sent on; defaults to `2 × concurrency`. At
    ///     least 1; values below `concurrency` limit the parallelism to the window.
    ///   - placement: Where the workers run; defaults to the run's compute pool.
    ///   - policy: What to do when `transform` throws for a record. Default ``ErrorPolicy/stop``: the run fails
    ///     with the record's position (``PipelineError/recordIndex``) and the other workers are cancelled.
    ///   - transform: Called once per record, on a worker.
    @inlinable
    public func parallelMap<Next: Sendable>(
        name: String? = nil,
        concurrency: Int? = nil,
        ordered: Bool = true,
        reorderWindow: Int? = nil,
        on placement: Placement = .compute,
        onError policy: ErrorPolicy = .stop,
        _ transform: @escaping @Sendable (Output) throws -> Next
    ) -> Pipeline<Next> {
        self.parallelBatches(
            kind: "parallelMap",
            name: name,
            concurrency: concurrency,
            ordered: ordered,
            reorderWindow: reorderWindow,
            placement: placement,
            policy: policy
        ) { records, firstIndex, recordGuard in
            if let recordGuard {
                // A policy other than stop: record by record, in the worker's task (a retry suspends, it does not
                // hold the pool's thread).
                var output: [Next] = []
                output.reserveCapacity(records.count)
                for (offset, record) in records.enumerated() {
                    try await recordGuard.run(record, index: firstIndex + offset) {
                        output.append(try transform(record))
                    }
                }
                return output
            }
            var output: [Next] = []
            output.reserveCapacity(records.count)
            try records.forEachRecord { offset, record in
                do {
                    output.append(try transform(record))
                } catch {
                    throw RecordFailure(index: firstIndex + offset, underlying: error)
                }
            }
            return output
        }
    }

    /// Ends the pipeline by folding the records on several workers at once, each into its own partial result,
    /// then merging the partial results: the run's result.
    ///
    /// ```swift
    /// let counts = try await words
    ///     .parallelReduce(into: [String: Int]()) { counts, word in counts[word, default: 0] += 1 }
    ///         merge: { total, part in total.merge(part, uniquingKeysWith: +) }
    ///     .run()
    /// ```
    ///
    /// Each worker keeps one partial value for the whole run (no merge per batch). Batches go to whichever
    /// worker is free, so `merge` must not depend on the order: it must be associative and commutative.
    ///
    /// - Parameters:
    ///   - initialResult: Each worker's starting partial value (and the result for an empty input).
    ///   - name: The stage's name in reports; defaults to `"parallelReduce"`.
    ///   - concurrency: How many workers; defaults to the pool's thread count.
    ///   - placement: Where the workers run; defaults to the run's compute pool.
    ///   - update: Folds one record into a worker's partial value. A thrown error fails the run with the record's
    ///     position.
    ///   - merge: Folds one worker's partial value into the total, after the input ended.
    @inlinable
    public func parallelReduce<Partial: Sendable>(
        into initialResult: Partial,
        name: String? = nil,
        concurrency: Int? = nil,
        on placement: Placement = .compute,
        _ update: @escaping @Sendable (inout Partial, Output) throws -> Void,
        merge: @escaping @Sendable (inout Partial, Partial) throws -> Void
    ) -> RunnablePipeline<Partial> {
        self.parallelFold(
            kind: "parallelReduce",
            name: name,
            initialResult: initialResult,
            concurrency: concurrency,
            placement: placement,
            fold: { partial, records, firstIndex in
                try records.forEachRecord { offset, record in
                    do {
                        try update(&partial, record)
                    } catch {
                        throw RecordFailure(index: firstIndex + offset, underlying: error)
                    }
                }
            },
            merge: merge
        )
    }

    /// The machinery of `parallelMap`: `work` maps one batch (its records, and the position of its first record).
    @usableFromInline
    func parallelBatches<Next: Sendable>(
        kind: String,
        name: String?,
        concurrency: Int?,
        ordered: Bool,
        reorderWindow: Int?,
        placement: Placement,
        policy: ErrorPolicy = .stop,
        work: @escaping @Sendable (Batch<Output>, Int, RecordGuard?) async throws -> [Next]
    ) -> Pipeline<Next> {
        Pipeline<Next> { graph, edges in
            let (pool, workers) = graph.parallelWorkers(concurrency, placement: placement, stage: kind)
            let window = reorderWindow ?? 2 * max(workers, 1)
            do {
                try ConfigurationError.requirePositive(window, "\(kind).reorderWindow")
            } catch {
                graph.fail(error)
            }
            let inputEdge = graph.makeEdge(of: Output.self)
            self.attach(graph, [inputEdge])
            let recorder = graph.makeRecorder(kind: kind, name: name)
            recorder.workers.store(workers, ordering: .relaxed)
            let input = graph.makeInput(inputEdge, recorder: recorder)
            let recordGuard =
                policy.isStop ? nil : graph.makeRecordGuard(policy: policy, timeout: nil, recorder: recorder)
            var onWindowFull: (@Sendable () -> Void)?
            if let hook = graph.options.hooks.onReorderWindowFull {
                let stageName = recorder.name
                onWindowFull = { hook(stageName) }
            }
            let settings = ParallelMapSettings(
                pool: pool,
                workers: workers,
                window: window,
                ordered: ordered,
                onWindowFull: onWindowFull
            )
            // The batch being read, plus up to `window` batches with the workers or waiting to be sent on.
            graph.addProducingStage(recorder, into: edges, heldBatches: window + 1) { output in
                try await ParallelMapCoordinator.run(
                    input: input,
                    output: output,
                    settings: settings,
                    recorder: recorder,
                    work: { try await work($0, $1, recordGuard) }
                )
            }
        }
    }

    /// The machinery of `parallelReduce`: `fold` folds one batch into a worker's partial value.
    @usableFromInline
    func parallelFold<Partial: Sendable>(
        kind: String,
        name: String?,
        initialResult: Partial,
        concurrency: Int?,
        placement: Placement,
        fold: @escaping @Sendable (inout Partial, Batch<Output>, Int) throws -> Void,
        merge: @escaping @Sendable (inout Partial, Partial) throws -> Void
    ) -> RunnablePipeline<Partial> {
        RunnablePipeline { graph in
            let (pool, workers) = graph.parallelWorkers(concurrency, placement: placement, stage: kind)
            let edge = graph.makeEdge(of: Output.self)
            self.attach(graph, [edge])
            let recorder = graph.makeRecorder(kind: kind, name: name)
            recorder.workers.store(workers, ordering: .relaxed)
            let input = graph.makeInput(edge, recorder: recorder)
            let slot = ResultSlot<Partial>()
            // The job being gathered, plus each worker's queue and the job it folds: each up to `jobBatches` batches.
            let held = (workers * (ParallelFold.jobsPerWorker + 1) + 1) * ParallelFold.jobBatches
            graph.addStage(recorder, heldBatches: held, isSink: true, placement: placement) {
                let result = try await ParallelFold.run(
                    input: input,
                    initialResult: initialResult,
                    pool: pool,
                    workers: max(workers, 1),
                    recorder: recorder,
                    fold: fold,
                    merge: merge
                )
                slot.store(result)
            }
            return slot
        }
    }
}

struct ParallelMapSettings: Sendable {
    let pool: ComputePool?
    let workers: Int
    let window: Int
    let ordered: Bool
    let onWindowFull: (@Sendable () -> Void)?
}

/// Runs a parallel map stage: a dispatcher task reads the input, worker tasks transform batches on the pool, and
/// the stage's own task sends the results on (re-sequenced when ordered).
///
/// Only the stage's own task may use its `StageOutput`, and only a task group's owner may add tasks to it, so the
/// stage's task is both the collector and the one that starts workers; the dispatcher asks it to, through the
/// same event channel the workers report on. The child tasks never throw to the group: their failures travel as
/// events, so the stage's task — which the group does not cancel — never waits for a result that cannot come.
/// Two token channels bound the work:
/// - `slots` (one token per worker): the dispatcher takes one before handing out a batch, a worker returns it.
/// - `permits` (one token per window place): the dispatcher puts one in before handing out a batch, the
///   collector takes one out each time it sends a batch on.
enum ParallelMapCoordinator {
    private enum Event<Input: Sendable, Output: Sendable>: Sendable {
        case dispatch(sequence: Int, records: Batch<Input>, firstIndex: Int)
        case done(sequence: Int, inputCount: Int, result: Result<[Output], any Error>)
        case inputEnded(batches: Int)
        case inputFailed(any Error, batches: Int)
    }

    static func run<Input: Sendable, Output: Sendable>(
        input: StageInput<Input>,
        output: StageOutput<Output>,
        settings: ParallelMapSettings,
        recorder: StageRecorder,
        work: @escaping @Sendable (Batch<Input>, Int) async throws -> [Output]
    ) async throws {
        let events = try BoundedChannel<Event<Input, Output>>(capacity: settings.workers + 1)
        let slots = try BoundedChannel<Void>(capacity: settings.workers)
        let permits = try BoundedChannel<Void>(capacity: settings.window)
        for _ in 0..<settings.workers {
            try await slots.send(())
        }

        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                let dispatched = Locked(0)
                do {
                    try await self.dispatch(
                        input: input,
                        events: events,
                        slots: slots,
                        permits: permits,
                        dispatched: dispatched,
                        onWindowFull: settings.onWindowFull
                    )
                } catch {
                    try await events.send(.inputFailed(error, batches: dispatched.withLock { $0 }))
                }
            }

            var eventIterator = events.makeAsyncIterator()
            var permitIterator = permits.makeAsyncIterator()
            var finished: [Int: (records: [Output], inputCount: Int)] = [:]
            var nextToSend = 0
            var totalBatches: Int?
            var inputFailure: (any Error)?
            while totalBatches.map({ nextToSend < $0 }) ?? true {
                guard let event = try await eventIterator.next() else { break }
                switch event {
                case .dispatch(let sequence, let records, let firstIndex):
                    let inputCount = records.count
                    group.addTask(executorPreference: settings.pool) {
                        let start = monotonicNanoseconds()
                        let result: Result<[Output], any Error>
                        do {
                            result = .success(try await work(records, firstIndex))
                        } catch {
                            result = .failure(error)
                        }
                        recorder.worked(monotonicNanoseconds() &- start)
                        try await events.send(.done(sequence: sequence, inputCount: inputCount, result: result))
                        do {
                            try await slots.send(())
                        } catch let error as ChannelError where error.code == .consumerGone {
                            // The dispatcher read the whole input and needs no more workers.
                        }
                    }
                case .done(let sequence, let inputCount, let result):
                    // A worker's error ends the stage here; leaving the group cancels the dispatcher and workers.
                    let records = try result.get()
                    if settings.ordered {
                        finished[sequence] = (records, inputCount)
                        while let ready = finished.removeValue(forKey: nextToSend) {
                            try await output.send(Batch(ready.records), releasing: ready.inputCount)
                            _ = try await permitIterator.next()
                            nextToSend += 1
                        }
                    } else {
                        try await output.send(Batch(records), releasing: inputCount)
                        _ = try await permitIterator.next()
                        nextToSend += 1
                    }
                case .inputEnded(let batches):
                    totalBatches = batches
                case .inputFailed(let error, let batches):
                    // Send on what was handed out before the input failed, then pass the failure on.
                    totalBatches = batches
                    inputFailure = error
                }
            }
            if let inputFailure { throw inputFailure }
        }
    }

    private static func dispatch<Input: Sendable, Output: Sendable>(
        input: StageInput<Input>,
        events: BoundedChannel<Event<Input, Output>>,
        slots: BoundedChannel<Void>,
        permits: BoundedChannel<Void>,
        dispatched: Locked<Int>,
        onWindowFull: (@Sendable () -> Void)?
    ) async throws {
        var iterator = input.makeAsyncIterator()
        var slotIterator = slots.makeAsyncIterator()
        var sequence = 0
        var firstIndex = 0
        while let batch = try await iterator.next() {
            try await permits.storage.send((), onPark: onWindowFull)  // waits while `window` batches are out
            _ = try await slotIterator.next()  // waits for a free worker
            _ = iterator.takeHeld()  // the batch stays counted in flight until its result is sent on
            try await events.send(.dispatch(sequence: sequence, records: batch, firstIndex: firstIndex))
            sequence += 1
            dispatched.withLock { $0 = sequence }
            firstIndex += batch.count
        }
        try await events.send(.inputEnded(batches: sequence))
    }
}

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
                        let begin = monotonicNanoseconds()
                        try fold(&partial, job.records, job.firstIndex)
                        recorder.worked(monotonicNanoseconds() &- begin)
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
