public import ArgumentParser
public import Sluice

/// `wordfreq`: the most frequent words, `COUNT WORD` by count descending, then word ascending.
///
/// Words are maximal runs of ASCII letters and digits, lowercased. Tokenising and counting run in parallel on the
/// compute pool, each worker with its own ``WordTable`` (no allocation per word), merged at the end — so it scales
/// with `--workers`.
public enum WordFrequency: ReadyPipeline {
    public static let name = "wordfreq"
    public static let summary = "the --top N (default 10) most frequent words, as COUNT WORD lines"
    public static let stages = "read -> lines -> count words (parallel on the compute pool) -> write"

    public struct Options: ParsableArguments, Sendable {
        @Option(help: "How many words to print.")
        public var top = 10

        public init() {}

        public func validate() throws {
            guard self.top >= 1 else { throw ValidationError("--top must be at least 1") }
        }
    }

    public static let resultMerge = ResultMerge.combineLines

    /// A unit's output: every word's count (the top of the whole needs them all), in no particular order — the
    /// merge adds them up and orders the whole.
    public static func runUnit(_ invocation: Invocation, options: Options) async throws -> RunReport<Void> {
        let (table, report) = try await Self.count(invocation)
        try await invocation.writeResult(text: table.countText)
        return report
    }

    /// Adds the units' counts per word (in parallel, a table per worker), then keeps the `--top` most frequent, as
    /// ``run(_:options:)`` orders them.
    public static func combine(_ invocation: Invocation, options: Options) async throws {
        let table = try await invocation.lines
            .parallelReduce(into: WordTable(), name: "add-counts") { table, line in
                guard let first = line.field(0), let count = first.int, count >= 0, first.count + 1 < line.count else {
                    throw MalformedRecord(line, reason: "not a wordfreq unit's COUNT WORD: '\(line.string)'")
                }
                line.dropFirst(first.count + 1).withUnsafeBytes { word in
                    table.add(word.bindMemory(to: UInt8.self), count: count)
                }
            } merge: { total, part in
                total.merge(part)
            }
            .run(invocation.runOptions)
            .result
        try await invocation.writeResult(
            table.top(options.top).map { "\($0.count) \(String(decoding: $0.word, as: UTF8.self))" }
        )
    }

    public static func run(_ invocation: Invocation, options: Options) async throws -> RunReport<Void> {
        let (table, report) = try await Self.count(invocation)
        let lines = table.top(options.top).map { "\($0.count) \(String(decoding: $0.word, as: UTF8.self))" }
        try await invocation.writeResult(lines)
        return report
    }

    /// Every word's count over the invocation's input.
    static func count(_ invocation: Invocation) async throws -> (WordTable, RunReport<Void>) {
        let report = try await invocation.lines
            .parallelReduce(into: WordTable(), name: "count-words") { table, line in
                table.addWords(of: line)
            } merge: { total, part in
                total.merge(part)
            }
            .run(invocation.runOptions)
        return (report.result, report.withoutResult)
    }
}
