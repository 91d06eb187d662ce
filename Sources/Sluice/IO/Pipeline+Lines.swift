// Files in: `Pipeline.lines(from:)` and `Pipeline.lines(following:)`.
//
// Reading is two stages: `read` (blocking reads and gzip inflate, on an I/O thread of its own) and `lines` (framing,
// on the compute pool), so inflating and framing run on different cores.

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
    /// than what was read of it (truncated in place) — or the bytes before the point read changed (truncated and
    /// written again past that point before the reader looked) — it is read again from its start, and a warning
    /// is logged; a hole at its start (a writer that does not append goes on at its old offset) is skipped. A file
    /// not there yet is waited for (its directory must exist), with a warning.
    /// Several files are followed at once, their lines interleaving as they come (each file's own order is kept).
    ///
    /// The run ends only on a graceful shutdown (``ShutdownSignal``, SIGINT/SIGTERM in the CLI) or cancellation:
    /// every line read so far drains; a partial last line without `\n` is not a record.
    ///
    /// - Parameters:
    ///   - paths: Plain files. Standard input (`"-"`) and gzip files cannot be followed: the run fails with
    ///     ``FileError/Code/notFollowable`` naming the input. A file in a directory that does not exist fails the
    ///     run with ``FileError/Code/notFound``.
    ///   - options: Chunk size and the longest line accepted.
    public static func lines(following paths: [String], options: ReadOptions = ReadOptions()) -> Pipeline<Line> {
        let followed = paths.map { self.lines(reading: [$0], options: options, follows: true) }
        return followed.count == 1 ? followed[0] : .merge(followed)
    }

    private static func lines(reading inputs: [String], options: ReadOptions, follows: Bool) -> Pipeline<Line> {
        let chunks = self.chunks(reading: inputs, options: options, follows: follows)
        let framed: Pipeline<Line> = chunks.through(
            kind: "lines",
            name: "lines",
            heldBatches: 2,
            placement: .compute,
            drainsOnFailure: true,
            inputCapacity: options.readAhead
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
                        // The lines before the bad one go on first. ("-" is standard input here.)
                        failure = (error as? FileError)?.about(.input) ?? error
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
        return Pipeline(framing: FramedBytes(chunks: chunks, options: options), attach: framed.attach)
    }

    /// The decoded bytes of the files at `inputs`, one after the other: the `read` stage.
    private static func chunks(reading inputs: [String], options: ReadOptions, follows: Bool) -> Pipeline<ByteChunk> {
        Pipeline<ByteChunk> { graph, edges in
            let recorder = graph.makeRecorder(kind: StageReport.readKind, name: "read")
            let logger = graph.logger
            let onWait = graph.options.hooks.onInputWait.map { hook in { @Sendable in hook(recorder.name) } }
            let budget = graph.bytesInFlight
            let inotifyExhausted = graph.options.hooks.inotifyExhausted
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
                    inotifyExhausted: inotifyExhausted,
                    logger: logger
                )
                defer { reader.close() }
                try await waiter.wakingOnCancellation {
                    var counted = (stored: 0, decoded: 0)
                    while true {
                        let chunks: [ByteChunk]
                        do {
                            chunks = try reader.next()  // blocks: this stage has a thread of its own
                        } catch let error as FileError {
                            throw error.about(.input)  // "-" is standard input here
                        }
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
        .validating { try options.validate() }
    }

    /// Reads the lines of the file at `path` (`"-"` is standard input). See ``lines(from:options:)-swift.type.method``.
    public static func lines(from path: String, options: ReadOptions = ReadOptions()) -> Pipeline<Line> {
        self.lines(from: [path], options: options)
    }

    /// Reads the lines of bytes in memory, as if `chunks` were a file's bytes back to back: a line may span chunks,
    /// and the last one counts without a final `\n`.
    ///
    /// For writing out many lines made in memory (a result): they travel in the batches a file's lines travel in —
    /// runs of lines in a shared buffer, no array or reference count per line — so the writer copies each run at
    /// once, where ``Pipeline/from(_:name:)`` over an array of `Line`s hands it every line on its own.
    ///
    /// - Parameters:
    ///   - chunks: The bytes; iterated once per run, in the source's own task. Chunks of about a MiB or more keep
    ///     the cost per chunk out of sight.
    ///   - name: The stage's name in reports, and the lines' ``Line/sourcePath``; defaults to `"memory"`.
    public static func lines<Chunks: Sequence & Sendable>(
        inMemory chunks: Chunks,
        name: String? = nil
    ) -> Pipeline<Line> where Chunks.Element == [UInt8] {
        .source(kind: "source", name: name ?? "memory") { output in
            let path = name ?? "memory"
            var framer = LineFramer(maxRecordBytes: .max, limits: output.batchLimits)
            var offset = 0
            for bytes in chunks {
                try framer.frame(
                    ByteChunk(buffer: LineBuffer(bytes, budget: nil), path: path, offset: offset, endOfFile: false)
                )
                offset += bytes.count
                for lines in framer.takeBatches() {
                    try await output.send(Batch(columns: lines), releasing: 0)
                }
                if output.isShutdownRequested { return }
            }
            framer.finish()
            for lines in framer.takeBatches() {
                try await output.send(Batch(columns: lines), releasing: 0)
            }
        }
    }
}

extension Pipeline where Output == Line {
    /// Keeps the lines that contain `needle` as bytes (with `invert`, the lines that do not), like `LC_ALL=C grep -F`
    /// (`-vF`).
    ///
    /// The same as `filter { $0.contains(needle) != invert }`, without its cost per line: a closure handed to
    /// ``filter(name:on:onError:_:)`` gets a `Line` per line, which counts a reference to its buffer; here the
    /// match reads each buffer's bytes in place.
    ///
    /// - Parameters:
    ///   - name: The stage's name in reports; defaults to `"filter"`.
    ///   - placement: Where the stage runs; `.compute` (the default here) spreads batches over the compute pool.
    ///   - needle: The bytes to look for; an empty needle is in every line.
    ///   - invert: Keep the lines that do not contain `needle`.
    public func filter(
        name: String? = nil,
        on placement: Placement = .compute,
        containing needle: some Collection<UInt8>,
        invert: Bool = false
    ) -> Pipeline<Line> {
        let needle = Array(needle)
        return self.batchwise(kind: "filter", name: name, placement: placement, subsets: true) { batch, done in
            done = batch.count  // a match cannot fail
            return needle.withUnsafeBytes { needle in
                switch batch.storage {
                case .lines(let columns) where !needle.isEmpty:
                    return Batch(storage: .lines(columns.filtered(containing: needle, invert: invert)))
                case .lines(let columns):
                    return Batch(storage: .lines(columns.filteredBytes { Line.bytes($0, contain: needle) != invert }))
                case .rows:
                    return batch.filtered { $0.contains(needle) != invert }
                }
            }
        }
    }
}
