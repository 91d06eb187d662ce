public import Sluice

/// `wc`: `LINES WORDS BYTES` of the decoded input, as `LC_ALL=C wc` counts them.
///
/// Lines are newline bytes; bytes are the decoded bytes; a word starts at a printable byte that follows white space
/// (space, `\t`, `\n`, `\v`, `\f`, `\r`) or the start, and other bytes (control bytes, bytes ≥ 0x80) neither start
/// nor end one — GNU wc's rule in the C locale.
public enum WordCount: ReadyPipeline {
    public static let name = "wc"
    public static let summary = "LINES WORDS BYTES of the decoded input, the same numbers as LC_ALL=C wc"
    public static let options: [PipelineOption] = []
    public static let stages = "read -> lines -> count (parallel on the compute pool) -> write"

    struct Counts: Sendable {
        var lineBytes = 0
        var words = 0
    }

    public static func run(_ invocation: Invocation) async throws -> RunReport<Void> {
        let report = try await invocation.lines
            .parallelReduce(into: Counts(), name: "count") { counts, line in
                counts.lineBytes += line.count
                counts.words += Self.words(in: line)
            } merge: { total, part in
                total.lineBytes += part.lineBytes
                total.words += part.words
            }
            .run(invocation.runOptions)
        // Framing removed exactly one `\n` per newline: the decoded bytes minus the lines' bytes count them.
        let bytes = report[stage: "read"]?.bytesOut ?? 0
        let lines = bytes - report.result.lineBytes
        try await invocation.writeResult(["\(lines) \(report.result.words) \(bytes)"])
        return report.withoutResult
    }

    static func words(in line: Line) -> Int {
        line.withUnsafeBytes { bytes in
            // Branch-free (text mixes spaces and letters too irregularly for branches to be predicted), and with no
            // table: a shared table is an array whose reference counting, per line and across workers, cost more
            // than the counting.
            var words = 0
            var inWord = 0
            for byte in bytes {
                let isSpace = byte == 0x20 || byte &- 0x09 < 5 ? 1 : 0
                let isPrintable = byte &- 0x21 < 0x5e ? 1 : 0
                words &+= isPrintable & (inWord ^ 1)
                inWord = isPrintable | (inWord & (isSpace ^ 1))
            }
            return words
        }
    }
}
