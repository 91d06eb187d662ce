import CoreMetrics
import Logging

/// The stages and channels of one run, assembled before anything starts.
///
/// Building happens synchronously, in the task that calls `run()`: every channel and every producer count exists
/// before the first stage starts, so no channel can finish early because a producer had not registered yet.
final class PipelineGraph {
    struct Node: Sendable {
        let recorder: StageRecorder
        let isSink: Bool
        /// The pool the stage's task prefers, or `nil` for the cooperative pool.
        let executor: ComputePool?
        let body: @Sendable () async throws -> Void
    }

    let options: RunOptions
    let flight = PeakCounter()
    /// Bytes of data buffers in flight — decoded input and the lines framed from it, gzip blocks — and the budget
    /// readers wait on.
    let bytesInFlight: ByteBudget
    /// What can be in flight beyond the budget (a reader's last step, a line being assembled, a gzip block being
    /// built): see ``bytesInFlightBound``.
    private var bytesPastBudget = 0
    private var readers = 0
    /// For a run without readers (gzip output of records made in Swift): the most bytes one batch can reference,
    /// and the bytes stages keep outside batches.
    private var bytesPerBatch = 0
    private var bytesOutsideBatches = 0
    /// The longest line a reader of this run accepts.
    private var maxRecordBytes = 0
    /// The run's clock, opened once.
    let clock: RunClock
    /// Raised to drain the run: the caller's signal, or one of the run's own (for service-lifecycle).
    let shutdown: ShutdownSignal
    private(set) var nodes: [Node] = []
    /// The promised bound on records in flight: channel capacities plus what each stage may hold.
    private(set) var recordsInFlightBound = 0
    private var namesInUse: [String: Int] = [:]
    private var taps: [Int: Any] = [:]
    private var nextTapID = 0
    /// The threads of the run's blocking I/O stages, joined when it ends.
    let ioThreads = IOThreads()
    /// A compute pool this run created, to shut down when it ends.
    private(set) var ownedPool: ComputePool?
    /// The first problem found while building (a bad stage setting, a pool that could not start).
    private(set) var buildError: (any Error)?
    /// Dead-letter destinations used by the run (each once), opened when it starts and closed when it ends.
    private(set) var deadLetters: [DeadLetters] = []

    /// - Precondition: `options` were validated.
    /// The run's logger, with the pipeline's name as metadata.
    let logger: Logger
    let metricsFactory: any MetricsFactory

    init(options: RunOptions) {
        self.options = options
        self.bytesInFlight = ByteBudget(
            limit: options.maxBytesInFlight,
            stallLimit: options.hooks.byteBudgetStallLimit ?? ByteBudget.stallLimit
        )
        self.shutdown = options.shutdown ?? ShutdownSignal()
        self.clock = RunClock(options.clock)
        var logger = options.logger
        logger[metadataKey: "pipeline"] = "\(options.name)"
        self.logger = logger
        self.metricsFactory = options.metricsFactory ?? MetricsSystem.factory
    }

    var sinkCount: Int { self.nodes.count { $0.isSink } }

    /// The promised bound on ``bytesInFlight``, from the options alone.
    ///
    /// With readers: the budget, plus what can come on top of it — each reader's last step before it waits (two
    /// decoded chunks) and a line assembled from several chunks (`maxRecordBytes`); each gzip writer's block being
    /// built and the batch it copies from. Without readers, data comes only from records made in Swift, bounded by
    /// count: every batch that can be in flight times the most bytes one can reference, plus the builders' blocks.
    /// 0 when the run moves no data buffers.
    var bytesInFlightBound: Int {
        if self.readers > 0 {
            return self.options.maxBytesInFlight + self.bytesPastBudget
        }
        guard self.bytesPerBatch > 0 else { return 0 }
        let batches = self.recordsInFlightBound / max(self.options.batch.maxRecords, 1)
        return batches * self.bytesPerBatch + self.bytesOutsideBatches
    }

    /// Registers a file reader (see ``bytesInFlightBound``).
    func addReaderBuffers(_ read: ReadOptions) {
        self.readers += 1
        self.bytesPastBudget += 2 * read.chunkSize + read.maxRecordBytes
        self.maxRecordBytes = max(self.maxRecordBytes, read.maxRecordBytes)
    }

    /// Registers a gzip writer: a block is `blockSize` bytes plus the line that crosses it, with its dictionary; its
    /// builder keeps one block and copies from one batch (see ``bytesInFlightBound``).
    func addBlockBuffers(blockSize: Int) {
        let line = max(self.maxRecordBytes, self.options.batch.maxBytes)
        let block = blockSize + line + GzipBlockCompressor.dictionarySize
        self.bytesPastBudget += block + line
        self.bytesPerBatch = max(self.bytesPerBatch, block)
        self.bytesOutsideBatches += block
    }

    /// A new channel between two stages, sized by the run options — or deeper, if the consuming stage asks for at
    /// least `minimumCapacity` batches.
    func makeEdge<Record: Sendable>(
        of _: Record.Type = Record.self,
        minimumCapacity: Int? = nil
    ) -> OutputEdge<Record> {
        let capacity = max(self.options.channelCapacity, minimumCapacity ?? 0)
        self.recordsInFlightBound += capacity * self.options.batch.maxRecords
        do {
            return OutputEdge(channel: try BoundedChannel(capacity: capacity))
        } catch {
            preconditionFailure("run options are validated before the graph is built: \(error)")
        }
    }

    /// The input of a stage that reads `edge`.
    func makeInput<Record: Sendable>(_ edge: OutputEdge<Record>, recorder: StageRecorder) -> StageInput<Record> {
        let storage = edge.channel.storage
        recorder.attachInputQueue { storage.depth }
        return StageInput(
            channel: edge.channel,
            recorder: recorder,
            flight: self.flight,
            clock: self.clock,
            maxDelay: self.options.maxDelay
        )
    }

    /// A recorder for a new stage, named `name` if given, else after its kind; names are made unique with `#n`.
    func makeRecorder(kind: String, name: String?) -> StageRecorder {
        let base = name ?? kind
        let uses = self.namesInUse[base, default: 0] + 1
        self.namesInUse[base] = uses
        let name = uses == 1 ? base : "\(base)#\(uses)"
        let metrics = StageMetrics(pipeline: self.options.name, stage: name, factory: self.metricsFactory)
        return StageRecorder(name: name, kind: kind, metrics: metrics)
    }

    /// Records a problem found while building; the run throws it before starting anything.
    func fail(_ error: any Error) {
        if self.buildError == nil {
            self.buildError = error
        }
    }

    /// The pool a stage placed at `placement` runs on, or `nil` for the cooperative pool.
    ///
    /// - Parameter stage: The stage's name, for the name of an I/O thread.
    func executor(for placement: Placement, stage: String = "stage") -> ComputePool? {
        switch placement.base {
        case .cooperative: return nil
        case .pool(let pool): return pool
        case .compute: return self.computePool()
        case .io:
            do {
                return try self.ioThreads.makeThread(for: stage)
            } catch {
                self.fail(error)
                return nil
            }
        }
    }

    /// Where a parallel stage's workers run, and how many there are: `concurrency`, or the pool's thread count.
    /// A count below 1 fails the build.
    func parallelWorkers(
        _ concurrency: Int?,
        placement: Placement,
        stage: String
    ) -> (pool: ComputePool?, workers: Int) {
        let pool = self.executor(for: placement)
        let workers = concurrency ?? pool?.threadCount ?? ComputePool.activeProcessorCount
        do {
            try ConfigurationError.requirePositive(workers, "\(stage).concurrency")
        } catch {
            self.fail(error)
        }
        return (pool, workers)
    }

    /// The run's compute pool: the caller's, or one created for this run on first use.
    func computePool() -> ComputePool? {
        if let pool = self.options.computePool ?? self.ownedPool {
            return pool
        }
        do {
            let threads = self.options.computeThreads ?? ComputePool.activeProcessorCount
            let pool = try ComputePool(threads: threads, name: "sluice-run", priority: .yielding)
            self.ownedPool = pool
            self.options.hooks.onComputePoolCreated?(pool)
            return pool
        } catch {
            self.fail(error)
            return nil
        }
    }

    /// The guard that applies `policy` and `timeout` to the records of the stage `recorder` records.
    func makeRecordGuard(policy: ErrorPolicy, timeout: Duration?, recorder: StageRecorder) -> RecordGuard {
        var pool: ComputePool?
        var destination: DeadLetters?
        if case .deadLetter(let letters) = policy.base {
            destination = letters
        } else if case .retry(_, .deadLetter(let letters)) = policy.base {
            destination = letters
        }
        if let destination {
            // Opened when the run starts, once however many stages send to it.
            if !self.deadLetters.contains(where: { $0 === destination }) {
                self.deadLetters.append(destination)
            }
            pool = self.computePool()
        }
        if let timeout, timeout <= .zero {
            self.fail(
                ConfigurationError(setting: "\(recorder.name).timeout", value: 0, requirement: "must be positive")
            )
        }
        if case .retry(let retry, _) = policy.base {
            do {
                try ConfigurationError.requirePositive(retry.maxAttempts, "\(recorder.name).retry.maxAttempts")
            } catch {
                self.fail(error)
            }
        }
        return RecordGuard(
            policy: policy.base,
            stage: recorder.name,
            clock: self.options.clock,
            timeout: timeout,
            recorder: recorder,
            pool: pool,
            logger: self.logger
        )
    }

    /// Adds a stage that sends into `edges`, registering it as one of their producers.
    ///
    /// The stage's output is flushed when `body` returns, and its edges are told it is done. If every consumer
    /// went away, the stage ends normally: nobody needs what it would produce.
    ///
    /// An input stage (`drainsOnFailure`: a source, the line framer) that fails does not abort the run: it ends its
    /// output with the failure, so every record it read before flows on first, and the sink reports it. Any stage
    /// passes such a failure from its input on the same way.
    func addProducingStage<Record: Sendable>(
        _ recorder: StageRecorder,
        into edges: [OutputEdge<Record>],
        heldBatches: Int,
        placement: Placement = .cooperative,
        drainsOnFailure: Bool = false,
        body: @escaping @Sendable (StageOutput<Record>) async throws -> Void
    ) {
        for edge in edges {
            edge.registerProducer()
        }
        let flight = self.flight
        let options = self.options
        let shutdown = self.shutdown
        let ioThreads = self.ioThreads
        let clock = self.clock
        self.addStage(recorder, heldBatches: heldBatches, isSink: false, placement: placement) {
            let output = StageOutput(
                edges: edges,
                recorder: recorder,
                flight: flight,
                options: options,
                shutdown: shutdown,
                ioThreads: ioThreads,
                clock: clock
            )
            do {
                try await body(output)
                try await output.flush()
            } catch  where output.downstreamGone {
                // Every consumer stopped early and successfully (a sink that needed only some records).
            } catch is SourceEndedOnShutdown {
                try await output.flush()  // a user's source emitted after a shutdown: its end of input
            } catch let failure as UpstreamFailure {
                try await output.flush()
                output.fail(failure)
                return
            } catch  where drainsOnFailure && !(error is CancellationError) {
                try await output.flush()
                output.fail(UpstreamFailure(stage: recorder.name, underlying: error))
                return
            }
            output.finish()
        }
    }

    func addStage(
        _ recorder: StageRecorder,
        heldBatches: Int,
        isSink: Bool,
        placement: Placement = .cooperative,
        body: @escaping @Sendable () async throws -> Void
    ) {
        self.recordsInFlightBound += heldBatches * self.options.batch.maxRecords
        let executor = self.executor(for: placement, stage: recorder.name)
        self.nodes.append(Node(recorder: recorder, isSink: isSink, executor: executor, body: body))
    }

    // MARK: Taps: how a tee learns which edges its branch reads from

    func makeTap() -> Int {
        defer { self.nextTapID += 1 }
        return self.nextTapID
    }

    func addToTap<Record: Sendable>(_ tap: Int, _ edges: [OutputEdge<Record>]) {
        self.taps[tap] = self.takeTap(tap, of: Record.self) + edges
    }

    func takeTap<Record: Sendable>(_ tap: Int, of _: Record.Type) -> [OutputEdge<Record>] {
        guard let edges = self.taps.removeValue(forKey: tap) else { return [] }
        return edges as! [OutputEdge<Record>]
    }
}
