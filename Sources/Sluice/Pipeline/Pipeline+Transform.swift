// The per-record operators. Each is a stage of its own (its own task, its own input channel) that applies the
// user's closure to whole batches, so the per-record cost is the closure call and nothing else.

extension Pipeline {
    /// Transforms every record.
    ///
    /// - Parameters:
    ///   - name: The stage's name in reports; defaults to `"map"`.
    ///   - placement: Where the stage runs; `.compute` for CPU-heavy or blocking transforms.
    ///   - transform: Called once per record, in order. A thrown error fails the run.
    @inlinable
    public func map<Next: Sendable>(
        name: String? = nil,
        on placement: Placement = .cooperative,
        _ transform: @escaping @Sendable (Output) throws -> Next
    ) -> Pipeline<Next> {
        self.batchwise(kind: "map", name: name, placement: placement) { try $0.map(transform) }
    }

    /// Keeps the records for which `isIncluded` returns `true`.
    ///
    /// - Parameters:
    ///   - name: The stage's name in reports; defaults to `"filter"`.
    ///   - placement: Where the stage runs; `.compute` for CPU-heavy or blocking predicates.
    ///   - isIncluded: Called once per record, in order. A thrown error fails the run.
    @inlinable
    public func filter(
        name: String? = nil,
        on placement: Placement = .cooperative,
        _ isIncluded: @escaping @Sendable (Output) throws -> Bool
    ) -> Pipeline<Output> {
        self.batchwise(kind: "filter", name: name, placement: placement) { try $0.filter(isIncluded) }
    }

    /// Transforms every record and keeps the non-`nil` results.
    ///
    /// - Parameters:
    ///   - name: The stage's name in reports; defaults to `"compactMap"`.
    ///   - placement: Where the stage runs; `.compute` for CPU-heavy or blocking transforms.
    ///   - transform: Called once per record, in order. A thrown error fails the run.
    @inlinable
    public func compactMap<Next: Sendable>(
        name: String? = nil,
        on placement: Placement = .cooperative,
        _ transform: @escaping @Sendable (Output) throws -> Next?
    ) -> Pipeline<Next> {
        self.batchwise(kind: "compactMap", name: name, placement: placement) { try $0.compactMap(transform) }
    }

    /// Replaces every record by the elements of the sequence `transform` returns for it.
    ///
    /// Output is sent in batches as it is produced, so one record may expand to any number of records without
    /// holding them all.
    ///
    /// - Parameters:
    ///   - name: The stage's name in reports; defaults to `"flatMap"`.
    ///   - placement: Where the stage runs; `.compute` for CPU-heavy or blocking transforms.
    ///   - transform: Called once per record, in order. A thrown error fails the run.
    @inlinable
    public func flatMap<Segment: Sequence & SendableMetatype>(
        name: String? = nil,
        on placement: Placement = .cooperative,
        _ transform: @escaping @Sendable (Output) throws -> Segment
    ) -> Pipeline<Segment.Element> where Segment.Element: Sendable {
        // Holds its input batch and the output batch it is filling: two batches.
        self.through(kind: "flatMap", name: name, heldBatches: 2, placement: placement) { input, output in
            let limit = output.batchLimits.maxRecords
            var iterator = input.makeAsyncIterator()
            while let batch = try await iterator.next() {
                var records: [Segment.Element] = []
                for record in batch {
                    for element in try transform(record) {
                        records.append(element)
                        if records.count == limit {
                            try await output.send(Batch(records), releasing: 0)
                            records = []
                        }
                    }
                }
                try await output.send(Batch(records), releasing: iterator.takeHeld())
            }
        }
    }

    /// Transforms every record with an asynchronous function, in a stage named `name`.
    ///
    /// Records are processed one at a time, in order; use this for work that awaits (a lookup, a request).
    ///
    /// - Parameters:
    ///   - name: The stage's name in reports.
    ///   - transform: Called once per record, in order. A thrown error fails the run.
    @inlinable
    public func stage<Next: Sendable>(
        _ name: String,
        _ transform: @escaping @Sendable (Output) async throws -> Next
    ) -> Pipeline<Next> {
        self.through(kind: "stage", name: name, heldBatches: 1) { input, output in
            var iterator = input.makeAsyncIterator()
            while let batch = try await iterator.next() {
                var records: [Next] = []
                records.reserveCapacity(batch.count)
                for record in batch {
                    records.append(try await transform(record))
                }
                try await output.send(Batch(records), releasing: iterator.takeHeld())
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
            try await stage.run(input: input, output: output)
        }
    }

    /// A stage that turns each input batch into one output batch with `transform`.
    ///
    /// The input is released before the output is sent, so the stage holds one batch at a time.
    @usableFromInline
    func batchwise<Next: Sendable>(
        kind: String,
        name: String?,
        placement: Placement,
        _ transform: @escaping @Sendable ([Output]) throws -> [Next]
    ) -> Pipeline<Next> {
        self.through(kind: kind, name: name, heldBatches: 1, placement: placement) { input, output in
            var iterator = input.makeAsyncIterator()
            while let batch = try await iterator.next() {
                let records = try transform(batch.records)
                try await output.send(Batch(records), releasing: iterator.takeHeld())
            }
        }
    }
}
