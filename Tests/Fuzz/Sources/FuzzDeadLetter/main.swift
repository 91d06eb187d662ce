// The dead-letter writer on any record and error text: every letter is one line of valid JSON that gives back the
// record's exact bytes, the error, the stage and the origin.
import Foundation
import FuzzSupport

@testable import Sluice

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = fuzzInput(start, count)
    guard !data.isEmpty else { return 0 }
    // The first byte says where the record ends; the rest after it is the error's text (any bytes, as UTF-8 repairs).
    let split = min(Int(data[0]) * max(data.count / 256, 1) + 1, data.count)
    let record = Array(data[1..<split])
    let errorText = String(decoding: data[split...], as: UTF8.self)
    let letter = DeadLetter(
        record: record,
        error: errorText,
        stage: "parse\u{0}\u{1F}\"",
        source: "a\\b\n.log",
        line: 7
    )
    let json = letter.json
    fuzzCheck(!json.utf8.contains(UInt8(ascii: "\n")), "a letter spans lines")
    let object: Any
    do {
        object = try JSONSerialization.jsonObject(with: Data(json.utf8))
    } catch {
        fuzzFailure("not JSON: \(error): \(json)")
    }
    guard let fields = object as? [String: Any] else { fuzzFailure("not an object: \(json)") }
    if let text = fields["record"] as? String {
        fuzzCheck(Array(text.utf8) == record, "the record's text differs")
    } else if let encoded = fields["record_base64"] as? String, let decoded = Data(base64Encoded: encoded) {
        fuzzCheck(String(validating: record, as: UTF8.self) == nil, "valid UTF-8 written as base64")
        fuzzCheck(Array(decoded) == record, "the record's base64 gives other bytes")
    } else {
        fuzzFailure("no record: \(json)")
    }
    fuzzCheck(fields["error"] as? String == errorText, "the error's text differs")
    fuzzCheck(fields["stage"] as? String == letter.stage, "the stage differs")
    fuzzCheck(fields["source"] as? String == letter.source, "the source differs")
    fuzzCheck(fields["line"] as? Int == 7, "the line differs")
    return 0
}

runFuzzer { fuzz($0, $1) }
