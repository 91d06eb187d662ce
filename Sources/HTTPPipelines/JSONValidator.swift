/// Checks that bytes are exactly one JSON value (RFC 8259), with whitespace around it: what `http-post` asks of
/// each NDJSON line. A byte scanner: no values are built, nothing is allocated but a stack of open containers.
enum JSONValidator {
    /// Why a text is not one JSON value, and where.
    struct Invalid: Error, Equatable, CustomStringConvertible {
        var offset: Int
        var reason: String

        var description: String { "not one JSON value: \(self.reason) at byte \(self.offset + 1)" }
    }

    /// Containers nested deeper than this are refused (a guard for the stack, not a JSON rule).
    static let maxDepth = 512

    static func validate(_ bytes: UnsafeBufferPointer<UInt8>) throws(Invalid) {
        var scanner = Scanner(bytes: bytes)
        scanner.skipWhitespace()
        try scanner.value()
        scanner.skipWhitespace()
        guard scanner.index == bytes.count else {
            throw Invalid(offset: scanner.index, reason: "more after the value")
        }
    }

    static func validate(_ bytes: some Collection<UInt8>) throws(Invalid) {
        let result: Result<Void, Invalid>? = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(Invalid) in try Self.validate(buffer) }
        }
        if let result { return try result.get() }
        let copy = Array(bytes)
        try copy.withUnsafeBufferPointer { buffer throws(Invalid) in try Self.validate(buffer) }
    }

    private struct Scanner {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        var peek: UInt8? { self.index < self.bytes.count ? self.bytes[self.index] : nil }

        func fail(_ reason: String) -> Invalid { Invalid(offset: self.index, reason: reason) }

        mutating func skipWhitespace() {
            while let byte = self.peek, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 {
                self.index += 1
            }
        }

        /// One value, containers included, with an explicit stack of open containers (`true` for an object).
        mutating func value() throws(Invalid) {
            var open: [Bool] = []
            while true {
                // A value, or the end of an empty container.
                guard let byte = self.peek else { throw self.fail("the text ends where a value should be") }
                switch byte {
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    guard open.count < JSONValidator.maxDepth else { throw self.fail("nested too deep") }
                    let isObject = byte == UInt8(ascii: "{")
                    self.index += 1
                    self.skipWhitespace()
                    let close = isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
                    if self.peek == close {
                        self.index += 1
                        break  // an empty container: a complete value
                    }
                    open.append(isObject)
                    if isObject { try self.key() }
                    continue
                case UInt8(ascii: "\""):
                    try self.string()
                case UInt8(ascii: "t"):
                    try self.literal("true")
                case UInt8(ascii: "f"):
                    try self.literal("false")
                case UInt8(ascii: "n"):
                    try self.literal("null")
                case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    try self.number()
                default:
                    throw self.fail("unexpected byte 0x\(String(byte, radix: 16))")
                }
                // After a complete value: the next member or element, or the end of containers.
                while true {
                    guard let isObject = open.last else { return }
                    self.skipWhitespace()
                    guard let next = self.peek else { throw self.fail("the text ends inside a container") }
                    if next == UInt8(ascii: ",") {
                        self.index += 1
                        self.skipWhitespace()
                        if isObject { try self.key() }
                        break  // the next value
                    }
                    guard next == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) else {
                        throw self.fail(isObject ? "expected ',' or '}'" : "expected ',' or ']'")
                    }
                    self.index += 1
                    open.removeLast()
                }
            }
        }

        /// A member's key and its colon, leaving the scanner at the member's value.
        mutating func key() throws(Invalid) {
            guard self.peek == UInt8(ascii: "\"") else { throw self.fail("expected a string key") }
            try self.string()
            self.skipWhitespace()
            guard self.peek == UInt8(ascii: ":") else { throw self.fail("expected ':'") }
            self.index += 1
            self.skipWhitespace()
        }

        mutating func literal(_ word: StaticString) throws(Invalid) {
            let count = word.utf8CodeUnitCount
            guard self.index + count <= self.bytes.count else { throw self.fail("not a literal") }
            for offset in 0..<count where self.bytes[self.index + offset] != word.utf8Start[offset] {
                throw self.fail("not a literal")
            }
            self.index += count
        }

        mutating func number() throws(Invalid) {
            if self.peek == UInt8(ascii: "-") { self.index += 1 }
            guard let first = self.peek, first.isDigit else { throw self.fail("expected a digit") }
            self.index += 1
            if first != UInt8(ascii: "0") { self.skipDigits() }
            if self.peek == UInt8(ascii: ".") {
                self.index += 1
                guard self.peek?.isDigit == true else { throw self.fail("expected a digit after '.'") }
                self.skipDigits()
            }
            if self.peek == UInt8(ascii: "e") || self.peek == UInt8(ascii: "E") {
                self.index += 1
                if self.peek == UInt8(ascii: "+") || self.peek == UInt8(ascii: "-") { self.index += 1 }
                guard self.peek?.isDigit == true else { throw self.fail("expected a digit in the exponent") }
                self.skipDigits()
            }
        }

        mutating func skipDigits() {
            while let byte = self.peek, byte.isDigit { self.index += 1 }
        }

        /// A string: no control characters, valid escapes, valid UTF-8 (no surrogates, no overlong forms).
        mutating func string() throws(Invalid) {
            self.index += 1  // the opening quote
            while true {
                guard let byte = self.peek else { throw self.fail("the text ends inside a string") }
                switch byte {
                case UInt8(ascii: "\""):
                    self.index += 1
                    return
                case UInt8(ascii: "\\"):
                    self.index += 1
                    guard let escaped = self.peek else { throw self.fail("the text ends inside a string") }
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                        UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        self.index += 1
                    case UInt8(ascii: "u"):
                        self.index += 1
                        for _ in 0..<4 {
                            guard let hex = self.peek, hex.isHexDigit else { throw self.fail("bad \\u escape") }
                            self.index += 1
                        }
                    default:
                        throw self.fail("bad escape")
                    }
                case 0..<0x20:
                    throw self.fail("a control character in a string")
                case 0..<0x80:
                    self.index += 1
                default:
                    try self.utf8Sequence(byte)
                }
            }
        }

        /// One multi-byte UTF-8 sequence starting with `lead` (Unicode table 3-7: well-formed sequences only).
        mutating func utf8Sequence(_ lead: UInt8) throws(Invalid) {
            let count: Int
            var low: UInt8 = 0x80
            var high: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF: count = 1
            case 0xE0: (count, low) = (2, 0xA0)
            case 0xE1...0xEC, 0xEE...0xEF: count = 2
            case 0xED: (count, high) = (2, 0x9F)
            case 0xF0: (count, low) = (3, 0x90)
            case 0xF1...0xF3: count = 3
            case 0xF4: (count, high) = (3, 0x8F)
            default: throw self.fail("invalid UTF-8")
            }
            guard self.index + count < self.bytes.count else { throw self.fail("invalid UTF-8") }
            for offset in 1...count {
                let byte = self.bytes[self.index + offset]
                let range: ClosedRange<UInt8> = offset == 1 ? low...high : 0x80...0xBF
                guard range.contains(byte) else { throw self.fail("invalid UTF-8") }
            }
            self.index += count + 1
        }
    }
}

extension UInt8 {
    fileprivate var isDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }
    fileprivate var isHexDigit: Bool {
        self.isDigit || (self >= UInt8(ascii: "a") && self <= UInt8(ascii: "f"))
            || (self >= UInt8(ascii: "A") && self <= UInt8(ascii: "F"))
    }
}
