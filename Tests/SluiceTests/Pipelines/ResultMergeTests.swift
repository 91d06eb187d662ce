import Sluice
import Testing

@testable import Pipelines

/// A ready pipeline's unit results, combined, equal one run over all the inputs — the promise `sluice job merge`
/// rests on. Seeded random text, cut into parts at line ends, with words that straddle the parts' top counts.
@Suite("Ready pipelines: unit results combine like one run")
struct ResultMergeTests {
    static func text(seed: UInt64, lines: Int) -> [String] {
        var generator = SplitMix(seed: seed)
        let words = (0..<300).map { "w\($0)" } + ["The", "the", "THE", "a1", "Ümlaut"]
        return (0..<lines).map { _ in
            (0..<Int.random(in: 0...12, using: &generator)).map { _ in
                words.randomElement(using: &generator)!
            }.joined(separator: Bool.random(using: &generator) ? " " : ", ")
        }
    }

    func combined(_ pipeline: any ReadyPipeline.Type, arguments: [String], parts: [[String]]) async throws -> [String] {
        let directory = TemporaryDirectory()
        var outputs: [String] = []
        for (index, part) in parts.enumerated() {
            let input = directory.file("\(index).txt")
            try writeFile(input, Array(part.map { $0 + "\n" }.joined().utf8))
            let output = directory.file("\(index).out.gz")
            _ = try await pipeline.runUnit(
                Invocation(inputs: [input], output: output, writeOptions: WriteOptions(gzipLevel: 1)),
                arguments: arguments
            )
            outputs.append(output)
        }
        let merged = directory.file("merged.txt")
        try await pipeline.combine(Invocation(inputs: outputs, output: merged), arguments: arguments)
        return try await Pipeline.lines(from: [merged]).map { $0.string }.collect().run().result
    }

    func oneRun(_ pipeline: any ReadyPipeline.Type, arguments: [String], lines: [String]) async throws -> [String] {
        let directory = TemporaryDirectory()
        let input = directory.file("all.txt")
        try writeFile(input, Array(lines.map { $0 + "\n" }.joined().utf8))
        let output = directory.file("all.out")
        _ = try await pipeline.run(Invocation(inputs: [input], output: output), arguments: arguments)
        return try await Pipeline.lines(from: [output]).map { $0.string }.collect().run().result
    }

    @Test(arguments: [
        (WordFrequency.self as any ReadyPipeline.Type, ["--top", "15"]),
        (WordFrequency.self as any ReadyPipeline.Type, ["--top", "1000"]),
        (WordCount.self as any ReadyPipeline.Type, []),
    ])
    func unitsCombined_equalOneRun(_ pipeline: any ReadyPipeline.Type, arguments: [String]) async throws {
        for seed in UInt64(1)...3 {
            let lines = Self.text(seed: seed, lines: 2_000)
            var parts: [[String]] = []
            var rest = lines[...]
            var generator = SplitMix(seed: seed + 100)
            while !rest.isEmpty {
                let size = min(rest.count, Int.random(in: 0...500, using: &generator))
                parts.append(Array(rest.prefix(size)))
                rest = rest.dropFirst(size)
            }
            parts.append([])  // an empty input is a unit too
            let expected = try await self.oneRun(pipeline, arguments: arguments, lines: lines)
            #expect(!expected.isEmpty)
            #expect(try await self.combined(pipeline, arguments: arguments, parts: parts) == expected)
        }
    }

    @Test(arguments: [
        (WordFrequency.self as any ReadyPipeline.Type, "3 the\nx the\n"),
        (WordFrequency.self as any ReadyPipeline.Type, "3 the\n4\n"),
        (WordCount.self as any ReadyPipeline.Type, "1 2 3\n1 2\n"),
        (WordCount.self as any ReadyPipeline.Type, "1 2 3\n1 -2 3\n"),
    ])
    func aLineNoUnitWrites_isAnErrorNamingItsFileAndLine(_ pipeline: any ReadyPipeline.Type, text: String) async throws
    {
        let directory = TemporaryDirectory()
        let unit = directory.file("unit.txt")
        try writeFile(unit, Array(text.utf8))
        let error = await #expect(throws: (any Error).self) {
            try await pipeline.combine(Invocation(inputs: [unit], output: directory.file("out.txt")), arguments: [])
        }
        #expect("\(error.map { "\($0)" } ?? "")".contains("\(unit), line 2: not a \(pipeline.name) unit's"))
    }
}
