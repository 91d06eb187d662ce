import Foundation
import Testing

@testable import Sluice

/// Inputs the fuzzers (`Tests/Fuzz`) found, kept as regression tests: each broke a promise of the gzip reader once.
@Suite("gzip inputs the fuzzers found", .timeLimit(.minutes(1)))
struct FuzzFindingsTests {
    /// A member with a reserved header flag, delivered a byte at a time by a pipe: ISA-L ignores the flag and zlib
    /// refuses it, and the reader saw the flags only when four bytes came at once — so ISA-L decoded the member.
    static let reservedFlag = """
        H4sIII/eEmsC/31SwQ3CMAx856bwBFCxA2IBRqASSBSkqo+s1Dm6GLFjNbZT0QdCufP57HPO+tHteic6vz6PMZ+ey/SmcZ6/M8wL5IXoMgwECxASuDzvYkmrsa3LtlL95\
        bqdAlWzMqwhVMVURbUKishuHS2ztmtYaQxrXh7sYE5XKE5ca9lA30atKsLK0Wii6MjBnrqTk6Enn0ybDDE12P25hctI1Th1q4egZggHlnidTBdDdzYaYz/K0T8ECa3600R9\
        go3qxot526ZKsNd4Iu3I+DtuJRcer8hcNwfSbd7lWIPxI5JxVYP4AQ0lH+R+AwAA
        """

    /// The first match reaches before the member's start ("invalid distance too far back"): ISA-L wrote the match's
    /// bytes before failing, which zlib never makes.
    static let distanceTooFarBack = """
        H4sIAI/eEmsC/31SwQ3CMAx856bwBFCxA2IBRqASSBSkqo+s1Dm6GLFjNbZT0QdCufP57HPO+tHteic6vz6PMZ+ey/SmcZ6/M8wL5IXoMgwECxASuDzvYkmrsa3LtlL95\
        bqdAlWzMqwhVMVURbUKishuHS2ztmtYaQx7Xh7sYE5XKE5ca9lA30atKsLK0Wii6MjBnrqTk6Enn0ybDDE12P25hctI1Th1q4egZggHlnidTBdDdzYaYz/K0T8ECa3600R9\
        go3qxot526ZKsNd4Iu3I+DtuJRcer8hcNwfSbd7lWIPxI5JxVYP4AQ0lH+QBAAAA
        """

    /// A third member with a match too far back, after two good ones: ISA-L left `avail_in` past the input's end,
    /// and the reader crashed on a range check instead of reporting the error.
    static let invalidBlockAfterMembers = """
        H4sIAAAAAAAAA6uogAIFd9cQBQX9zLyU1Aq9jJLcHIXUoqL8Ii4kES6wiIKCkYGBAheyhAIXJxdIewXcME6obq7DK0sOAwArwnlBZAAAAB+LCAAAAAAAAAMDAAAAAAAAAAAAH4sIAA\
        AAAAAAA12Tyw2DMBBEzztVbAUJSg9RGkgJQUqkfCTEgZaog8bCfrDH5mDJ3mXmzRpW3dZ5W/UyDLocDzBO02/S8+v7GJfTc/689Xa9R2vWRKPHV+xV9N2H2tJ0hl2t7caHnUPY\
        wlLgjXqLoRSBxDEABgqbOJGsmHIPKoqOqPHjTKKlWchftJlTAVPzamrhVGGqiE83JpnDImN4lUKwHyColn06IyCl1PbAyNwWhXiKpIcgiXyLTpyO9pkP9kXlxFXANjFwYy02SW\
        a8SYcDkKTdynT7OyNys/I+Dt7cqcTFFO/Y5n9gVHERf2yw9PgaAwAA
        """

    /// A dynamic block whose code lengths zlib refuses ("invalid distances set") after a run of zero bytes.
    static let invalidDistancesSet = """
        H4sIAI/eEmsC/31SwQ3CMAx856bwBFCxA2IBRqASSBSkqo+s1Dm6GLFjNbZT0QdCufP57HPO+tHteic6vz6PMZ+ey/SmcZ6/M8wL5IXoMgwECxASuDzvYkmrsa3LtlL95\
        bqdAlWzMqwhVMVURbUKishuHS2ztmtYaQxrXh7sYE5XKE5ca9lA30atKsLK0QAAAAAAAAAAAAAAAAAAAAAAAHidTBdDdzYaYz/K0T8ECa3600R9go3qxot526ZKsNd4Iu3I+D\
        tuJRcer8hcNwfSbd7lWIPxI5JxVYP4AQ0lH+QBAAAA
        """

    /// A dynamic block whose literal/length code is incomplete and whose data is its end-of-block code alone: zlib
    /// refuses it ("invalid literal/lengths set"); ISA-L decoded it (empty, CRC and ISIZE right) and reported the
    /// bytes after it as trailing garbage instead. Found by CI's fuzzer.
    static let incompleteLiteralLengthCode = """
        H4sIAPbHE2sC/+3BIQEAAADDIP/+gV/jAigAAAAAAAAAAAAAAEAAAAAAAFJhVuZ0RpY2WpIE4AA=
        """

    static func bytes(_ base64: String) -> [UInt8] {
        Array(Data(base64Encoded: base64.filter { !$0.isWhitespace })!)
    }

    /// Decodes `input` as a pipe delivers it, `piece` bytes at a time, with no way to read it again.
    static func decodeAsPipe(
        _ input: [UInt8],
        piece: Int,
        backend: InflateBackend
    ) throws -> (bytes: [UInt8], error: FileError?) {
        let decoder = try GzipDecoder(path: "pipe", chunkSize: 1000, backend: backend)
        defer { decoder.end() }
        var bytes: [UInt8] = []
        var start = 0
        do {
            while start < input.count || decoder.isHoldingOutput {
                let end = min(start + piece, input.count)
                start += try input[start..<end].withUnsafeBytes { try decoder.decode($0) }
                for chunk in decoder.takeChunks() { bytes += chunk }
            }
            try decoder.finish()
        } catch {
            for chunk in decoder.takeRemainingChunks() { bytes += chunk }
            return (bytes, error as? FileError)
        }
        for chunk in decoder.takeRemainingChunks() { bytes += chunk }
        return (bytes, nil)
    }

    @Test(arguments: [1, 2, 3, 7])
    func reservedFlagsInPieces_refusedByEveryBackend(piece: Int) throws {
        let input = Self.bytes(Self.reservedFlag)
        for backend in [InflateBackend.zlib, .isal] {
            let outcome = try Self.decodeAsPipe(input, piece: piece, backend: backend)
            #expect(outcome.bytes.isEmpty, "\(backend)")
            #expect(outcome.error?.code == .corruptGzip, "\(backend): \(String(describing: outcome.error))")
            #expect(outcome.error?.offset == 4, "\(backend)")  // zlib's offset: it reads the flags, then refuses
        }
    }

    /// Members with every header flag, a pipe's pieces cutting their headers anywhere. (ISA-L refused a good header
    /// CRC when the header came in pieces.)
    @Test(arguments: [1, 2, 3, 5, 7, 4096])
    func goodMembersInPieces_decodeTheSameUnderEveryBackend(piece: Int) throws {
        let text = Array((0..<300).map { "line \($0) of a member read in pieces\n" }.joined().utf8)
        let input =
            GzipMember.stored(Array(text[..<5000]), name: "first.log")
            + GzipMember.stored([])
            + GzipMember.stored(Array(text[5000...]), extra: [1, 2, 0, 0], comment: "c", headerCRC: true)
        for backend in [InflateBackend.zlib, .isal] {
            let outcome = try Self.decodeAsPipe(input, piece: piece, backend: backend)
            #expect(outcome.error == nil, "\(backend): \(String(describing: outcome.error))")
            #expect(
                outcome.bytes.count == text.count && outcome.bytes == text,
                "\(backend): \(outcome.bytes.count) bytes"
            )
        }
    }

    /// Each damaged file fails with zlib's error under every codec (no crash), and no codec delivers a line zlib does
    /// not; ISA-L delivers zlib's lines.
    @Test(arguments: [
        ("distance too far back", Self.distanceTooFarBack),
        ("an invalid block after good members", Self.invalidBlockAfterMembers),
        ("invalid distances set", Self.invalidDistancesSet),
        ("reserved flags", Self.reservedFlag),
        ("an incomplete literal/length code", Self.incompleteLiteralLengthCode),
    ])
    func damagedMembers_failWithZlibsError(name: String, base64: String) async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("found.gz")
        try writeFile(path, Self.bytes(base64))
        var outcomes: [(lines: [[UInt8]], error: String)] = []
        for codec in readingCodecs {
            let delivered = Collector<[UInt8]>()
            do {
                _ = try await Pipeline.lines(from: [path], options: ReadOptions(codec: codec))
                    .forEach { delivered.append(Array($0.bytes)) }
                    .run(RunOptions(computeThreads: 2))
                Issue.record("\(name): \(codec) read a damaged file without an error")
            } catch {
                outcomes.append((delivered.all, describe(error)))
            }
        }
        try #require(outcomes.count == readingCodecs.count)
        for (codec, outcome) in zip(readingCodecs, outcomes) {
            #expect(outcome.error == outcomes[0].error, "\(name): \(codec)")
            #expect(outcome.error.hasPrefix("corruptGzip \(path)"), "\(name): \(codec): \(outcome.error)")
            #expect(outcome.lines.starts(with: outcomes[0].lines), "\(name): \(codec)")
        }
    }
}
