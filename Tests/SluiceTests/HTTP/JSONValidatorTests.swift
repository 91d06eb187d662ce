import Foundation
import Testing

@testable import HTTPPipelines

/// http-post's check that each line is one JSON value, against Foundation's parser on random texts.
@Suite("JSON validator")
struct JSONValidatorTests {
    static func isValid(_ text: [UInt8]) -> Bool {
        (try? JSONValidator.validate(text)) != nil
    }

    @Test func acceptsJSONValues_andRefusesTheRest() {
        let valid = [
            "{}", "[]", "0", "-0", "1.5e-3", "-12E+4", "\"\"", "true", "false", "null",
            " {\"a\" : [1, {\"b\":null}]} \r",
            "\"\\u00e9\\n\\\"\\\\\\/\\b\\f\\r\\t\"", "\"é 日本 😀\"", "[[[[]]]]", "{\"a\":{\"b\":{}}}",
            "1234567890123456789012345",
        ]
        for text in valid {
            #expect(Self.isValid(Array(text.utf8)), "\(text)")
        }
        let invalid = [
            "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\"}", "{a:1}", "01", "1.", ".5", "-", "1e", "+1", "NaN",
            "tru",
            "nul", "\"abc", "\"\\x\"", "\"\\u12G4\"", "\"tab\there\"", "{} {}", "[1] x", "'a'", "[1 2]",
            "{\"a\":1 \"b\":2}",
        ]
        for text in invalid {
            #expect(!Self.isValid(Array(text.utf8)), "\(text)")
        }
        #expect(!Self.isValid([0x22, 0xC3, 0x28, 0x22]))  // a broken two-byte sequence
        #expect(!Self.isValid([0x22, 0xED, 0xA0, 0x80, 0x22]))  // a UTF-16 surrogate, encoded
        #expect(!Self.isValid([0x22, 0xC0, 0xAF, 0x22]))  // an overlong '/'
        #expect(
            !Self.isValid(
                Array(String(repeating: "[", count: 600).utf8) + Array(String(repeating: "]", count: 600).utf8)
            )
        )
        let error = #expect(throws: JSONValidator.Invalid.self) { try JSONValidator.validate(Array("[1, 2".utf8)) }
        #expect(error?.description == "not one JSON value: the text ends inside a container at byte 6")
    }

    /// Random texts built from JSON's pieces, some broken: the validator agrees with JSONSerialization on each.
    /// (A number is followed by a space, so digits never extend an exponent past what a Double holds: Foundation
    /// refuses such numbers, JSON's grammar does not.)
    @Test func agreesWithFoundation_onRandomTexts() throws {
        var generator = SplitMix(seed: 42)
        let pieces = [
            "{", "}", "[", "]", ",", ":", "\"k\"", "\"v\\n\"", "1", "-2.5e3 ", "true", "false", "null", " ", "0",
            "\"é\"", "01", "\"", "\\", "x",
        ]
        for _ in 0..<20_000 {
            let count = Int(generator.next() % 8) + 1
            let text = (0..<count).map { _ in pieces[Int(generator.next() % UInt64(pieces.count))] }.joined()
            let bytes = Array(text.utf8)
            let foundation =
                (try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])) != nil
            #expect(Self.isValid(bytes) == foundation, "\(text)")
        }
    }
}
