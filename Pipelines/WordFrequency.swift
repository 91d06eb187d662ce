public import Sluice

/// `wordfreq`: the most frequent words, `COUNT WORD` by count descending, then word ascending.
///
/// Words are maximal runs of ASCII letters and digits, lowercased. Tokenising and counting run in parallel on the
/// compute pool, each worker with its own counts, merged at the end — so it scales with `--workers`.
public enum WordFrequency: ReadyPipeline {
    public static let name = "wordfreq"
    public static let summary = "the --top N (default 10) most frequent words, as COUNT WORD lines"
    public static let options = [
        PipelineOption(name: "top", summary: "how many words to print (default 10)", takesValue: true)
    ]
    public static let stages = "read -> lines -> count words (parallel on the compute pool) -> write"

    public static func run(_ invocation: Invocation) async throws -> RunReport<Void> {
        let top = Int(invocation.values["top"] ?? "10") ?? 10
        let report = try await invocation.lines
            .parallelReduce(into: [[UInt8]: Int](), name: "count-words") { counts, line in
                Self.countWords(in: line, into: &counts)
            } merge: { total, part in
                total.merge(part, uniquingKeysWith: +)
            }
            .run(invocation.runOptions)
        let ranked = report.result.sorted { lhs, rhs in
            lhs.value != rhs.value ? lhs.value > rhs.value : lhs.key.lexicographicallyPrecedes(rhs.key)
        }
        let lines = ranked.prefix(max(top, 0)).map { "\($0.value) \(String(decoding: $0.key, as: UTF8.self))" }
        try await invocation.writeResult(lines)
        return report.withoutResult
    }

    static func countWords(in line: Line, into counts: inout [[UInt8]: Int]) {
        line.withUnsafeBytes { bytes in
            var word: [UInt8] = []
            for byte in bytes {
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    word.append(byte)
                case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                    word.append(byte | 0x20)
                default:
                    if !word.isEmpty {
                        counts[word, default: 0] += 1
                        word.removeAll(keepingCapacity: true)
                    }
                }
            }
            if !word.isEmpty { counts[word, default: 0] += 1 }
        }
    }
}
