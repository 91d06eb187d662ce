// Files in and out: `Pipeline.lines(from:)` and `.write(to:)`.
//
// Reading is two stages on the compute pool: `read` (blocking reads, gzip inflate) and `lines` (framing), so
// inflating and framing run on different cores. Writing gzip is three: `gzip-blocks` cuts the output into blocks at
// line boundaries, `deflate` compresses them in parallel (pigz's scheme), and `write` joins them into one gzip
// member. Every blocking call and every zlib call runs on the pool.

extension Pipeline where Output == Line {
    /// Reads the lines of the files at `paths`, one file after the other (`"-"` is standard input).
    ///
    /// gzip files are recognised by their content, not their names, and may have several members (`cat a.gz b.gz`,
    /// pigz, bgzip). Each file's last line counts even without a final `\n`.
    ///
    /// If a file cannot be read or its gzip data is bad, every line read before the problem still flows through
    /// the pipeline; then the run fails with a ``FileError`` naming the file and the byte offset.
    ///
    /// - Parameters:
    ///   - paths: The files, in order. An empty list reads standard input.
    ///   - options: Chunk size and the longest line accepted.
    public static func lines(from paths: [String], options: ReadOptions = ReadOptions()) -> Pipeline<Line> {
        self.lines(reading: paths.isEmpty ? ["-"] : paths, options: options, follows: false)
    }

    /// Reads the lines of the plain files at `paths` and keeps reading what is appended to them, like `tail -F`.
    ///
    /// Each file is read from its start to its end, then followed: lines appended later flow on as they are
    /// written (within ``RunOptions/maxDelay``). When a path comes to name another file (a log rotated by rename
    /// and create), the old file is read to its end, then the new one from its start; when a file becomes shorter
    /// than what was read of it (truncated in place), it is read again from its start, and a warning is logged.
    /// Several files are followed at once, their lines interleaving as they come (each file's own order is kept).
    ///
    /// The run ends only on a graceful shutdown (``ShutdownSignal``, SIGINT/SIGTERM in the CLI) or cancellation:
    /// every line read so far drains; a partial last line without `\n` is not a record.
    ///
    /// - Parameters:
    ///   - paths: Plain files. Standard input (`"-"`) and gzip files cannot be followed: the run fails with
    ///     ``FileError/Code/notFollowable`` naming the input. A file missing at the start fails the run with
    ///     ``FileError/Code/notFound``.
    ///   - options: Chunk size and the longest line accepted.
    public static func lines(following paths: [String], options: ReadOptions = ReadOptions()) -> Pipeline<Line> {
        .merge(paths.map { self.lines(reading: [$0], options: options, follows: true) })
    }

    private static func lines(reading inputs: [String], options: ReadOptions, follows: Bool) -> Pipeline<Line> {
        let chunks = Pipeline<ByteChunk> { graph, edges in
            let recorder = graph.makeRecorder(kind: "read", name: "read")
            let logger = graph.logger
            let onWait = graph.options.hooks.onInputWait.map { hook in { @Sendable in hook(recorder.name) } }
            let budget = graph.bytesInFlight
            graph.addReaderBuffers(options)
            // Reads wait on pipes and followed files: the stage has an I/O thread of its own.
            graph.addProducingStage(recorder, into: edges, heldBatches: 1, placement: .io, drainsOnFailure: true) {
                output in
                let waiter = try InputWaiter(shutdown: output.shutdown, path: inputs[0], onWait: onWait)
                defer { waiter.close() }
                let reader = FileChunkReader(
                    paths: inputs,
                    chunkSize: options.chunkSize,
                    waiter: waiter,
                    follows: follows,
                    budget: budget,
                    inflate: (try? options.codec.inflater()) ?? .zlib,  // an impossible codec fails the run first
                    logger: logger
                )
                defer { reader.close() }
                try await waiter.wakingOnCancellation {
                    var counted = (stored: 0, decoded: 0)
                    while true {
                        let chunks = try reader.next()  // blocks: this stage has a thread of its own
                        output.countBytes(
                            in: reader.totalStored - counted.stored,
                            out: reader.totalDecoded - counted.decoded
                        )
                        counted = (reader.totalStored, reader.totalDecoded)
                        if chunks.isEmpty { break }
                        // One batch per read: slow input (a pipe) is passed on as it arrives.
                        try await output.send(Batch(chunks))
                    }
                }
            }
        }
        return chunks.through(
            kind: "lines",
            name: "lines",
            heldBatches: 2,
            placement: .compute,
            drainsOnFailure: true
        ) { graph, _ in
            let budget = graph.bytesInFlight
            return { input, output in
                var framer = LineFramer(
                    maxRecordBytes: options.maxRecordBytes,
                    limits: output.batchLimits,
                    budget: budget
                )
                var iterator = input.makeAsyncIterator()
                while let batch = try await iterator.next() {
                    var failure: (any Error)?
                    do {
                        for chunk in batch {
                            try framer.frame(chunk)
                        }
                    } catch {
                        failure = error  // the lines before the bad one go on first
                    }
                    // Cut at the limits already: sent as they are, the last one releasing the input.
                    let ready = framer.takeBatches()
                    for (index, lines) in ready.enumerated() {
                        let last = index == ready.count - 1
                        try await output.send(
                            Batch(columns: lines),
                            releasing: last ? iterator.takeHeld() : 0,
                            cut: true
                        )
                    }
                    if ready.isEmpty { try await output.send(Batch([]), releasing: iterator.takeHeld()) }
                    if let failure { throw failure }
                }
            }
        }
        .validating { try options.validate() }
    }

    /// Reads the lines of the file at `path` (`"-"` is standard input). See ``lines(from:options:)-swift.type.method``.
    public static func lines(from path: String, options: ReadOptions = ReadOptions()) -> Pipeline<Line> {
        self.lines(from: [path], options: options)
    }

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
        if options.compresses(path) {
            // An impossible codec fails the run in `validating` below; the reference backend stands in until then.
            let (backend, blockSize) = (try? options.deflateSettings()) ?? (.zlib, 128 * 1024)
            let compressor = GzipBlockCompressor(level: Int32(options.gzipLevel), backend: backend)
            written = self.gzipBlocks(size: blockSize, dictionaries: !backend.writesMembers)
                .parallelMap(name: "deflate", concurrency: options.compressionConcurrency, ordered: true) {
                    try compressor.compress($0)
                }
                .sink(kind: "write", name: "write", placement: .io) { input in
                    defer { compressor.close() }
                    try await GzipFileSink.write(
                        input,
                        to: path,
                        members: backend.writesMembers,
                        synchronize: options.synchronize
                    )
                }
        } else {
            written = self.sink(kind: "write", name: "write", placement: .io) { input in
                try await LineFileSink.write(input, to: path, synchronize: options.synchronize)
            }
        }
        return written.validating { try options.validate() }
    }

    /// Cuts the lines, each with its `\n`, into blocks of at least `size` bytes ending at a line boundary.
    ///
    /// A partial block waits for more lines while they keep coming; once its input is idle it goes on when its
    /// oldest line has waited ``RunOptions/maxDelay`` (each block ends with a sync flush, so a short one costs a
    /// little compression, never correctness). Under load blocks fill long before that.
    func gzipBlocks(size: Int, dictionaries: Bool = true) -> Pipeline<GzipBlock> {
        self.through(kind: "gzip-blocks", name: "gzip-blocks", heldBatches: 2) { graph, _ in
            graph.addBlockBuffers(blockSize: size)
            let budget = graph.bytesInFlight
            return { input, output in
                var builder = GzipBlockBuilder(size: size, dictionaries: dictionaries, budget: budget)
                do {
                    try await input.withFlushTimer { timer in
                        var flush = FlushSchedule(input)
                        var iterator = input.makeAsyncIterator()
                        while true {
                            switch try await iterator.next(orUntil: flush.deadline, timer: timer) {
                            case .end:
                                return
                            case .deadline:
                                if let block = builder.finish() { try await output.send(Batch([block])) }
                                flush.released()
                            case .batch(let batch):
                                flush.holding()
                                var blocks: [GzipBlock] = []  // at most a batch's bytes: a few blocks
                                batch.forEachRun { run, terminated in
                                    builder.append(run, terminated: terminated, into: &blocks)
                                }
                                for block in blocks {
                                    // A batch of its own per block: each is one job for the compressors.
                                    try await output.send(Batch([block]))
                                }
                                if !blocks.isEmpty {
                                    flush.released()
                                    flush.holding()
                                }
                                if builder.isEmpty {
                                    flush.released()
                                } else if flush.isDue, let block = builder.finish() {
                                    try await output.send(Batch([block]))
                                    flush.released()
                                }
                            }
                        }
                    }
                } catch let failure as UpstreamFailure {
                    if let block = builder.finish() { try await output.send(Batch([block])) }
                    throw failure
                }
                if let block = builder.finish() { try await output.send(Batch([block])) }
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

extension Pipeline {
    /// This pipeline, failing the run before it starts if `check` throws.
    func validating(_ check: @escaping @Sendable () throws -> Void) -> Pipeline<Output> {
        Pipeline { graph, edges in
            do { try check() } catch { graph.fail(error) }
            self.attach(graph, edges)
        }
    }
}

extension RunnablePipeline {
    /// This pipeline, failing the run before it starts if `check` throws.
    func validating(_ check: @escaping @Sendable () throws -> Void) -> RunnablePipeline<Result> {
        RunnablePipeline { graph in
            do { try check() } catch { graph.fail(error) }
            return self.build(graph)
        }
    }
}

/// Writes lines to a plain file.
enum LineFileSink {
    static func write(_ input: StageInput<Line>, to path: String, synchronize: Bool) async throws {
        let writer = try BufferedFileWriter(path: path)  // blocks: this stage has a thread of its own
        var iterator = input.makeAsyncIterator()
        var flush = FlushSchedule(input)
        do {
            while true {
                if iterator.isIdle && writer.hasBuffered {
                    // Nothing more is coming for now: what was written so far goes out, not at end of input.
                    try writer.flush()
                }
                guard let batch = try await iterator.next() else { break }
                flush.holding()
                var bytes = 0
                try batch.forEachRun { run, terminated in
                    try writer.write(raw: run, newline: !terminated)
                    bytes += run.count + (terminated ? 0 : 1)
                }
                input.countBytes(in: bytes, out: bytes)
                if flush.isDue {
                    try writer.flush()  // under a steady trickle the input is never idle: bound the wait anyway
                }
                if !writer.hasBuffered { flush.released() }
            }
        } catch {
            // Keep every whole line received so far.
            try? writer.close(synchronize: false)
            throw error
        }
        try writer.close(synchronize: synchronize)
    }
}

/// Joins compressed blocks into the gzip file: header, blocks, an empty final block, CRC32 and length — or, for
/// blocks that are whole gzip members (libdeflate's), the members one after the other.
///
/// Each block ends with a sync flush (or a member's end), so whenever the input is idle the writer hands what it has
/// to the system: a reader of the growing file (`zcat`) then sees every line written so far.
enum GzipFileSink {
    static func write(
        _ input: StageInput<CompressedBlock>,
        to path: String,
        members: Bool,
        synchronize: Bool
    ) async throws {
        let file = try GzipFile(path: path, members: members)  // blocks: this stage has a thread of its own
        var iterator = input.makeAsyncIterator()
        do {
            input.countBytes(in: 0, out: try file.begin())
            while true {
                if iterator.isIdle { try file.flush() }
                guard let batch = try await iterator.next() else { break }
                var plain = 0
                var stored = 0
                for block in batch {
                    try file.append(block)
                    plain += block.length
                    stored += block.bytes.count
                }
                input.countBytes(in: plain, out: stored)
            }
        } catch {
            // Whatever happened upstream, the file ends as valid gzip holding the blocks written.
            if let closing = try? file.finish(synchronize: false) { input.countBytes(in: 0, out: closing) }
            throw error
        }
        input.countBytes(in: 0, out: try file.finish(synchronize: synchronize))
    }
}

/// The gzip file ``GzipFileSink`` writes: its framing around the blocks, and their combined CRC32 and length.
final class GzipFile {
    private let writer: BufferedFileWriter
    private let members: Bool
    private var crc: UInt32 = 0
    private var length = 0
    private var wroteBlock = false

    init(path: String, members: Bool) throws {
        self.writer = try BufferedFileWriter(path: path)
        self.members = members
    }

    /// Writes what comes before the blocks; returns its size.
    func begin() throws -> Int {
        guard !self.members else { return 0 }
        try self.writer.write(GzipBlockCompressor.header)
        return GzipBlockCompressor.header.count
    }

    func append(_ block: CompressedBlock) throws {
        try self.writer.write(block.bytes)
        self.wroteBlock = true
        guard !self.members else { return }  // a member carries its own CRC32 and length
        self.crc = GzipBlockCompressor.combine(self.crc, block.crc, secondLength: block.length)
        self.length += block.length
    }

    /// Hands what is buffered to the system.
    func flush() throws {
        if self.writer.hasBuffered { try self.writer.flush() }
    }

    /// Writes what comes after the blocks and closes the file; returns the size of what it wrote.
    func finish(synchronize: Bool) throws -> Int {
        var closing: [UInt8] = []
        if !self.members {
            closing = GzipBlockCompressor.finalBlock + GzipBlockCompressor.trailer(crc: self.crc, length: self.length)
        } else if !self.wroteBlock {
            // No input: one empty member, so the file is still gzip.
            closing =
                GzipBlockCompressor.header + GzipBlockCompressor.finalBlock
                + GzipBlockCompressor.trailer(crc: 0, length: 0)
        }
        try self.writer.write(closing)
        try self.writer.close(synchronize: synchronize)
        return closing.count
    }
}
