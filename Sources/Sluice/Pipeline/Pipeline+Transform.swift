// The per-record operators. Each is a stage of its own (its own task, its own input channel) that applies the
// user's closure to whole batches, so the per-record cost is the closure call and nothing else.

extension Pipeline {
    /// Transforms every record.
    ///
    /// - Parameters:
    ///   - name: The stage's name in reports; defaults to `"map"`.
    ///   - placement: Where the stage runs; `.compute` for CPU-heavy or blocking transforms.
    ///   - policy: What to do when the closure throws for a record. Default ``ErrorPolicy/stop``.
    ///   - transform: Called once per record, in order. A thrown error fails the run.
    @inlinable
    public func map<Next: Sendable>(
        name: String? = nil,
        on placement: Placement = .cooperative,
        onError policy: ErrorPolicy = .stop,
        _ transform: @escaping @Sendable (Output) throws -> Next
    ) -> Pipeline<Next> {
        guard policy.isStop else {
            return self.recordwise(kind: "map", name: name, placement: placement, policy: policy) { record, output, _ in
                output.append(try transform(record))
            }
        }
        return self.batchwise(kind: "map", name: name, placement: placement) { batch, done in
            Batch(
                try batch.mapRecords { record in
                    let next = try transform(record)
                    done += 1
                    return next
                }
            )
        }
    }

    /// Keeps the records for which `isIncluded` returns `true`.
    ///
    /// - Parameters:
    ///   - name: The stage's name in reports; defaults to `"filter"`.
    ///   - placement: Where the stage runs; `.compute` for CPU-heavy or blocking predicates.
    ///   - policy: What to do when the closure throws for a record. Default ``ErrorPolicy/stop``.
    ///   - isIncluded: Called once per record, in order. A thrown error fails the run.
    @inlinable
    public func filter(
        name: String? = nil,
        on placement: Placement = .cooperative,
        onError policy: ErrorPolicy = .stop,
        _ isIncluded: @escaping @Sendable (Output) throws -> Bool
    ) -> Pipeline<Output> {
        guard policy.isStop else {
            return self.recordwise(kind: "filter", name: name, placement: placement, policy: policy) {
                record,
                output,
                _ in
                if try isIncluded(record) { output.append(record) }
            }
        }
        return self.batchwise(kind: "filter", name: name, placement: placement, subsets: true) { batch, done in
            try batch.filtered { record in
                let keep = try isIncluded(record)
                done += 1
                return keep
            }
        }
    }

    /// Transforms every record and keeps the non-`nil` results.
    ///
    /// - Parameters:
    ///   - name: The stage's name in reports; defaults to `"compactMap"`.
    ///   - placement: Where the stage runs; `.compute` for CPU-heavy or blocking transforms.
    ///   - policy: What to do when the closure throws for a record. Default ``ErrorPolicy/stop``.
    ///   - transform: Called once per record, in order. A thrown error fails the run.
    @inlinable
    public func compactMap<Next: Sendable>(
        name: String? = nil,
        on placement: Placement = .cooperative,
        onError policy: ErrorPolicy = .stop,
        _ transform: @escaping @Sendable (Output) throws -> Next?
    ) -> Pipeline<Next> {
        guard policy.isStop else {
            return self.recordwise(kind: "compactMap", name: name, placement: placement, policy: policy) {
                record,
                output,
                _ in
                if let value = try transform(record) { output.append(value) }
            }
        }
        return self.batchwise(kind: "compactMap", name: name, placement: placement) { batch, done in
            Batch(
                try batch.compactMap { record in
                    let next = try transform(record)
                    done += 1
                    return next
                }
            )
        }
    }

    /// Replaces every record by the elements of the sequence `transform` returns for it.
    ///
    /// Output is sent in batches as it is produced, so one record may expand to any number of records without
    /// holding them all.
    ///
    /// - Parameters:
    ///   - name: The stage's name in reports; defaults to `"flatMap"`.
    ///   - placement: Where the stage runs; `.compute` for CPU-heavy or blocking transforms.
    ///   - policy: What to do when the closure throws for a record. Default ``ErrorPolicy/stop``.
    ///   - transform: Called once per record, in order. A thrown error fails the run.
    @inlinable
    public func flatMap<Segment: Sequence & SendableMetatype>(
        name: String? = nil,
        on placement: Placement = .cooperative,
        onError policy: ErrorPolicy = .stop,
        _ transform: @escaping @Sendable (Output) throws -> Segment
    ) -> Pipeline<Segment.Element> where Segment.Element: Sendable {
        self.expanding(name: name, placement: placement, policy: policy, transform)
    }

    /// The stage of `flatMap`. It holds its input batch and the output batch it is filling: two batches. However
    /// far one record expands, its output goes on in batches cut by the run's limits, under every error policy.
    @usableFromInline
    func expanding<Segment: Sequence & SendableMetatype>(
        name: String?,
        placement: Placement,
        policy: ErrorPolicy,
        _ transform: @escaping @Sendable (Output) throws -> Segment
    ) -> Pipeline<Segment.Element> where Segment.Element: Sendable {
        self.through(kind: "flatMap", name: name, heldBatches: 2, placement: placement) { graph, recorder in
            let recordGuard =
                policy.isStop ? nil : graph.makeRecordGuard(policy: policy, timeout: nil, recorder: recorder)
            return { input, output in
                var iterator = input.makeAsyncIterator()
                var index = 0
                while let batch = try await iterator.next() {
                    for record in batch {
                        var segment: Segment?
                        if let recordGuard {
                            // Only the call is guarded: iterating a sequence cannot throw.
                            try await recordGuard.run(record, index: index) { segment = try transform(record) }
                        } else {
                            do {
                                segment = try transform(record)
                            } catch {
                                throw RecordFailure(index: index, underlying: error, record: record)
                            }
                        }
                        index += 1
                        guard let segment else { continue }  // skipped, or sent to the dead letters
                        for element in segment {
                            try await output.emit(element)
                        }
                    }
                    try await output.flush()
                    try await output.send(Batch([]), releasing: iterator.takeHeld())
                }
            }
        }
    }

    /// Transforms every record with an asynchronous function, in a stage named `name`.
    ///
    /// Records are processed one at a time, in order; use this for work that awaits (a lookup, a request).
    ///
    /// - Parameters:
    ///   - name: The stage's name in reports.
    ///   - timeout: The longest one call may take, on the run's clock; a call that takes longer fails with
    ///     ``StageTimeoutError``, which the error policy then handles. `nil` (the default): no limit.
    ///   - policy: What to do when a call throws (or times out). Default ``ErrorPolicy/stop``.
    ///   - transform: Called once per record, in order.
    @inlinable
    public func stage<Next: Sendable>(
        _ name: String,
        timeout: Duration? = nil,
        onError policy: ErrorPolicy = .stop,
        _ transform: @escaping @Sendable (Output) async throws -> Next
    ) -> Pipeline<Next> {
        self.recordwise(
            kind: "stage",
            name: name,
            placement: .cooperative,
            policy: policy,
            timeout: timeout,
            timesCalls: true
        ) { record, output, recordGuard in
            output.append(try await recordGuard.withTimeout { try await transform(record) })
        }
    }

    /// A stage that applies `apply` record by record, under an error policy and an optional timeout.
    @usableFromInline
    func recordwise<Next: Sendable>(
        kind: String,
        name: String?,
        placement: Placement,
        policy: ErrorPolicy,
        timeout: Duration? = nil,
        timesCalls: Bool = false,
        heldBatches: Int = 1,
        _ apply: @escaping @Sendable (Output, inout [Next], RecordGuard) async throws -> Void
    ) -> Pipeline<Next> {
        self.through(kind: kind, name: name, heldBatches: heldBatches, placement: placement) { graph, recorder in
            // A stage of calls (`apply` uses the guard's `withTimeout`) is timed per call, not per batch.
            if timesCalls { recorder.timesBatches.store(false, ordering: .relaxed) }
            let recordGuard = graph.makeRecordGuard(policy: policy, timeout: timeout, recorder: recorder)
            return { input, output in
                var iterator = input.makeAsyncIterator()
                var index = 0
                while let batch = try await iterator.next() {
                    var records: [Next] = []
                    records.reserveCapacity(batch.count)
                    for record in batch {
                        try await recordGuard.run(record, index: index) {
                            try await apply(record, &records, recordGuard)
                        }
                        index += 1
                    }
                    try await output.send(Batch(records), releasing: iterator.takeHeld())
                }
            }
        }
    }

    /// Passes the records through a custom ``Stage``.
    ///
    /// - Parameters:
    ///   - stage: The stage.
    ///   - name: The stage's name in reports; defaults to the stage's ``Stage/kind``.
    public func stage<S: Stage>(_ stage: S, name: String? = nil) -> Pipeline<S.Output> where S.Input == Output {
        // A custom stage may hold its input batch while it fills an output batch.
        self.through(kind: stage.kind, name: name, heldBatches: 2) { input, output in
            // Whenever the stage would wait for input, what it emitted goes on first: nothing is held back for
            // want of a flush().
            var input = input
            input.beforeWait = StageInput.BeforeWait { try await output.flush() }
            try await stage.run(input: input, output: output)
        }
    }

    /// A stage that turns each input batch into one output batch with `transform`.
    ///
    /// `transform` counts the records it is done with in its second argument, so an error names the record it came
    /// from (a counter in a register: nothing per record beyond it). The input is released before the output is
    /// sent, so the stage holds one batch at a time.
    ///
    /// - Parameter subsets: Whether each batch `transform` returns holds some of its input's records (a filter): within
    ///   the run's batch limits as its input was, it is not measured against them again.
    @usableFromInline
    func batchwise<Next: Sendable>(
        kind: String,
        name: String?,
        placement: Placement,
        subsets: Bool = false,
        _ transform: @escaping @Sendable (Batch<Output>, inout Int) throws -> Batch<Next>
    ) -> Pipeline<Next> {
        self.through(kind: kind, name: name, heldBatches: 1, placement: placement) { input, output in
            var iterator = input.makeAsyncIterator()
            var seen = 0
            while let batch = try await iterator.next() {
                var done = 0
                let next: Batch<Next>
                do {
                    next = try transform(batch, &done)
                } catch {
                    throw RecordFailure(index: seen + done, underlying: error, record: batch.record(at: done))
                }
                seen += batch.count
                try await output.send(next, releasing: iterator.takeHeld(), cut: subsets)
            }
        }
    }
}
