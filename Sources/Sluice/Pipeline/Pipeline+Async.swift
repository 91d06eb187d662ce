// Calls to services: many records awaiting at once, on the cooperative pool.

extension Pipeline {
    /// Transforms every record with an asynchronous call — a request to a service, a lookup — with up to
    /// `concurrency` calls in flight at once.
    ///
    /// ```swift
    /// let breaker = CircuitBreaker(name: "geo", clock: clock)
    /// pipeline.mapAsync(concurrency: 16, timeout: .seconds(2), onError: .retry(.exponential(maxAttempts: 4))) {
    ///     try await breaker.run { try await geo.lookup($0) }
    /// }
    /// ```
    ///
    /// The calls run on Swift's cooperative pool: they await I/O, they must not block a thread (put blocking or
    /// CPU-heavy work on ``parallelMap(name:concurrency:ordered:reorderWindow:on:onError:_:)`` instead).
    /// Backpressure holds: once `concurrency` calls are in flight the stage reads no more input, and a full
    /// downstream channel stops new calls, so a slow service slows the source down rather than filling memory.
    /// Results go on as soon as they are in order (or at once, unordered), gathered into batches while calls
    /// complete faster than the next stage takes them.
    ///
    /// Each record's call goes through the stage's error policy on its own: a retry waits (on the run's clock)
    /// without holding up the other calls, a skipped or dead-lettered record leaves a gap that the order skips.
    /// A ``CircuitBreaker`` around the call makes a failing service fail fast, through the same policy.
    ///
    /// - Parameters:
    ///   - name: The stage's name in reports; defaults to `"mapAsync"`.
    ///   - concurrency: How many calls may be in flight at once; at least 1.
    ///   - ordered: Whether results keep the input's order (the default) or go on as calls complete.
    ///   - reorderWindow: Ordered mode: how many records may be started past the oldest unfinished one (finished,
    ///     they wait for it). Defaults to 4 × `concurrency`; at least `concurrency`.
    ///   - timeout: The longest one call may take, on the run's clock; a call that takes longer is cancelled and
    ///     fails with ``StageTimeoutError``, which the error policy then handles. `nil` (the default): no limit.
    ///   - policy: What to do when a call throws (or times out). Default ``ErrorPolicy/stop``: the run fails with
    ///     the record's position and the other calls are cancelled.
    ///   - transform: Called once per record (more often when retried), from several tasks at once.
    public func mapAsync<Next: Sendable>(
        name: String? = nil,
        concurrency: Int,
        ordered: Bool = true,
        reorderWindow: Int? = nil,
        timeout: Duration? = nil,
        onError policy: ErrorPolicy = .stop,
        _ transform: @escaping @Sendable (Output) async throws -> Next
    ) -> Pipeline<Next> {
        self.through(kind: "mapAsync", name: name) { graph, recorder in
            let calls = max(concurrency, 1)
            let window = ordered ? reorderWindow ?? 4 * calls : calls
            do {
                try ConfigurationError.requirePositive(concurrency, "\(recorder.name).concurrency")
                if window < calls {
                    throw ConfigurationError(
                        setting: "\(recorder.name).reorderWindow",
                        value: window,
                        requirement: "must be at least the concurrency (\(calls))"
                    )
                }
            } catch {
                graph.fail(error)
            }
            recorder.workers.store(calls, ordering: .relaxed)
            recorder.timesBatches.store(false, ordering: .relaxed)  // each call is timed instead
            let recordGuard = graph.makeRecordGuard(policy: policy, timeout: timeout, recorder: recorder)
            var onWindowFull: (@Sendable () -> Void)?
            if let hook = graph.options.hooks.onReorderWindowFull {
                let stageName = recorder.name
                onWindowFull = { hook(stageName) }
            }
            let settings = AsyncMapSettings(
                concurrency: calls,
                window: max(window, calls),
                ordered: ordered,
                onWindowFull: onWindowFull
            )
            // The batch being read, the records of earlier batches still with calls or waiting for their turn
            // (`window` at most), and the batch of results being gathered.
            let maxRecords = max(graph.options.batch.maxRecords, 1)
            let heldBatches = 2 + (settings.window + maxRecords - 1) / maxRecords
            return (
                heldBatches,
                { input, output in
                    try await AsyncMapCoordinator.run(
                        input: input,
                        output: output,
                        settings: settings,
                        recorder: recorder
                    ) { record, index in
                        var result: Next?
                        try await recordGuard.run(record, index: index) {
                            result = try await recordGuard.withTimeout { try await transform(record) }
                        }
                        return result
                    }
                }
            )
        }
    }
}
