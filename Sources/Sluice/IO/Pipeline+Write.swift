// Files out: `.write(to:)`. Writing gzip is three stages: `gzip-blocks` cuts the output into blocks at line
// boundaries, `deflate` compresses them in parallel (pigz's scheme), and `write` joins them into one file on an I/O
// thread of its own. A file's lines written unchanged skip `gzip-blocks`: their `lines` stage frames them straight
// into blocks.

extension Pipeline where Output == Line {
    /// Ends the pipeline by writing every line, followed by `\n`, to the file at `path` (`"-"` is standard output).
    ///
    /// A path ending in `.gz` is written as gzip (see ``WriteOptions/compression``), compressed in parallel on the
    /// compute pool, as pigz does, and flushed only at the end. The file is always a complete, valid gzip file:
    /// if the run fails or is cancelled, what was written so far — whole lines — is closed properly.
    ///
    /// - Parameters:
    ///   - path: The file to create or replace.
    ///   - options: Compression, level, and whether to `fsync`.
    public func write(to path: String, options: WriteOptions = WriteOptions()) -> RunnablePipeline<Void> {
        let written: RunnablePipeline<Void>
        let compresses = options.compresses(path)
        if compresses {
            // An impossible codec fails the run in `validating` below; the reference backend stands in until then.
            let (backend, blockSize) = (try? options.deflateSettings()) ?? (.zlib, DeflateBackend.zlib.defaultBlockSize)
            let compressor = GzipBlockCompressor(level: Int32(options.gzipLevel), backend: backend)
            written = self.gzipBlocks(size: blockSize, dictionaries: !backend.writesMembers)
                .parallelMap(name: "deflate", concurrency: options.compressionConcurrency, ordered: true) {
                    try compressor.compress($0)
                }
                .sink(kind: StageReport.writeKind, name: "write", placement: .io) { input in
                    defer { compressor.close() }
                    try await GzipFileSink.write(
                        input,
                        to: path,
                        members: backend.writesMembers,
                        synchronize: options.synchronize
                    )
                }
        } else {
            written = self.sink(kind: StageReport.writeKind, name: "write", placement: .io) { input in
                try await LineFileSink.write(input, to: path, synchronize: options.synchronize)
            }
        }
        return written.validating { try options.validate(compressing: compresses) }
    }

    /// Cuts the lines, each with its `\n`, into blocks of at least `size` bytes ending at a line boundary.
    ///
    /// A partial block waits for more lines while they keep coming; once its input is idle it goes on when its
    /// oldest line has waited ``RunOptions/maxDelay`` (each block ends with a sync flush, so a short one costs a
    /// little compression, never correctness). Under load blocks fill long before that.
    ///
    /// The lines of a file reader with nothing in between (``Pipeline/framedBytes``) are framed here, from the
    /// bytes read: the `lines` stage then hands on blocks, not a record per line.
    func gzipBlocks(size: Int, dictionaries: Bool = true) -> Pipeline<GzipBlock> {
        if let framed = self.framedBytes {
            let options = framed.options
            return framed.chunks.gatheringBlocks(
                kind: "lines",
                name: "lines",
                size: size,
                placement: .compute,
                drainsOnFailure: true,  // a bad line: the lines before it are written, then the run fails
                inputCapacity: options.readAhead
            ) { budget in
                LineBlockFramer(
                    maxRecordBytes: options.maxRecordBytes,
                    builder: GzipBlockBuilder(size: size, dictionaries: dictionaries, budget: budget)
                )
            }
        }
        return self.gatheringBlocks(kind: "gzip-blocks", name: "gzip-blocks", size: size) { budget in
            GzipBlockBuilder(size: size, dictionaries: dictionaries, budget: budget)
        }
    }
}

/// What gathers a stage's records into gzip blocks (see ``Pipeline/gzipBlocks(size:dictionaries:)``).
protocol GzipBlockGatherer: SendableMetatype {
    associatedtype Record: Sendable

    /// Adds the records of `batch`, appending the blocks completed to `blocks`. If it fails, the records before the
    /// bad one are added.
    mutating func add(_ batch: Batch<Record>, into blocks: inout [GzipBlock]) throws

    /// How many records the run report counts what was added so far as (lines).
    var recordCount: Int { get }

    /// Whether nothing waits for a block.
    var isEmpty: Bool { get }

    /// The last, partial block, if any.
    mutating func finish() -> GzipBlock?
}

extension GzipBlockBuilder: GzipBlockGatherer {
    mutating func add(_ batch: Batch<Line>, into blocks: inout [GzipBlock]) {
        batch.forEachRun { run, terminated in
            self.append(run, terminated: terminated, into: &blocks)
        }
        self.lineCount += batch.count
    }

    var recordCount: Int { self.lineCount }
}

extension LineBlockFramer: GzipBlockGatherer {
    mutating func add(_ batch: Batch<ByteChunk>, into blocks: inout [GzipBlock]) throws {
        for chunk in batch {
            do {
                try self.frame(chunk, into: &blocks)
            } catch {
                throw error.about(.input)  // "-" is standard input here
            }
        }
    }

    var recordCount: Int { self.lineCount }
}

extension Pipeline {
    /// A stage that gathers this pipeline's records into gzip blocks with what `makeGatherer` makes (given the run's
    /// budget of bytes in flight), and sends each block on as it completes — or, once its input is idle, the partial
    /// block when its oldest record has waited ``RunOptions/maxDelay``.
    ///
    /// If the gatherer fails, or the input does, the records gathered before the failure go on first.
    fileprivate func gatheringBlocks<Gatherer: GzipBlockGatherer>(
        kind: String,
        name: String,
        size: Int,
        placement: Placement = .cooperative,
        drainsOnFailure: Bool = false,
        inputCapacity: Int? = nil,
        makeGatherer: @escaping @Sendable (ByteBudget?) -> Gatherer
    ) -> Pipeline<GzipBlock> where Gatherer.Record == Output {
        self.through(
            kind: kind,
            name: name,
            heldBatches: 2,
            placement: placement,
            drainsOnFailure: drainsOnFailure,
            inputCapacity: inputCapacity
        ) { graph, _ in
            graph.addBlockBuffers(blockSize: size)
            let budget = graph.bytesInFlight
            return { input, output in
                var gatherer = makeGatherer(budget)
                var reported = 0  // records reported with the blocks sent so far
                func send(_ block: GzipBlock) async throws {
                    // A batch of its own per block: each is one job for the compressors. It reports the records
                    // added since the last one.
                    let records = gatherer.recordCount
                    try await output.send(Batch([block]), releasing: 0, records: records - reported)
                    reported = records
                }
                do {
                    try await input.withFlushTimer { timer in
                        var flush = FlushSchedule(input)
                        var iterator = input.makeAsyncIterator()
                        while true {
                            switch try await iterator.next(orUntil: flush.deadline, timer: timer) {
                            case .end:
                                return
                            case .deadline:
                                if let block = gatherer.finish() { try await send(block) }
                                flush.released()
                            case .batch(let batch):
                                flush.holding()
                                var blocks: [GzipBlock] = []  // at most a batch's bytes: a few blocks
                                var failure: (any Error)?
                                do {
                                    try gatherer.add(batch, into: &blocks)
                                } catch {
                                    failure = error  // the records before the bad one go on first
                                }
                                for block in blocks {
                                    try await send(block)
                                }
                                if let failure { throw failure }
                                if !blocks.isEmpty {
                                    flush.released()
                                    flush.holding()
                                }
                                if gatherer.isEmpty {
                                    flush.released()
                                } else if flush.isDue, let block = gatherer.finish() {
                                    try await send(block)
                                    flush.released()
                                }
                            }
                        }
                    }
                } catch let error where error is UpstreamFailure || error is FileError {
                    // The input, or the gatherer, failed: what was gathered before goes on first.
                    if let block = gatherer.finish() { try await send(block) }
                    throw error
                }
                if let block = gatherer.finish() { try await send(block) }
            }
        }
    }
}

extension Pipeline where Output == String {
    /// Ends the pipeline by writing every string, followed by `\n`, to the file at `path`. See
    /// ``Pipeline/write(to:options:)``.
    public func write(to path: String, options: WriteOptions = WriteOptions()) -> RunnablePipeline<Void> {
        self.map(name: "encode") { Line($0) }.write(to: path, options: options)
    }
}
