import Testing

@testable import Sluice

/// The codecs that read gzip. Every read in the gzip tests runs once with each, and they must agree exactly: the same
/// lines, and the same error kind at the same offset.
let readingCodecs: [Codec] = [.zlib, .isal]

/// Reads `paths` with `Pipeline.lines(from:)` once per reading codec and returns the lines' bytes (the same for all).
func readLines(_ paths: [String], options: ReadOptions = ReadOptions()) async throws -> [[UInt8]] {
    var results: [[[UInt8]]] = []
    for codec in readingCodecs {
        var options = options
        options.codec = codec
        results.append(
            try await Pipeline.lines(from: paths, options: options)
                .map { Array($0.bytes) }
                .collect()
                .run(RunOptions(computeThreads: 2))
                .result
        )
    }
    let same = results.allSatisfy { $0 == results[0] }
    #expect(same, "the codecs read different lines: \(results.map(\.count)) lines")
    return results[0]
}

/// Reads `paths` once per reading codec, collecting the lines delivered before the run failed, and returns them with
/// the error (zlib's; every codec must deliver the same lines and fail the same way).
func readUntilFailure(
    _ paths: [String],
    maxRecordBytes: Int = ReadOptions().maxRecordBytes
) async -> (lines: [[UInt8]], error: (any Error)?) {
    var outcomes: [(lines: [[UInt8]], error: (any Error)?)] = []
    for codec in readingCodecs {
        let delivered = Collector<[UInt8]>()
        do {
            _ = try await Pipeline.lines(
                from: paths,
                options: ReadOptions(maxRecordBytes: maxRecordBytes, codec: codec)
            )
            .forEach { delivered.append(Array($0.bytes)) }
            .run(RunOptions(batch: BatchLimits(maxRecords: 64), computeThreads: 2))
            outcomes.append((delivered.all, nil))
        } catch {
            outcomes.append((delivered.all, error))
        }
    }
    for (codec, outcome) in zip(readingCodecs, outcomes).dropFirst() {
        let same = outcome.lines == outcomes[0].lines
        #expect(same, "\(codec) delivered \(outcome.lines.count) lines, zlib \(outcomes[0].lines.count)")
        #expect(describe(outcome.error) == describe(outcomes[0].error), "\(codec) failed otherwise than zlib")
    }
    return outcomes[0]
}

/// A read error as the codecs must agree on it: its kind, file and offset.
func describe(_ error: (any Error)?) -> String {
    guard let error else { return "no error" }
    if let file = (error as? PipelineError)?.underlying as? FileError ?? error as? FileError {
        return "\(file.code) \(file.path) \(file.offset.map(String.init) ?? "-")"
    }
    return String(describing: type(of: error))
}

@Suite("Reading gzip", .timeLimit(.minutes(2)))
struct GzipReadTests {
    @Test(arguments: [1, 6, 9])
    func filesWrittenBySystemGzip_readBackExactly(level: Int) async throws {
        let directory = TemporaryDirectory()
        let text = sampleText(lines: 20_000)
        try writeFile(directory.file("in.txt"), text)
        try await Shell.check("gzip -\(level) -c '\(directory.file("in.txt"))' > '\(directory.file("in.gz"))'")
        #expect(try await readLines([directory.file("in.gz")]) == splitLines(text))
    }

    @Test func gzipIsDetectedByContent_notByName() async throws {
        let directory = TemporaryDirectory()
        let text = sampleText(lines: 500)
        try writeFile(directory.file("plain.gz"), text)  // plain text named .gz
        try writeFile(directory.file("data.txt"), text)
        try await Shell.check("gzip -c '\(directory.file("data.txt"))' > '\(directory.file("compressed.log"))'")
        #expect(try await readLines([directory.file("plain.gz")]) == splitLines(text))
        #expect(try await readLines([directory.file("compressed.log")]) == splitLines(text))
    }

    @Test func inflate_handsOutAtMostOneChunkPerCall_whateverTheCompressionRatio() async throws {
        // 8 MiB of newlines are ~8 KiB of gzip: decoding all of a read at once would hold 1,000 times the input.
        let directory = TemporaryDirectory()
        let bomb = directory.file("newlines.gz")
        let size = 8 << 20
        try await Shell.check("head -c \(size) /dev/zero | tr '\\0' '\\n' | gzip -9 > '\(bomb)'")
        let compressed = try readFile(bomb)
        let decoder = try GzipDecoder(path: bomb, chunkSize: 1 << 16)
        defer { decoder.end() }
        var start = 0
        var total = 0
        var mostChunksAtOnce = 0
        while start < compressed.count || decoder.isHoldingOutput {
            start += try compressed.withUnsafeBytes { bytes in
                try decoder.decode(UnsafeRawBufferPointer(rebasing: bytes[start...]))
            }
            let chunks = decoder.takeChunks()
            mostChunksAtOnce = max(mostChunksAtOnce, chunks.count)
            total += chunks.reduce(0) { $0 + $1.count }
        }
        try decoder.finish()
        total += decoder.takeRemainingChunks().reduce(0) { $0 + $1.count }
        #expect(mostChunksAtOnce == 1)
        #expect(total == size)
        // And through the reader: every line, none lost at the chunk boundaries.
        let report = try await Pipeline.lines(from: bomb, options: ReadOptions(chunkSize: 1 << 16)).drain().run()
        #expect(report.result == size)
    }

    @Test func multiMemberStreams_areReadWhole() async throws {
        let directory = TemporaryDirectory()
        let first = sampleText(lines: 3_000, seed: 1)
        let second = sampleText(lines: 2_000, seed: 2)
        try writeFile(directory.file("a"), first)
        try writeFile(directory.file("b"), second)
        try await Shell.check(
            "cd '\(directory.path)' && gzip -c a > a.gz && gzip -1 -c b > b.gz && cat a.gz b.gz > both.gz"
        )
        #expect(try await readLines([directory.file("both.gz")]) == splitLines(first + second))
    }

    @Test func aThousandSmallMembers_areAllRead() async throws {
        let directory = TemporaryDirectory()
        var expected: [[UInt8]] = []
        var members: [UInt8] = []
        for index in 0..<1_000 {
            let line = Array("member \(index)".utf8)
            expected.append(line)
            members += GzipMember.stored(line + [0x0a])
        }
        try writeFile(directory.file("many.gz"), members)
        #expect(try await readLines([directory.file("many.gz")]) == expected)
        try await Shell.check("gzip -t '\(directory.file("many.gz"))'")
    }

    @Test func headerWithEveryFlag_isAccepted() async throws {
        let directory = TemporaryDirectory()
        let content = Array("flagged\r\nsecond line\n".utf8)
        let member = GzipMember.stored(
            content,
            extra: [0x42, 0x43, 0x02, 0x00, 0x1b, 0x00],  // a bgzip-style extra field
            name: "original.txt",
            comment: "made byte by byte",
            headerCRC: true,
            text: true
        )
        try writeFile(directory.file("flags.gz"), member)
        try await Shell.check("gzip -t '\(directory.file("flags.gz"))'")  // the test's own member is valid gzip
        #expect(
            try await readLines([directory.file("flags.gz")]) == [Array("flagged\r".utf8), Array("second line".utf8)]
        )
    }

    @Test func bgzipStyleEmptyEndMember_isAccepted() async throws {
        let directory = TemporaryDirectory()
        let data =
            GzipMember.stored(Array("a\nb\n".utf8), extra: [0x42, 0x43, 0x02, 0x00, 0x00, 0x00])
            + GzipMember.stored([], extra: [0x42, 0x43, 0x02, 0x00, 0x1b, 0x00])
        try writeFile(directory.file("bgzf.gz"), data)
        #expect(try await readLines([directory.file("bgzf.gz")]) == [[0x61], [0x62]])
    }

    /// Zero bytes after the last member (a tape's block, a file preallocated or zero-filled past its end) end the file
    /// quietly, as they do for GNU gzip, pigz and igzip; what follows such padding — other bytes, or a member, which
    /// gzip does not read either — is trailing garbage, named at the padding's start after every line before it.
    @Test func zeroPaddingAfterTheLastMember_endsTheFile_andWhatFollowsItIsGarbage() async throws {
        let directory = TemporaryDirectory()
        let text = sampleText(lines: 1_000)
        try writeFile(directory.file("in.txt"), text)
        try await Shell.check("gzip -c '\(directory.file("in.txt"))' > '\(directory.file("good.gz"))'")
        let good = try readFile(directory.file("good.gz"))
        // Longer than a read: the padding spans chunks of the file.
        let zeros = [UInt8](repeating: 0, count: ReadOptions().chunkSize + 1_000)
        try writeFile(directory.file("padded.gz"), good + zeros)
        try await Shell.check("gzip -t '\(directory.file("padded.gz"))'")  // GNU gzip accepts it
        try writeFile(directory.file("next.txt"), Array("after\n".utf8))
        #expect(
            try await readLines([directory.file("padded.gz"), directory.file("next.txt")])
                == splitLines(text) + [Array("after".utf8)]
        )

        for (name, tail) in [("then-garbage.gz", zeros + Array("x".utf8)), ("then-a-member.gz", [0, 0] + good)] {
            try writeFile(directory.file(name), good + tail)
            let (lines, error) = await readUntilFailure([directory.file(name)])
            let failure = try #require((error as? PipelineError)?.underlying as? FileError, "\(name)")
            #expect(failure.code == .trailingGarbage, "\(name): \(failure)")
            #expect(failure.offset == good.count, "\(name)")
            #expect(lines == splitLines(text), "\(name): every line of the good member arrives first")
        }
    }

    /// The same rule on a stream (a pipe), whatever pieces it arrives in, under every backend.
    @Test(arguments: [1, 3, 4096])
    func zeroPaddingInPieces_endsTheStream_underEveryBackend(piece: Int) throws {
        let text = Array((0..<200).map { "line \($0) before the padding\n" }.joined().utf8)
        let member = GzipMember.stored(text)
        let zeros = [UInt8](repeating: 0, count: 5_000)
        for backend in [InflateBackend.zlib, .isal] {
            let padded = try FuzzFindingsTests.decodeAsPipe(member + zeros, piece: piece, backend: backend)
            #expect(padded.error == nil, "\(backend): \(String(describing: padded.error))")
            #expect(padded.bytes == text, "\(backend)")
            let garbage = try FuzzFindingsTests.decodeAsPipe(
                member + zeros + [7] + zeros,
                piece: piece,
                backend: backend
            )
            #expect(garbage.error?.code == .trailingGarbage, "\(backend): \(String(describing: garbage.error))")
            #expect(garbage.error?.offset == member.count, "\(backend)")
            #expect(garbage.bytes == text, "\(backend)")
        }
    }

    @Test func anotherCompression_isRefusedAtItsFirstByte_notReadAsText() async throws {
        let directory = TemporaryDirectory()
        let text = sampleText(lines: 2_000)
        try writeFile(directory.file("first.txt"), text)
        // Each format's real first bytes, then bytes that are no text.
        let formats: [(String, [UInt8])] = [
            ("zstd", [0x28, 0xB5, 0x2F, 0xFD, 0x04, 0x58]),
            ("xz", [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00, 0x00, 0x04]),
            ("bzip2", Array("BZh9".utf8) + [0x31, 0x41, 0x59, 0x26, 0x53, 0x59, 0x0E]),
            ("bzip2", Array("BZh1".utf8) + [0x17, 0x72, 0x45, 0x38, 0x50, 0x90, 0x00]),
            ("lz4", [0x04, 0x22, 0x4D, 0x18, 0x64, 0x40]),
            ("zlib", [0x78, 0x9C, 0x4B, 0x4C]),
            ("compress (.Z)", [0x1F, 0x9D, 0x90]),
            ("zip", Array("PK".utf8) + [0x03, 0x04, 0x14, 0x00]),
        ]
        for (index, (name, head)) in formats.enumerated() {
            let path = directory.file("in-\(index).gz")
            try writeFile(path, head + (0..<5_000).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) })
            // The file before it is read whole; the run fails on this one's first byte.
            let outcome = await readUntilFailure([directory.file("first.txt"), path])
            #expect(outcome.lines.count == 2_000, "\(name)")
            let error = (outcome.error as? PipelineError)?.underlying as? FileError
            #expect(error?.code == .unsupportedCompression, "\(name): \(String(describing: outcome.error))")
            #expect(error?.path == path && error?.offset == 0, "\(name)")
            #expect(error?.description.contains(name) == true, "\(name): \(String(describing: error))")
        }
        // Text that starts like some of them is text: 'BZh9' without a block's magic, zlib's 'x^' (levels 2-5, which
        // cannot be told from text), a lone 0x1F.
        for (index, start) in ["BZh91AY, and more\n", "x^2 + y^2\n", "\u{1F}unit separator\n"].enumerated() {
            let path = directory.file("text-\(index)")
            try writeFile(path, Array(start.utf8) + text)
            #expect(try await readLines([path]).count == 2_001)
        }
    }

    @Test func anotherCompression_onStandardInput_failsTheCLIRun() async throws {
        let directory = TemporaryDirectory()
        try writeFile(directory.file("in.zst"), [0x28, 0xB5, 0x2F, 0xFD] + Array("not text\n".utf8))
        #expect(try await runSluice("run wc < '\(directory.file("in.zst"))' 2> '\(directory.file("err"))'") == 1)
        try await Shell.check(
            "grep -q 'standard input: unsupportedCompression at byte 0: zstd data' '\(directory.file("err"))'"
        )
    }

    @Test func emptyFile_andEmptyGzip_haveNoLines() async throws {
        let directory = TemporaryDirectory()
        try writeFile(directory.file("empty"), [])
        try await Shell.check("gzip -c < /dev/null > '\(directory.file("empty.gz"))'")
        #expect(try await readLines([directory.file("empty")]).isEmpty)
        #expect(try await readLines([directory.file("empty.gz")]).isEmpty)
    }

    @Test func truncationAtManyOffsets_failsNamingFileAndOffset_afterDeliveringWhatWasDecoded() async throws {
        let directory = TemporaryDirectory()
        let text = sampleText(lines: 3_000)
        try writeFile(directory.file("in.txt"), text)
        try await Shell.check("gzip -6 -c '\(directory.file("in.txt"))' > '\(directory.file("in.gz"))'")
        let compressed = try readFile(directory.file("in.gz"))
        let original = splitLines(text)
        // One byte is not the gzip magic: a file holding just `1f` is read as plain text.
        try writeFile(directory.file("one-byte"), [compressed[0]])
        #expect(try await readLines([directory.file("one-byte")]) == [[0x1f]])
        var cut = 2
        while cut < compressed.count {
            let path = directory.file("cut-\(cut).gz")
            try writeFile(path, Array(compressed[..<cut]))
            let (lines, error) = await readUntilFailure([path])
            let failure = try #require(error as? PipelineError, "cut at \(cut): \(String(describing: error))")
            #expect(failure.stage == "read")
            let fileError = try #require(failure.underlying as? FileError)
            #expect(fileError.path == path)
            #expect(fileError.code == .truncatedGzip, "cut at \(cut): \(fileError)")
            #expect(fileError.offset == cut)
            // Every line delivered is the original's, in order; only the last may be cut short.
            for (index, line) in lines.enumerated() {
                if index == lines.count - 1 {
                    #expect(original[index].starts(with: line), "cut at \(cut)")
                } else {
                    #expect(line == original[index], "cut at \(cut)")
                }
            }
            cut += 997
        }
    }

    @Test func truncatedLateInTheFile_stillDeliversTheLinesBeforeIt() async throws {
        let directory = TemporaryDirectory()
        let text = sampleText(lines: 50_000)
        try writeFile(directory.file("in.txt"), text)
        try await Shell.check("gzip -c '\(directory.file("in.txt"))' | head -c 300000 > '\(directory.file("cut.gz"))'")
        let (lines, error) = await readUntilFailure([directory.file("cut.gz")])
        #expect(error != nil)
        // 300 kB of gzip holds well over a megabyte of this text: most of it arrives before the error.
        #expect(lines.count > 10_000)
    }

    @Test func badCRC_badISIZE_andTrailingGarbage_areNamedWithTheirOffset() async throws {
        let directory = TemporaryDirectory()
        let text = sampleText(lines: 1_000)
        try writeFile(directory.file("in.txt"), text)
        try await Shell.check("gzip -c '\(directory.file("in.txt"))' > '\(directory.file("good.gz"))'")
        let good = try readFile(directory.file("good.gz"))

        var badCRC = good
        badCRC[good.count - 8] ^= 0xff
        var badSize = good
        badSize[good.count - 1] ^= 0x01
        let garbage = good + Array("not gzip".utf8)
        let method = Array(good[..<2]) + [0x07] + Array(good[3...])  // compression method 7

        let cases: [(String, [UInt8], FileError.Code, Int?)] = [
            ("crc.gz", badCRC, .checksumMismatch, nil),
            ("size.gz", badSize, .lengthMismatch, nil),
            ("garbage.gz", garbage, .trailingGarbage, good.count),
            ("method.gz", method, .corruptGzip, nil),
        ]
        for (name, bytes, code, offset) in cases {
            try writeFile(directory.file(name), bytes)
            let (lines, error) = await readUntilFailure([directory.file(name)])
            let failure = try #require((error as? PipelineError)?.underlying as? FileError, "\(name)")
            #expect(failure.code == code, "\(name): \(failure)")
            #expect(failure.path == directory.file(name))
            #expect(failure.offset != nil)
            if let offset { #expect(failure.offset == offset, "\(name)") }
            if code == .trailingGarbage {
                #expect(lines == splitLines(text), "every line of the good member arrives first")
            }
        }
    }

    @Test func severalFiles_areReadInArgumentOrder_eachLastLineCountingWithoutNewline() async throws {
        let directory = TemporaryDirectory()
        try writeFile(directory.file("a"), Array("a1\na2".utf8))
        try writeFile(directory.file("b.txt"), Array("b1\n".utf8))
        try await Shell.check("printf 'c1\\nc2' | gzip -c > '\(directory.file("c.gz"))'")
        let lines = try await readLines([directory.file("a"), directory.file("b.txt"), directory.file("c.gz")])
        #expect(lines.map { String(decoding: $0, as: UTF8.self) } == ["a1", "a2", "b1", "c1", "c2"])
    }

    @Test func crlfNulAndInvalidUTF8_passThroughUnchanged() async throws {
        let directory = TemporaryDirectory()
        let text: [UInt8] = [0x61, 0x0d, 0x0a, 0x00, 0xff, 0xfe, 0x0a, 0xc3, 0x28, 0x0a, 0x0d]
        try writeFile(directory.file("odd"), text)
        #expect(
            try await readLines([directory.file("odd")]) == [[0x61, 0x0d], [0x00, 0xff, 0xfe], [0xc3, 0x28], [0x0d]]
        )
    }

    @Test func lineOverTheLimit_failsNamingFileAndOffset_afterTheLinesBeforeIt() async throws {
        let directory = TemporaryDirectory()
        let text = Array("short\nalso short\n".utf8) + [UInt8](repeating: 0x78, count: 5_000) + [0x0a]
        try writeFile(directory.file("long"), text)
        let delivered = Collector<[UInt8]>()
        let error = await #expect(throws: PipelineError.self) {
            try await Pipeline.lines(
                from: [directory.file("long")],
                options: ReadOptions(chunkSize: 1_000, maxRecordBytes: 1_024)
            )
            .forEach { delivered.append(Array($0.bytes)) }
            .run()
        }
        let failure = try #require(error?.underlying as? FileError)
        #expect(error?.stage == "lines")
        #expect(failure.code == .recordTooLong)
        #expect(failure.offset == 17)
        #expect(failure.path == directory.file("long"))
        #expect(delivered.all == [Array("short".utf8), Array("also short".utf8)])
    }

    @Test func missingFile_andDirectory_areErrorsNamingThePath() async throws {
        let directory = TemporaryDirectory()
        let missing = await readUntilFailure([directory.file("nope")])
        let notFound = try #require((missing.error as? PipelineError)?.underlying as? FileError)
        #expect(notFound.code == .notFound)
        #expect(notFound.path == directory.file("nope"))
        #expect("\(notFound)".contains(directory.file("nope")))

        let folder = await readUntilFailure([directory.path])
        let isDirectory = try #require((folder.error as? PipelineError)?.underlying as? FileError)
        #expect(isDirectory.code == .isDirectory)
    }

    @Test func report_countsStoredAndDecodedBytes() async throws {
        let directory = TemporaryDirectory()
        let text = sampleText(lines: 5_000)
        try writeFile(directory.file("in.txt"), text)
        try await Shell.check("gzip -c '\(directory.file("in.txt"))' > '\(directory.file("in.gz"))'")
        let stored = try readFile(directory.file("in.gz")).count
        let report = try await Pipeline.lines(from: [directory.file("in.gz")]).drain().run()
        #expect(report[stage: "read"]?.bytesIn == stored)
        #expect(report[stage: "read"]?.bytesOut == text.count)
        #expect(report.bytesRead == stored && report.bytesDecoded == text.count)
        #expect(report.result == 5_000)
    }
}

/// gzip members built byte by byte, with stored (uncompressed) deflate blocks.
enum GzipMember {
    static func stored(
        _ content: [UInt8],
        extra: [UInt8]? = nil,
        name: String? = nil,
        comment: String? = nil,
        headerCRC: Bool = false,
        text: Bool = false
    ) -> [UInt8] {
        var flags: UInt8 = 0
        if text { flags |= 0x01 }
        if headerCRC { flags |= 0x02 }
        if extra != nil { flags |= 0x04 }
        if name != nil { flags |= 0x08 }
        if comment != nil { flags |= 0x10 }
        var header: [UInt8] = [0x1f, 0x8b, 0x08, flags, 0, 0, 0, 0, 0, 0x03]
        if let extra {
            header += [UInt8(extra.count & 0xff), UInt8(extra.count >> 8)] + extra
        }
        if let name { header += Array(name.utf8) + [0] }
        if let comment { header += Array(comment.utf8) + [0] }
        if headerCRC {
            let crc = crc32Of(header) & 0xffff
            header += [UInt8(crc & 0xff), UInt8(crc >> 8)]
        }
        // One final stored block: BFINAL=1, BTYPE=00, then LEN and its complement.
        let length = UInt16(content.count)
        let block: [UInt8] =
            [0x01, UInt8(length & 0xff), UInt8(length >> 8), UInt8(~length & 0xff), UInt8(~length >> 8)] + content
        return header + block + littleEndian(crc32Of(content)) + littleEndian(UInt32(content.count))
    }
}
