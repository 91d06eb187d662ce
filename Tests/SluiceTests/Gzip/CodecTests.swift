import Testing

@testable import Sluice

#if canImport(Glibc)
import Glibc
#endif

@Suite("Codecs: zlib, ISA-L and libdeflate", .timeLimit(.minutes(3)))
struct CodecTests {
    /// Random text of `lines` lines, some long, some empty.
    private func text(lines: Int, generator: inout SplitMix) -> [UInt8] {
        var text: [UInt8] = []
        for _ in 0..<lines {
            let length = Int(generator.next() % 5 == 0 ? generator.next() % 2_000 : generator.next() % 60)
            for _ in 0..<length { text.append(UInt8(0x20 + generator.next() % 90)) }
            text.append(0x0A)
        }
        return text
    }

    @Test func randomCorruption_givesTheSameLinesAndTheSameError_underEveryReadingCodec() async throws {
        // Valid multi-member gzip (levels 1-9), then each of: a flipped bit, a truncation, a stray byte inserted,
        // bytes appended — anywhere. zlib and ISA-L must deliver the same lines and fail the same way, at the same
        // offset (`readUntilFailure` compares them).
        var generator = SplitMix(seed: 11)
        let directory = TemporaryDirectory()
        let cases = isThreadSanitized ? 12 : 60
        for index in 0..<cases {
            let first = self.text(lines: 200 + Int(generator.next() % 400), generator: &generator)
            let second = self.text(lines: Int(generator.next() % 50), generator: &generator)
            try writeFile(directory.file("a"), first)
            try writeFile(directory.file("b"), second)
            let level = 1 + Int(generator.next() % 9)
            try await Shell.check(
                "gzip -\(level) -c '\(directory.file("a"))' > '\(directory.file("in.gz"))'"
                    + " && gzip -1 -c '\(directory.file("b"))' >> '\(directory.file("in.gz"))'"
            )
            var bytes = try readFile(directory.file("in.gz"))
            let position = Int(generator.next() % UInt64(bytes.count))
            switch index % 4 {
            case 0: bytes[position] ^= UInt8(1 << (generator.next() % 8))
            case 1: bytes.removeLast(bytes.count - position)
            case 2: bytes.insert(UInt8(generator.next() % 256), at: position)
            default: bytes += (0..<(1 + generator.next() % 20)).map { _ in UInt8(generator.next() % 256) }
            }
            try writeFile(directory.file("bad.gz"), bytes)
            _ = await readUntilFailure([directory.file("bad.gz")])
        }
    }

    @Test(arguments: [Codec.zlib, .isal])
    func theSameInput_fromAPipe_givesTheSameLines(codec: Codec) async throws {
        // Without a second read (a pipe), ISA-L decodes alone; valid input must give the same lines.
        var generator = SplitMix(seed: 5)
        let directory = TemporaryDirectory()
        let text = self.text(lines: 5_000, generator: &generator)
        try writeFile(directory.file("in.txt"), text)
        try await Shell.check(
            "gzip -6 -c '\(directory.file("in.txt"))' > '\(directory.file("in.gz"))'"
                + " && gzip -1 -c '\(directory.file("in.txt"))' >> '\(directory.file("in.gz"))'"
                + " && mkfifo '\(directory.file("fifo"))'"
        )
        let writer = Task.detached {
            try await Shell.check("cat '\(directory.file("in.gz"))' > '\(directory.file("fifo"))'")
        }
        let lines = try await Pipeline.lines(from: [directory.file("fifo")], options: ReadOptions(codec: codec))
            .map { Array($0.bytes) }
            .collect()
            .run(RunOptions(computeThreads: 2))
            .result
        try await writer.value
        #expect(lines == splitLines(text + text))
    }

    @Test(arguments: [
        (Codec.zlib, 1), (.zlib, 6), (.isal, 1), (.isal, 3), (.libdeflate, 1), (.libdeflate, 6), (.libdeflate, 9),
        (.automatic, 0), (.automatic, 2), (.automatic, 6),
    ])
    func everyWritingCodec_writesGzipThatGzipAccepts(codec: Codec, level: Int) async throws {
        var generator = SplitMix(seed: UInt64(level))
        let directory = TemporaryDirectory()
        let text = self.text(lines: 20_000, generator: &generator)
        try writeFile(directory.file("in.txt"), text)
        let output = directory.file("out.gz")
        try await Pipeline.lines(from: [directory.file("in.txt")])
            .write(to: output, options: WriteOptions(gzipLevel: level, codec: codec))
            .run(RunOptions(computeThreads: 2))
        try await Shell.check("gzip -t '\(output)'")
        #expect(try await readLines([output]) == splitLines(text))
    }

    @Test func anEmptyInput_writesAValidEmptyGzip_underEveryWritingCodec() async throws {
        for codec in [Codec.zlib, .isal, .libdeflate] {
            let directory = TemporaryDirectory()
            try writeFile(directory.file("empty"), [])
            let output = directory.file("out.gz")
            try await Pipeline.lines(from: [directory.file("empty")])
                .write(to: output, options: WriteOptions(gzipLevel: 1, codec: codec))
                .run(RunOptions(computeThreads: 2))
            try await Shell.check("gzip -t '\(output)' && test -z \"$(zcat '\(output)')\"")
        }
    }

    @Test func aJobTheCodecCannotDo_isAConfigurationError_beforeAnythingRuns() async throws {
        let directory = TemporaryDirectory()
        try writeFile(directory.file("in.txt"), Array("a\n".utf8))
        await #expect(throws: ConfigurationError.self) {
            try await Pipeline.lines(from: [directory.file("in.txt")], options: ReadOptions(codec: .libdeflate))
                .drain()
                .run()
        }
        await #expect(throws: ConfigurationError.self) {
            try await Pipeline.lines(from: [directory.file("in.txt")])
                .write(to: directory.file("out.gz"), options: WriteOptions(gzipLevel: 6, codec: .isal))
                .run()
        }
        // Level 0 is stored; ISA-L's level 0 compresses, so ISA-L has no level 0 to give.
        await #expect(throws: ConfigurationError.self) {
            try await Pipeline.lines(from: [directory.file("in.txt")])
                .write(to: directory.file("out.gz"), options: WriteOptions(gzipLevel: 0, codec: .isal))
                .run()
        }
        #expect(access(directory.file("out.gz"), F_OK) != 0)  // nothing ran, nothing was written
    }

    @Test func aCodecWithoutTheLevel_stillWritesAPlainOutput_whichHasNoLevel() async throws {
        // One codec for a run's reading and writing (`--codec isal`) must not fail a plain output on gzip's level.
        let directory = TemporaryDirectory()
        let text = sampleText(lines: 1_000)
        try writeFile(directory.file("in.txt"), text)
        try await Shell.check("gzip -c '\(directory.file("in.txt"))' > '\(directory.file("in.gz"))'")
        try await Pipeline.lines(from: [directory.file("in.gz")], options: ReadOptions(codec: .isal))
            .write(to: directory.file("out.txt"), options: WriteOptions(gzipLevel: 6, codec: .isal))
            .run()
        #expect(try readFile(directory.file("out.txt")) == text)
        await #expect(throws: ConfigurationError.self) {
            try await Pipeline.lines(from: [directory.file("in.gz")], options: ReadOptions(codec: .isal))
                .write(to: directory.file("out.txt"), options: WriteOptions(compression: .gzip, codec: .isal))
                .run()
        }
    }
}
