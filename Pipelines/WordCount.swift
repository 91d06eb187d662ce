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
            Self.byteClasses.withUnsafeBufferPointer { classes in
                // Branch-free: text mixes spaces and letters too irregularly for branches to be predicted.
                var words = 0
                var inWord = 0
                for byte in bytes {
                    let kind = Int(classes[Int(byte)])
                    words &+= (kind >> 1) & (inWord ^ 1)
                    inWord = (kind >> 1) | (inWord & kind)
                }
                return words
            }
        }
    }

    /// Each byte's part in a word: 0 white space (ends a word), 2 printable (starts or continues one), 1 anything
    /// else (control bytes, bytes ≥ 0x80: neither).
    static let byteClasses: [UInt8] = (0...255).map { byte in
        if byte == 0x20 || (0x09...0x0d).contains(byte) { return 0 }
        return (0x21...0x7e).contains(byte) ? 2 : 1
    }
}
