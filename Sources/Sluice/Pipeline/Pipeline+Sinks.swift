// The ways to end a pipeline. Each adds a sink stage and returns a `RunnablePipeline`.

extension Pipeline {
    /// Ends the pipeline with `sink`; the run's result is what the sink returns.
    ///
    /// - Parameters:
    ///   - sink: Where the records go.
    ///   - name: The stage's name in reports; defaults to the sink's ``Sink/kind``.
    public func to<S: Sink>(_ sink: S, name: String? = nil) -> RunnablePipeline<S.Result> where S.Input == Output {
        self.sink(kind: sink.kind, name: name) { input in
            try await sink.run(input: input)
        }
    }

    /// Ends the pipeline by calling `body` for every record, in order.
    ///
    /// - Parameters:
    ///   - name: The stage's name in reports; defaults to `"forEach"`.
    ///   - body: Called once per record. A thrown error fails the run.
    @inlinable
    public func forEach(
        name: String? = nil,
        _ body: @escaping @Sendable (Output) throws -> Void
    ) -> RunnablePipeline<Void> {
        self.sink(kind: "forEach", name: name) { input in
            var seen = 0
            for try await batch in input {
                try batch.forEachRecord(locatingFrom: seen, body)
                seen += batch.count
            }
        }
    }

    /// Ends the pipeline by awaiting `body` for every record, in order.
    ///
    /// - Parameters:
    ///   - name: The stage's name in reports; defaults to `"forEach"`.
    ///   - body: Called once per record; the next record waits until it returns. A thrown error fails the run.
    @inlinable
    public func forEach(
        name: String? = nil,
        _ body: @escaping @Sendable (Output) async throws -> Void
    ) -> RunnablePipeline<Void> {
        self.sink(kind: "forEach", name: name) { input in
            var index = 0
            for try await batch in input {
                for record in batch {
                    do {
                        try await body(record)
                    } catch {
                        throw RecordFailure(index: index, underlying: error, record: record)
                    }
                    index += 1
                }
            }
        }
    }

    /// Ends the pipeline by gathering every record, in order, into the run's result.
    ///
    /// - Important: This holds the whole output in memory. Prefer a streaming sink for large inputs.
    @inlinable
    public func collect(name: String? = nil) -> RunnablePipeline<[Output]> {
        self.sink(kind: "collect", name: name) { input in
            var records: [Output] = []
            for try await batch in input {
                records.append(contentsOf: batch.records)
            }
            return records
        }
    }

    /// Ends the pipeline by folding every record, in order, into one value: the run's result.
    ///
    /// - Parameters:
    ///   - initialResult: The value to start from.
    ///   - name: The stage's name in reports; defaults to `"reduce"`.
    ///   - placement: Where the stage runs; `.compute` for CPU-heavy folds (see also `parallelReduce`).
    ///   - update: Folds one record into the value. A thrown error fails the run.
    @inlinable
    public func reduce<Value: Sendable>(
        into initialResult: Value,
        name: String? = nil,
        on placement: Placement = .cooperative,
        _ update: @escaping @Sendable (inout Value, Output) throws -> Void
    ) -> RunnablePipeline<Value> {
        self.sink(kind: "reduce", name: name, placement: placement) { input in
            var value = initialResult
            var seen = 0
            for try await batch in input {
                try batch.forEachRecord(locatingFrom: seen) { record in try update(&value, record) }
                seen += batch.count
            }
            return value
        }
    }

    /// Ends the pipeline by discarding every record; the run's result is how many there were.
    @inlinable
    public func drain(name: String? = nil) -> RunnablePipeline<Int> {
        self.sink(kind: "drain", name: name) { input in
            var count = 0
            for try await batch in input {
                count += batch.count
            }
            return count
        }
    }

    /// A sink stage running `consume` on this pipeline's records.
    @usableFromInline
    func sink<Result: Sendable>(
        kind: String,
        name: String?,
        placement: Placement = .cooperative,
        heldBatches: Int = 1,
        consume: @escaping @Sendable (StageInput<Output>) async throws -> Result
    ) -> RunnablePipeline<Result> {
        self.sink(kind: kind, name: name, placement: placement) { _, _ in (heldBatches, consume) }
    }

    /// A sink stage whose body, and how many batches it holds at once, are made while the pipeline is built (a
    /// parallel sink's depend on its workers). Every sink is built here.
    func sink<Result: Sendable>(
        kind: String,
        name: String?,
        placement: Placement = .cooperative,
        prepare:
            @escaping @Sendable (PipelineGraph, StageRecorder) -> (
                heldBatches: Int,
                consume: @Sendable (StageInput<Output>) async throws -> Result
            )
    ) -> RunnablePipeline<Result> {
        RunnablePipeline { graph in
            let edge = graph.makeEdge(of: Output.self)
            self.attach(graph, [edge])
            let recorder = graph.makeRecorder(kind: kind, name: name)
            let (heldBatches, consume) = prepare(graph, recorder)
            let input = graph.makeInput(edge, recorder: recorder)
            let slot = ResultSlot<Result>()
            graph.addStage(recorder, heldBatches: heldBatches, isSink: true, placement: placement) {
                slot.store(try await consume(input))
            }
            return slot
        }
    }
}
