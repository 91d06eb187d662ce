import Testing

@testable import Sluice

@Suite("Line helpers")
struct LineFieldTests {
    static let log = Line(
        #"165.77.202.24 - - [21/Nov/2026:05:00:00 +0000] "GET /health?id=12337 HTTP/1.1" 200 38193 "curl/8" ok"#
    )

    @Test func contains_hasPrefix_hasSuffix_andEquals_takeStringsAndLiterals() {
        let line = Self.log
        #expect(line.contains("GET"))
        #expect(!line.contains("POST"))
        let method = "GET /health"
        #expect(line.contains(method))
        #expect(line.hasPrefix("165.77."))
        #expect(line.hasPrefix(String("165.")))
        #expect(!line.hasPrefix("166"))
        #expect(line.hasSuffix(" ok"))
        #expect(line.hasSuffix(String("ok")))
        #expect(line.hasPrefix("") && line.hasSuffix("") && line.contains(""))
        #expect(!Line("ab").hasPrefix("abc") && !Line("ab").hasSuffix("zab"))
        #expect(Line("GET").equals("GET") && !Line("GETS").equals("GET") && Line("é").equals(String("é")))
    }

    @Test func fields_areViewsBetweenSeparators_emptyOnesIncluded() {
        let fields = Line("a  b,c ").fields().map(\.string)
        #expect(fields == ["a", "", "b,c", ""])
        #expect(Line("").fields().map(\.string) == [""])
        #expect(Line("x,y,,z").fields(separatedBy: UInt8(ascii: ",")).map(\.string) == ["x", "y", "", "z"])
        #expect(Self.log.field(5)?.string == "\"GET")
        #expect(Self.log.field(8)?.int == 200)
        #expect(Self.log.field(99) == nil)
    }

    @Test func fields_keepTheLinesOrigin() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("in.txt")
        try writeFile(path, Array("first line\nsecond line\n".utf8))
        let fields = try await Pipeline.lines(from: [path])
            .map { line -> Line in line.field(1)! }
            .collect()
            .run()
            .result
        #expect(fields.map(\.string) == ["line", "line"])
        #expect(fields.map(\.lineNumber) == [1, 2])
        #expect(fields.allSatisfy { $0.sourcePath == path })
    }

    @Test(arguments: [
        ("0", 0), ("42", 42), ("-17", -17), ("+8", 8), ("9223372036854775807", Int.max),
        ("-9223372036854775808", Int.min),
    ])
    func int_parsesDecimalIntegers(text: String, value: Int) {
        #expect(Line(text).int == value)
    }

    @Test(arguments: ["", "-", "+", "1.5", " 1", "1 ", "0x10", "12a", "9223372036854775808", "--1"])
    func int_isNilForAnythingElse(text: String) {
        #expect(Line(text).int == nil)
    }

    @Test(arguments: [
        ("0", 0.0), ("12.5", 12.5), ("-3.25", -3.25), (".5", 0.5), ("1e-3", 0.001), ("2E2", 200), ("0.1", 0.1),
    ])
    func decimal_parsesNumbers_correctlyRounded(text: String, value: Double) {
        #expect(Line(text).decimal == value)
    }

    @Test(arguments: ["", ".", "-", "1.2.3x", " 1", "inf", "nan", "0x1p3", "1e", String(repeating: "1", count: 64)])
    func decimal_isNilForAnythingElse(text: String) {
        #expect(Line(text).decimal == nil)
    }

    @Test func trimmed_dropFirst_andDropLast_makeViews() {
        #expect(Line(" \t value \r").trimmed.string == "value")
        #expect(Line("   ").trimmed.isEmpty)
        #expect(Line("\"GET").dropFirst().string == "GET")
        #expect(Line("1.1\"").dropLast().string == "1.1")
        #expect(Line("ab").dropFirst(5).isEmpty && Line("ab").dropLast(5).isEmpty)
        #expect(Line("abcdef").slice(2, 4).string == "cd")
    }
}
