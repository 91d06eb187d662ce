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
            try records.forEachRecord(locatingFrom: firstIndex) { record in output.append(try transform(record)) }
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
                try records.forEachRecord(locatingFrom: firstIndex) { record in try update(&partial, record) }
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
        self.through(kind: kind, name: name) { graph, recorder in
            let (pool, workers) = graph.parallelWorkers(concurrency, placement: placement, stage: kind)
            let window = reorderWindow ?? 2 * max(workers, 1)
            do {
                try ConfigurationError.requirePositive(window, "\(kind).reorderWindow")
            } catch {
                graph.fail(error)
            }
            recorder.workers.store(workers, ordering: .relaxed)
            recorder.timesBatches.store(false, ordering: .relaxed)  // the workers' batches are timed instead
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
            return (
                window + 1,
                { input, output in
                    try await ParallelMapCoordinator.run(
                        input: input,
                        output: output,
                        settings: settings,
                        recorder: recorder,
                        work: { try await work($0, $1, recordGuard) }
                    )
                }
            )
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
        self.sink(kind: kind, name: name, placement: placement) { graph, recorder in
            let (pool, workers) = graph.parallelWorkers(concurrency, placement: placement, stage: kind)
            recorder.workers.store(workers, ordering: .relaxed)
            recorder.timesBatches.store(false, ordering: .relaxed)  // the workers' batches are timed instead
            // The job being gathered, plus each worker's queue and the job it folds: each up to `jobBatches` batches.
            let held = (workers * (ParallelFold.jobsPerWorker + 1) + 1) * ParallelFold.jobBatches
            return (
                held,
                { input in
                    try await ParallelFold.run(
                        input: input,
                        initialResult: initialResult,
                        pool: pool,
                        workers: max(workers, 1),
                        recorder: recorder,
                        fold: fold,
                        merge: merge
                    )
                }
            )
        }
    }
}
