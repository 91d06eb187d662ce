import Testing

@testable import Sluice

@Suite("Line")
struct LineTests {
    @Test(arguments: [
        ("abc", "abc", true), ("abc", "a", true), ("abc", "c", true), ("abc", "bc", true), ("abc", "abcd", false),
        ("abc", "", true), ("", "", true), ("", "a", false), ("aaab", "aab", true), ("a b", " ", true),
        ("x 200 y", " 200 ", true), ("x 2000 y", " 200 ", false), ("x  200", " 200 ", false), (" 200 ", " 200 ", true),
        ("200 200", " 200", true), ("   ", "  ", true), ("a  ", "   ", false), ("GET /health", "/health", true),
    ])
    func contains_findsTheBytesAnywhere(line: String, needle: String, expected: Bool) {
        #expect(Line(line).contains(needle.utf8) == expected, "\(line) contains \(needle)")
        // The same answer from a line that is a view into a larger buffer.
        let storage = Array("<<\(line)>>".utf8)
        let view = Line(storage: storage, start: 2, end: storage.count - 2)
        #expect(view.contains(needle.utf8) == expected, "view \(line) contains \(needle)")
    }

    @Test func contains_agreesWithANaiveSearch_onRandomLines() {
        var state: UInt64 = 9
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        let alphabet = Array(" ab2".utf8)
        for _ in 0..<5_000 {
            let line = (0..<next(20)).map { _ in alphabet[next(alphabet.count)] }
            let needle = (0..<(1 + next(4))).map { _ in alphabet[next(alphabet.count)] }
            let naive =
                needle.count <= line.count
                && (0...(line.count - needle.count)).contains { Array(line[$0..<($0 + needle.count)]) == needle }
            #expect(Line(bytes: line).contains(needle) == naive)
        }
    }
}

/// `filter(containing:invert:)` keeps exactly what `filter { $0.contains(needle) != invert }` keeps, on lines read
/// from a file (columnar batches, lines across many buffers) and on lines made in memory (row batches).
@Suite("Pipeline.filter(containing:)")
struct FilterContainingTests {
    static let lines: [String] = (0..<3_000).map { index in
        switch index % 7 {
        case 0: ""
        case 1: "GET /health 200"
        case 2: "x 200 y \(index)"
        case 3: "2"
        case 4: " 200 " + String(repeating: "z", count: index % 50)
        case 5: "POST /api 500 \(index)"
        default: String(repeating: "a", count: index % 13) + " 20"
        }
    }

    /// "0\nx" occurs across lines of the file ("… 200" then "x 200 …"), in no line.
    @Test(arguments: [" 200 ", "200", "", "a", "z 2", "0\nx", String(repeating: "x", count: 80)], [false, true])
    func keepsWhatTheClosureKeeps(needle: String, invert: Bool) async throws {
        let expected = Self.lines.filter { $0.utf8.contains(needle.utf8) != invert }
        let directory = TemporaryDirectory()
        let path = directory.file("in.txt")
        try writeFile(path, Array(Self.lines.map { $0 + "\n" }.joined().utf8))
        // Small chunks and batches: lines from many buffers in one batch, and batches that keep none.
        var options = RunOptions(batch: BatchLimits(maxRecords: 64, maxBytes: 1 << 20))
        options.computeThreads = 2
        let fromFile = try await Pipeline.lines(from: [path], options: ReadOptions(chunkSize: 512))
            .filter(containing: Array(needle.utf8), invert: invert)
            .map { $0.string }
            .collect()
            .run(options)
            .result
        #expect(fromFile == expected)
        let inMemory = try await Pipeline.from(Self.lines.map { Line($0) })
            .filter(containing: needle.utf8, invert: invert)
            .map { $0.string }
            .collect()
            .run(options)
            .result
        #expect(inMemory == expected)
    }
}

extension FilterContainingTests {
    /// Lines of a small alphabet, so that occurrences fall at every place in a line and at the ends of lines that
    /// follow each other: the search through a run of lines must give each line exactly the naive answer.
    @Test(arguments: ["ab", "a", "b a", "aa", "aba b"], [false, true])
    func occurrencesAtLineEnds_giveEachLineTheNaiveAnswer(needle: String, invert: Bool) async throws {
        var generator = SplitMix(seed: 17)
        let alphabet: [Character] = ["a", "b", " "]
        let lines = (0..<2_000).map { _ in
            String((0..<Int(generator.next() % 9)).map { _ in alphabet[Int(generator.next() % 3)] })
        }
        let expected = lines.filter { $0.utf8.contains(needle.utf8) != invert }
        let directory = TemporaryDirectory()
        let path = directory.file("in.txt")
        try writeFile(path, Array(lines.map { $0 + "\n" }.joined().utf8))
        let kept = try await Pipeline.lines(from: [path], options: ReadOptions(chunkSize: 100))
            .filter(containing: Array(needle.utf8), invert: invert)
            .map { $0.string }
            .collect()
            .run(RunOptions(batch: BatchLimits(maxRecords: 37, maxBytes: 1 << 20), computeThreads: 2))
            .result
        #expect(kept == expected)
    }
}

extension Collection where Element == UInt8 {
    /// The reference: a naive byte-string search.
    fileprivate func contains(_ needle: some Collection<UInt8>) -> Bool {
        let haystack = Array(self)
        let needle = Array(needle)
        guard !needle.isEmpty else { return true }
        guard needle.count <= haystack.count else { return false }
        return (0...(haystack.count - needle.count)).contains { Array(haystack[$0..<($0 + needle.count)]) == needle }
    }
}

@Suite("Lines of bytes in memory")
struct LinesInMemoryTests {
    @Test func frameLikeAFile_acrossChunks_withALastLineWithoutNewline() async throws {
        let chunks: [[UInt8]] = [
            Array("first\nsec".utf8), [], Array("ond\n\nfour".utf8), Array("th\n".utf8), Array("last".utf8),
        ]
        let lines = try await Pipeline.lines(inMemory: chunks, name: "result")
            .map { ($0.string, $0.lineNumber, $0.sourcePath) }
            .collect()
            .run()
            .result
        #expect(lines.map(\.0) == ["first", "second", "", "fourth", "last"])
        #expect(lines.map(\.1) == [1, 2, 3, 4, 5])
        #expect(lines.allSatisfy { $0.2 == "result" })
        let none = try await Pipeline.lines(inMemory: [[UInt8]]()).collect().run().result
        #expect(none.isEmpty)
    }

    @Test func writtenToAFile_areTheBytesBackToBack_inBatchesWithinTheLimits() async throws {
        // 30,000 lines in chunks cut anywhere (mid-line too), written plain and as gzip.
        let text = Array((0..<30_000).map { "line \($0) \(String(repeating: "x", count: $0 % 50))\n" }.joined().utf8)
        var chunks: [[UInt8]] = []
        var start = 0
        var size = 1
        while start < text.count {
            let end = min(text.count, start + size)
            chunks.append(Array(text[start..<end]))
            start = end
            size = size * 3 % 100_003 + 1
        }
        let directory = TemporaryDirectory()
        let options = RunOptions(batch: BatchLimits(maxRecords: 1000, maxBytes: 64 << 10))
        let expected = String(decoding: text, as: UTF8.self).split(separator: "\n").map(String.init)
        for name in ["out.txt", "out.gz"] {
            let path = directory.file(name)
            let report = try await Pipeline.lines(inMemory: chunks).write(to: path).run(options)
            let source = try #require(report[stage: "memory"])
            #expect(source.recordsOut == 30_000 && source.batchesOut >= 30)
            let back = try await Pipeline.lines(from: path).map { $0.string }.collect().run().result
            #expect(back == expected)
        }
        #expect(try readFile(directory.file("out.txt")) == text)
    }
}
