import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A record a stage could not process, with its error: what a ``DeadLetters`` destination receives.
public struct DeadLetter: Sendable, Hashable {
    /// The record's bytes: a ``Line``'s bytes, a `String`'s UTF-8, or the record's description for other types.
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
        default:
            letter.record = Array("\(record)".utf8)
        }
        return letter
    }
}

/// Where records a stage gave up on go, with their errors, so the run can go on (``ErrorPolicy/deadLetter(_:)``).
///
/// ```swift
/// let rejects = DeadLetters.file("rejects.ndjson")      // NDJSON, one letter per line
/// let kept = DeadLetters.memory()                         // in memory: kept.letters
/// ```
///
/// A file is created (or replaced) when the first letter arrives, written on the run's compute pool, and closed
/// when the run ends; later runs append to it.
public final class DeadLetters: Sendable {
    private enum Destination {
        case memory
        case file(path: String)
    }

    private struct State {
        var letters: [DeadLetter] = []
        var descriptor: Int32 = -1
        var opened = false
    }

    private let destination: Destination
    private let state = Locked(State())

    private init(_ destination: Destination) {
        self.destination = destination
    }

    /// Letters written as NDJSON to the file at `path`.
    public static func file(_ path: String) -> DeadLetters {
        DeadLetters(.file(path: path))
    }

    /// Letters kept in memory, in ``letters``.
    public static func memory() -> DeadLetters {
        DeadLetters(.memory)
    }

    /// The letters kept in memory (empty for a file destination).
    public var letters: [DeadLetter] {
        self.state.withLock { $0.letters }
    }

    /// The number of letters received.
    public var count: Int {
        self.state.withLock { $0.letters.count }
    }

    func send(_ letter: DeadLetter, pool: ComputePool?) async throws {
        switch self.destination {
        case .memory:
            self.state.withLock { $0.letters.append(letter) }
        case .file(let path):
            let line = Array((letter.json + "\n").utf8)
            let write: @Sendable () throws -> Void = { try self.append(line, to: path) }
            if let pool {
                try await pool.run(write)
            } else {
                try write()
            }
            // Only the count is kept for files: the letters themselves are on disk.
            self.state.withLock { $0.letters.append(DeadLetter(record: [], error: "", stage: letter.stage)) }
        }
    }

    /// Closes the file, if one is open; the next letter appends to it.
    func close() {
        self.state.withLock { state in
            if state.descriptor >= 0 {
                Glibc.close(state.descriptor)
                state.descriptor = -1
            }
        }
    }

    private func append(_ bytes: [UInt8], to path: String) throws {
        try self.state.withLock { state in
            if state.descriptor < 0 {
                // The first letter of the destination replaces an old file; later runs append.
                let mode = state.opened ? O_APPEND : O_TRUNC
                state.descriptor = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | mode, 0o644)
                guard state.descriptor >= 0 else { throw FileError.system(errno, "open", path: path) }
                state.opened = true
            }
            let descriptor = state.descriptor
            var written = 0
            try bytes.withUnsafeBytes { buffer in
                while written < buffer.count {
                    let result = write(descriptor, buffer.baseAddress! + written, buffer.count - written)
                    if result < 0 {
                        if errno == EINTR { continue }
                        throw FileError.system(errno, "write", path: path)
                    }
                    written += result
                }
            }
        }
    }
}

enum JSON {
    /// `text` as a JSON string literal.
    static func quote(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}

enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            let value = chunk.enumerated().reduce(0) { $0 | (UInt32($1.element) << (16 - 8 * UInt32($1.offset))) }
            for position in 0..<4 {
                if position <= chunk.count {
                    output.append(self.alphabet[Int((value >> (18 - 6 * UInt32(position))) & 0x3f)])
                } else {
                    output.append(UInt8(ascii: "="))
                }
            }
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }
}
