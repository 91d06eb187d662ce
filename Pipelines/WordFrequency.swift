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

    /// A unit's output: every word's count (the top of the whole needs them all).
    public static func runUnit(_ invocation: Invocation, options: Options) async throws -> RunReport<Void> {
        var all = options
        all.top = .max
        return try await Self.run(invocation, options: all)
    }

    /// Adds the units' counts per word, then keeps the `--top` most frequent, as ``run(_:options:)`` orders them.
    public static func combine(_ parts: [[String]], options: Options) throws -> [String] {
        var counts: [String: Int] = [:]
        for line in parts.joined() {
            guard let space = line.firstIndex(of: " "), let count = Int(line[..<space]) else {
                throw MalformedPart(pipeline: Self.name, text: line)
            }
            counts[String(line[line.index(after: space)...]), default: 0] += count
        }
        let ordered = counts.sorted {
            $0.value != $1.value ? $0.value > $1.value : Array($0.key.utf8).lexicographicallyPrecedes($1.key.utf8)
        }
        return ordered.prefix(options.top).map { "\($0.value) \($0.key)" }
    }

    public static func run(_ invocation: Invocation, options: Options) async throws -> RunReport<Void> {
        let top = options.top
        let report = try await invocation.lines
            .parallelReduce(into: WordTable(), name: "count-words") { table, line in
                table.addWords(of: line)
            } merge: { total, part in
                total.merge(part)
            }
            .run(invocation.runOptions)
        let lines = report.result.top(top).map { "\($0.count) \(String(decoding: $0.word, as: UTF8.self))" }
        try await invocation.writeResult(lines)
        return report.withoutResult
    }
}
