import Testing

@testable import Sluice

/// A file's lines written unchanged to gzip (`lines(from:)` then `write(to:)`, `sluice run cat … -o out.gz`): the
/// `lines` stage frames them straight into gzip blocks. Every check compares with the same lines passed through a
/// stage first, which goes the general way (a record per line, then `gzip-blocks`).
@Suite("A file's lines to gzip", .timeLimit(.minutes(1)))
struct FileToGzipTests {
    /// Inputs of every shape a line framer must get right: lines spanning chunks, an empty file, a file without a
    /// final `\n`, a multi-member gzip file, a file of empty lines, a line longer than a block, CRLF and bytes that
    /// are not UTF-8 (the sample text has both).
    static func inputs(
        in directory: borrowing TemporaryDirectory
    ) async throws -> (paths: [String], text: [UInt8], lines: Int) {
        var files: [(name: String, bytes: [UInt8])] = [
            ("a.txt", sampleText(lines: 2_000)),
            ("empty.txt", []),
            ("unterminated.txt", Array("no newline at the end".utf8)),
            ("newlines.txt", Array("\n\n\n".utf8)),
            ("long.txt", Array(repeating: UInt8(ascii: "x"), count: 5_000) + Array("\nshort\n".utf8)),
        ]
        for (name, bytes) in files {
            try writeFile(directory.file(name), bytes)
        }
        let (first, second) = (sampleText(lines: 300, seed: 2), sampleText(lines: 200, seed: 3))
        try writeFile(directory.file("m1.txt"), first)
        try writeFile(directory.file("m2.txt"), second)
        try await Shell.check(
            "(gzip -c '\(directory.file("m1.txt"))'; gzip -c '\(directory.file("m2.txt"))') > '\(directory.file("m.gz"))'"
        )
        files.insert(("m.gz", first + second), at: 2)
        var text: [UInt8] = []
        var lines = 0
        for (_, bytes) in files {
            text += bytes
            if let last = bytes.last, last != 0x0A { text.append(0x0A) }
            lines += splitLines(bytes).count
        }
        return (files.map { directory.file($0.name) }, text, lines)
    }

    @Test(arguments: [(7, Codec.zlib, 6), (4_096, .automatic, 6), (256 * 1024, .isal, 1), (1_000, .automatic, 1)])
    func theSameFile_asThroughAStage(chunkSize: Int, codec: Codec, level: Int) async throws {
        let directory = TemporaryDirectory()
        let (paths, text, lines) = try await Self.inputs(in: directory)
        let read = ReadOptions(chunkSize: chunkSize)
        let write = WriteOptions(gzipLevel: level, gzipBlockSize: 1_024, codec: codec)
        var options = RunOptions(computeThreads: 2)
        options.clock = ManualClock()  // never moves: no block is cut short by a flush, in either run
        let direct = try await Pipeline.lines(from: paths, options: read)
            .write(to: directory.file("direct.gz"), options: write)
            .run(options)
        let staged = try await Pipeline.lines(from: paths, options: read)
            .filter { _ in true }
            .write(to: directory.file("staged.gz"), options: write)
            .run(options)

        #expect(try readFile(directory.file("direct.gz")) == readFile(directory.file("staged.gz")))
        try await Shell.check("gzip -t '\(directory.file("direct.gz"))'")
        try await Shell.check("gzip -dc '\(directory.file("direct.gz"))' > '\(directory.file("direct.txt"))'")
        #expect(try readFile(directory.file("direct.txt")) == text)

        #expect(direct.stages.map(\.name) == ["read", "lines", "deflate", "write"])
        #expect(staged.stages.map(\.name) == ["read", "lines", "filter", "gzip-blocks", "deflate", "write"])
        // The report counts lines out of `lines` either way, and the blocks the compressors took.
        #expect(direct[stage: "lines"]?.recordsOut == lines)
        #expect(staged[stage: "lines"]?.recordsOut == lines)
        #expect(direct[stage: "deflate"]?.recordsIn == staged[stage: "deflate"]?.recordsIn)
        #expect(direct[stage: "write"]?.bytesIn == text.count)
    }

    @Test(arguments: [16, 4_096])
    func aLineOverTheLimit_failsAtItsOffset_afterTheLinesBeforeItAreWritten(chunkSize: Int) async throws {
        // With 16-byte chunks the long line spans chunks (it is carried); with 4 KiB it lies inside one.
        let directory = TemporaryDirectory()
        let input = directory.file("in.txt")
        try writeFile(input, Array("one\ntwo\n".utf8) + Array(repeating: UInt8(ascii: "x"), count: 100) + [0x0A])
        let read = ReadOptions(chunkSize: chunkSize, maxRecordBytes: 50)
        for staged in [false, true] {
            let lines = Pipeline.lines(from: input, options: read)
            let output = directory.file(staged ? "staged.gz" : "direct.gz")
            let error = await #expect(throws: PipelineError.self) {
                try await (staged ? lines.filter { _ in true } : lines).write(to: output).run()
            }
            let failure = try #require(error?.underlying as? FileError)
            #expect(failure.code == .recordTooLong)
            #expect(failure.path == input)
            #expect(failure.offset == 8)
            #expect(error?.stage == "lines")
            try await Shell.check("gzip -t '\(output)'")
            #expect(try await Shell.run("test \"$(gzip -dc '\(output)')\" = \"$(printf 'one\\ntwo')\"") == 0)
        }
    }

    @Test func theFramer_countsTheLinesBeforeALineOverTheLimit() throws {
        var framer = LineBlockFramer(maxRecordBytes: 1, builder: GzipBlockBuilder(size: 100))
        var blocks: [GzipBlock] = []
        let chunk = ByteChunk(
            buffer: LineBuffer(Array("\n\nrr\n\n".utf8), budget: nil),  // found by FuzzLineFramer
            path: "in",
            offset: 0,
            endOfFile: true
        )
        #expect(throws: FileError.self) { try framer.frame(chunk, into: &blocks) }
        #expect(framer.lineCount == 2)
        #expect(framer.finish()?.data == Array("\n\n".utf8))
    }

    @Test func aShutdown_whileWaitingAfterSomeLines_writesThem_andDropsAPartialLine() async throws {
        let directory = TemporaryDirectory()
        let input = try InputPipe()
        let waits = EventCounter()
        let shutdown = ShutdownSignal()
        var options = RunOptions()
        options.hooks.onInputWait = { _ in waits.signal() }
        options.shutdown = shutdown
        let output = directory.file("out.gz")
        let run = Task { try await Pipeline.lines(from: input.path).write(to: output).run(options) }
        await waits.wait(beyond: 0)
        let before = waits.value
        input.write("one\ntwo\npart")
        await waits.wait(beyond: before)  // read them, and waits again
        shutdown.requestShutdown()
        let report = try await run.value
        #expect(report.interrupted)
        #expect(report[stage: "lines"]?.recordsOut == 2)
        #expect(try await Shell.run("test \"$(gzip -dc '\(output)')\" = \"$(printf 'one\\ntwo')\"") == 0)
    }
}
