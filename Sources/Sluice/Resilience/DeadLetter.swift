/// A record a stage could not process, with its error: what a ``DeadLetters`` destination receives.
public struct DeadLetter: Sendable, Hashable {
    /// The record's bytes: a ``Line``'s bytes, a `String`'s UTF-8, a ``DeadLetterRepresentable`` record's
    /// ``DeadLetterRepresentable/deadLetterBytes``, or the record's description for other types.
    public var record: [UInt8]
    /// The error, as text.
    public var error: String
    /// The stage that failed on the record.
    public var stage: String
    /// The file the record was read from, when known.
    public var source: String?
    /// The record's line number in that file (from 1), when known.
    public var line: Int?

    /// The letter as one line of JSON: `record` (or `record_base64` when the bytes are not valid UTF-8, so the
    /// original bytes are kept exactly), `error`, `stage`, and `source` and `line` when known.
    public var json: String {
        var fields: [String] = []
        if let text = String(validating: self.record, as: UTF8.self) {
            fields.append("\"record\":\(JSON.quote(text))")
        } else {
            fields.append("\"record_base64\":\"\(Base64.encode(self.record))\"")
        }
        fields.append("\"error\":\(JSON.quote(self.error))")
        fields.append("\"stage\":\(JSON.quote(self.stage))")
        if let source = self.source { fields.append("\"source\":\(JSON.quote(source))") }
        if let line = self.line { fields.append("\"line\":\(line)") }
        return "{" + fields.joined(separator: ",") + "}"
    }

    /// A letter for `record`, taking its bytes and origin from what the record is.
    static func make(_ record: some Sendable, error: any Error, stage: String) -> DeadLetter {
        var letter = DeadLetter(record: [], error: "\(error)", stage: stage)
        switch record {
        case let line as Line:
            letter.record = Array(line.bytes)
            letter.source = line.sourcePath
            letter.line = line.lineNumber
        case let string as String:
            letter.record = Array(string.utf8)
        case let bytes as [UInt8]:
            letter.record = bytes
        case let representable as any DeadLetterRepresentable:
            letter.record = representable.deadLetterBytes
        default:
            letter.record = Array("\(record)".utf8)
        }
        if let located = record as? any LocatedRecord, letter.source == nil, letter.line == nil {
            letter.source = located.sourcePath
            letter.line = located.lineNumber
        }
        return letter
    }
}

/// A record type that says which bytes its dead letter keeps (with ``LocatedRecord``, where it came from): a
/// wrapper around a ``Line`` can keep the line's own bytes rather than its description.
public protocol DeadLetterRepresentable {
    /// The bytes a dead letter keeps for this record.
    var deadLetterBytes: [UInt8] { get }
}
