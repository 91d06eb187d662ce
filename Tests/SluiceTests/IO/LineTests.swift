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
