// Files out: `.write(to:)`. Writing gzip is three stages: `gzip-blocks` cuts the output into blocks at line
// boundaries, `deflate` compresses them in parallel (pigz's scheme), and `write` joins them into one file on an I/O
// thread of its own.

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
        if options.compresses(path) {
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
