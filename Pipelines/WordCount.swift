public import Sluice

/// `wc`: `LINES WORDS BYTES` of the decoded input, as `LC_ALL=C wc` counts them.
///
/// Lines are newline bytes; bytes are the decoded bytes; a word starts at a printable byte that follows white space
/// (space, `\t`, `\n`, `\v`, `\f`, `\r`) or the start, and other bytes (control bytes, bytes ≥ 0x80) neither start
/// nor end one — GNU wc's rule in the C locale.
public enum WordCount: ReadyPipeline {
    public static let name = "wc"
    public static let summary = "LINES WORDS BYTES of the decoded input, the same numbers as LC_ALL=C wc"
    public static let stages = "read -> lines -> count (parallel on the compute pool) -> write"
    public static let resultMerge = ResultMerge.combineLines

    /// Sums the units' `LINES WORDS BYTES`.
    public static func combine(_ invocation: Invocation, options: NoOptions) async throws {
        let totals = try await invocation.lines
            .reduce(into: [0, 0, 0], name: "sum") { totals, line in
                let columns = line.fields().map(\.int)
                guard columns.count == 3, columns.allSatisfy({ ($0 ?? -1) >= 0 }) else {
                    throw MalformedRecord(line, reason: "not a wc unit's LINES WORDS BYTES: '\(line.string)'")
                }
                for index in 0..<3 { totals[index] += columns[index]! }
            }
            .run(invocation.runOptions)
            .result
        try await invocation.writeResult([totals.map(String.init).joined(separator: " ")])
    }

    struct Counts: Sendable {
        var lineBytes = 0
        var words = 0
    }

    public static func run(_ invocation: Invocation, options: NoOptions) async throws -> RunReport<Void> {
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
        let bytes = report.bytesDecoded
        let lines = bytes - report.result.lineBytes
        try await invocation.writeResult(["\(lines) \(report.result.words) \(bytes)"])
        return report.withoutResult
    }

    static func words(in line: Line) -> Int {
        line.withUnsafeBytes { bytes in Self.words(in: bytes) }
    }

    /// The words of `bytes`: eight bytes at a time while they are all ASCII white space or printable (a word starts
    /// at a printable byte after a space or the start), byte by byte from the first other byte on.
    static func words(in bytes: UnsafeRawBufferPointer) -> Int {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let lows: UInt64 = 0x7f7f_7f7f_7f7f_7f7f
        var words = 0
        var index = 0
        var previousPrintable: UInt64 = 0  // 0x80 when the byte before `index` is printable
        while index + 8 <= bytes.count {
            let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            guard word & highs == 0 else { break }  // a byte ≥ 0x80: neither space nor printable
            // Per byte, a flag in its high bit; no carry crosses bytes, as every byte is below 0x80.
            let atLeast21 = (word &+ 0x5f * ones) & highs
            let isDelete = (word &+ ones) & highs
            let printable = atLeast21 & ~isDelete
            let spaces = ~(((word ^ 0x20 * ones) & lows) &+ lows | (word ^ 0x20 * ones)) & highs
            let tabToReturn = (word &+ 0x77 * ones) & ~(word &+ 0x72 * ones) & highs
            // Control bytes other than \t…\r, and DEL, neither start nor end a word: the careful loop handles them.
            guard (~atLeast21 & ~spaces & ~tabToReturn & highs) | isDelete == 0 else { break }
            let before = (printable << 8) | previousPrintable
            words &+= (printable & ~before).nonzeroBitCount
            previousPrintable = printable >> 56
            index += 8
        }
        var inWord = previousPrintable != 0 ? 1 : 0
        while index < bytes.count {
            // Branch-free: text mixes spaces and letters too irregularly for branches to be predicted.
            let byte = bytes[index]
            let isSpace = byte == 0x20 || byte &- 0x09 < 5 ? 1 : 0
            let isPrintable = byte &- 0x21 < 0x5e ? 1 : 0
            words &+= isPrintable & (inWord ^ 1)
            inWord = isPrintable | (inWord & (isSpace ^ 1))
            index += 1
        }
        return words
    }
}
