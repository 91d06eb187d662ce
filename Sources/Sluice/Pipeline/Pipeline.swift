/// A description of a pipeline that produces `Output` records: sources, then stages, built fluently.
///
/// ```swift
/// let report = try await Pipeline
///     .from(1...1_000_000)
///     .map { $0 * 2 }
///     .filter { $0 % 3 == 0 }
///     .collect()
///     .run()
/// print(report.result.count, report.bottleneck?.name ?? "")
/// ```
///
/// A `Pipeline` is a value: building one starts nothing. Ending it with a sink (`forEach`, `collect`, `to(_:)`)
/// gives a ``RunnablePipeline``, and each call to its `run(_:)` builds fresh channels and runs every stage as its
/// own child task, joined by ``BoundedChannel``s of ``Batch``es.
public struct Pipeline<Output: Sendable>: Sendable {
    /// Adds this pipeline's stages to `graph`, sending the final records into `edges`.
    let attach: @Sendable (PipelineGraph, [OutputEdge<Output>]) -> Void

    /// For a file reader's lines and nothing after them (``lines(from:options:)-swift.type.method``): the bytes
    /// read and how to frame them, so that a writer that takes the lines unchanged can frame them itself, in one
    /// stage, without a record per line in between. Any stage added drops it.
    let framedBytes: FramedBytes?

    init(attach: @escaping @Sendable (PipelineGraph, [OutputEdge<Output>]) -> Void) {
        self.attach = attach
        self.framedBytes = nil
    }

    init(
        framing bytes: FramedBytes,
        attach: @escaping @Sendable (PipelineGraph, [OutputEdge<Output>]) -> Void
    ) {
        self.attach = attach
        self.framedBytes = bytes
    }
}

/// The decoded bytes of files, and the options to frame them into lines with (see ``Pipeline/framedBytes``).
final class FramedBytes: Sendable {
    let chunks: Pipeline<ByteChunk>
    let options: ReadOptions

    init(chunks: Pipeline<ByteChunk>, options: ReadOptions) {
        self.chunks = chunks
        self.options = options
    }
}

// MARK: - Sources

extension Pipeline {
    /// A pipeline that reads records from `source`.
    ///
    /// - Parameters:
    ///   - source: Where the records come from.
    ///   - name: The stage's name in reports; defaults to the source's ``Source/kind``.
    public static func from<S: Source>(_ source: S, name: String? = nil) -> Pipeline<Output>
    where S.Output == Output {
        .source(kind: source.kind, name: name) { output in
            output.endsOnShutdown = true
            try await output.withTimelyFlushes { try await source.run(into: output) }
        }
    }

    /// A pipeline that reads the elements of `sequence`, in order.
    ///
    /// - Parameters:
    ///   - sequence: The records. It is iterated once per run, in the source's own task.
    ///   - name: The stage's name in reports; defaults to `"source"`.
    @inlinable
    public static func from<S: Sequence & Sendable>(_ sequence: S, name: String? = nil) -> Pipeline<Output>
    where S.Element == Output {
        .source(kind: "source", name: name) { output in
            let limit = output.batchLimits.maxRecords
            var records: [Output] = []
            records.reserveCapacity(limit)
            for record in sequence {
                records.append(record)
                if records.count == limit {
                    try await output.send(Batch(records), releasing: 0)
                    records = []
                    records.reserveCapacity(limit)
                    if output.isShutdownRequested { break }
                }
            }
            try await output.send(Batch(records), releasing: 0)
        }
    }

    /// A pipeline that reads the elements of `sequence`, in order.
    ///
    /// Records are gathered into batches: a batch goes on when it is full or the sequence ends, not after a delay.
    ///
    /// - Parameters:
    ///   - sequence: The records. It is iterated once per run, in the source's own task.
    ///   - name: The stage's name in reports; defaults to `"source"`.
    @inlinable
    public static func from<S: AsyncSequence & Sendable>(_ sequence: S, name: String? = nil) -> Pipeline<Output>
    where S.Element == Output {
        .source(kind: "source", name: name) { output in
            try await AsyncSequenceReader.forward(sequence, to: output)
        }
    }

    /// A pipeline that reads every record of every pipeline in `pipelines` (fan-in).
    ///
    /// All of them run at once and share one channel into the next stage: each input's own order is kept, and
    /// the inputs interleave as they come. The merged stream ends when all of them have ended.
    public static func merge(_ pipelines: Pipeline<Output>...) -> Pipeline<Output> {
        self.merge(pipelines)
    }

    /// A pipeline that reads every record of every pipeline in `pipelines` (fan-in).
    ///
    /// All of them run at once and share one channel into the next stage: each input's own order is kept, and
    /// the inputs interleave as they come. The merged stream ends when all of them have ended.
    public static func merge(_ pipelines: [Pipeline<Output>]) -> Pipeline<Output> {
        Pipeline { graph, edges in
            for pipeline in pipelines {
                pipeline.attach(graph, edges)
            }
        }
    }

    /// A source stage running `produce`.
    @usableFromInline
    static func source(
        kind: String,
        name: String?,
        placement: Placement = .cooperative,
        produce: @escaping @Sendable (StageOutput<Output>) async throws -> Void
    ) -> Pipeline<Output> {
        Pipeline { graph, edges in
            let recorder = graph.makeRecorder(kind: kind, name: name)
            graph.addProducingStage(
                recorder,
                into: edges,
                heldBatches: 1,
                placement: placement,
                drainsOnFailure: true,
                body: produce
            )
        }
    }

    /// A stage that reads this pipeline's records and sends `Next` records.
    ///
    /// - Parameter heldBatches: How many batches the stage may hold at once while working (for the in-flight bound).
    @usableFromInline
    func through<Next: Sendable>(
        kind: String,
        name: String?,
        heldBatches: Int,
        placement: Placement = .cooperative,
        drainsOnFailure: Bool = false,
        body: @escaping @Sendable (StageInput<Output>, StageOutput<Next>) async throws -> Void
    ) -> Pipeline<Next> {
        self.through(
            kind: kind,
            name: name,
            heldBatches: heldBatches,
            placement: placement,
            drainsOnFailure: drainsOnFailure
        ) { _, _ in body }
    }

    /// A stage whose body is made while the pipeline is built, with access to the graph and its own recorder.
    ///
    /// - Parameter inputCapacity: The least number of batches its input channel holds (the run's
    ///   ``RunOptions/channelCapacity`` if that is more).
    func through<Next: Sendable>(
        kind: String,
        name: String?,
        heldBatches: Int,
        placement: Placement = .cooperative,
        drainsOnFailure: Bool = false,
        inputCapacity: Int? = nil,
        prepare:
            @escaping @Sendable (PipelineGraph, StageRecorder) -> (
                @Sendable (StageInput<Output>, StageOutput<Next>) async throws -> Void
            )
    ) -> Pipeline<Next> {
        self.through(
            kind: kind,
            name: name,
            placement: placement,
            drainsOnFailure: drainsOnFailure,
            inputCapacity: inputCapacity
        ) {
            graph,
            recorder in
            (heldBatches, prepare(graph, recorder))
        }
    }

    /// A stage whose body, and how many batches it holds at once, are made while the pipeline is built (a parallel
    /// stage's depend on its workers). Every stage that reads records and sends others is built here.
    func through<Next: Sendable>(
        kind: String,
        name: String?,
        placement: Placement = .cooperative,
        drainsOnFailure: Bool = false,
        inputCapacity: Int? = nil,
        prepare:
            @escaping @Sendable (PipelineGraph, StageRecorder) -> (
                heldBatches: Int,
                body: @Sendable (StageInput<Output>, StageOutput<Next>) async throws -> Void
            )
    ) -> Pipeline<Next> {
        Pipeline<Next> { graph, edges in
            let input = graph.makeEdge(of: Output.self, minimumCapacity: inputCapacity)
            self.attach(graph, [input])
            let recorder = graph.makeRecorder(kind: kind, name: name)
            let (heldBatches, body) = prepare(graph, recorder)
            let stageInput = graph.makeInput(input, recorder: recorder)
            graph.addProducingStage(
                recorder,
                into: edges,
                heldBatches: heldBatches,
                placement: placement,
                drainsOnFailure: drainsOnFailure
            ) { output in
                try await body(stageInput, output)
            }
        }
    }
}
