#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// Reading fields out of a line without making a `String` or an array: the fields are lines themselves — views into
// the same buffer — and numbers are parsed from the bytes in place.
//
//     let fields = line.fields()                        // split on spaces, lazily
//     for field in fields where field.hasPrefix("status=") { … }
//     let status = line.field(8)?.int                   // the ninth space-separated field, as an Int
//     if line.contains("GET") && line.trimmed.hasSuffix("}") { … }

extension Line {
    /// Whether the line contains `text`'s UTF-8 bytes: a string literal, searched in place.
    @inlinable
    public func contains(_ text: StaticString) -> Bool {
        self.contains(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Whether the line contains `text`'s UTF-8 bytes (a native string is searched in place, without a copy).
    @inlinable
    public func contains(_ text: String) -> Bool {
        self.contains(text.utf8)
    }

    /// Whether the line starts with `text`'s UTF-8 bytes.
    @inlinable
    public func hasPrefix(_ text: StaticString) -> Bool {
        self.hasPrefix(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Whether the line starts with `text`'s UTF-8 bytes.
    @inlinable
    public func hasPrefix(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { self.hasPrefix(UnsafeRawBufferPointer($0)) }
    }

    /// Whether the line ends with `text`'s UTF-8 bytes.
    @inlinable
    public func hasSuffix(_ text: StaticString) -> Bool {
        self.hasSuffix(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Whether the line ends with `text`'s UTF-8 bytes.
    @inlinable
    public func hasSuffix(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { self.hasSuffix(UnsafeRawBufferPointer($0)) }
    }

    /// Whether the line's bytes are exactly `text`'s UTF-8 bytes.
    @inlinable
    public func equals(_ text: StaticString) -> Bool {
        self.count == text.utf8CodeUnitCount && self.hasPrefix(text)
    }

    /// Whether the line's bytes are exactly `text`'s UTF-8 bytes.
    @inlinable
    public func equals(_ text: String) -> Bool {
        self.count == text.utf8.count && self.hasPrefix(text)
    }

    @usableFromInline
    func hasPrefix(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count <= self.count else { return false }
        guard !bytes.isEmpty else { return true }
        return self.withUnsafeBytes { memcmp($0.baseAddress!, bytes.baseAddress!, bytes.count) == 0 }
    }

    @usableFromInline
    func hasSuffix(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count <= self.count else { return false }
        guard !bytes.isEmpty else { return true }
        return self.withUnsafeBytes {
            memcmp($0.baseAddress! + $0.count - bytes.count, bytes.baseAddress!, bytes.count) == 0
        }
    }

    /// The part of the line from byte `from` to byte `to` (offsets in the line), as a line of its own: a view into
    /// the same buffer, with the same origin.
    @inlinable
    public func slice(_ from: Int, _ to: Int) -> Line {
        let lower = self.start + min(max(from, 0), self.count)
        let upper = max(lower, self.start + min(max(to, 0), self.count))
        return Line(storage: self.storage, start: lower, end: upper, number: self.number, source: self.source)
    }

    /// The line without its first `count` bytes.
    @inlinable
    public func dropFirst(_ count: Int = 1) -> Line { self.slice(count, self.count) }

    /// The line without its last `count` bytes.
    @inlinable
    public func dropLast(_ count: Int = 1) -> Line { self.slice(0, self.count - count) }

    /// The line without the ASCII white space (space, `\t`, `\r`, `\n`, `\v`, `\f`) at its start and end.
    @inlinable
    public var trimmed: Line {
        self.withUnsafeBytes { bytes in
            var lower = 0
            var upper = bytes.count
            while lower < upper && Self.isSpace(bytes[lower]) { lower += 1 }
            while upper > lower && Self.isSpace(bytes[upper - 1]) { upper -= 1 }
            return self.slice(lower, upper)
        }
    }

    @inlinable
    static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || (byte >= 0x09 && byte <= 0x0d)
    }

    /// The fields of the line between `separator` bytes (a space by default), lazily, as lines: no array and no copy.
    /// Two separators in a row make an empty field; a line of `n` separators has `n + 1` fields.
    @inlinable
    public func fields(separatedBy separator: UInt8 = UInt8(ascii: " ")) -> Fields {
        Fields(line: self, separator: separator)
    }

    /// The field at `index` (from 0) between `separator` bytes, or `nil` if the line has fewer fields.
    @inlinable
    public func field(_ index: Int, separatedBy separator: UInt8 = UInt8(ascii: " ")) -> Line? {
        var position = 0
        for field in self.fields(separatedBy: separator) {
            if position == index { return field }
            position += 1
        }
        return nil
    }

    /// The storage index of the first `byte` at or after `from` within the line, or the line's end.
    @usableFromInline
    func firstIndex(of byte: UInt8, from: Int) -> Int {
        guard from < self.end else { return self.end }
        return self.storage.withUnsafeBytes { bytes in
            guard let found = memchr(bytes.baseAddress! + from, Int32(byte), self.end - from) else { return self.end }
            return UnsafeRawPointer(found) - bytes.baseAddress!
        }
    }

    /// The fields of a line, as lines (see ``Line/fields(separatedBy:)``).
    public struct Fields: Sequence, Sendable {
        @usableFromInline let line: Line
        @usableFromInline let separator: UInt8

        @inlinable
        init(line: Line, separator: UInt8) {
            self.line = line
            self.separator = separator
        }

        @inlinable
        public func makeIterator() -> Iterator {
            Iterator(line: self.line, separator: self.separator)
        }

        public struct Iterator: IteratorProtocol {
            @usableFromInline let line: Line
            @usableFromInline let separator: UInt8
            /// Where the next field starts, in the storage; past `line.end` once the last field was given.
            @usableFromInline var position: Int

            @inlinable
            init(line: Line, separator: UInt8) {
                self.line = line
                self.separator = separator
                self.position = line.start
            }

            @inlinable
            public mutating func next() -> Line? {
                guard self.position <= self.line.end else { return nil }
                let start = self.position
                let end = self.line.firstIndex(of: self.separator, from: start)
                self.position = end + 1
                return Line(
                    storage: self.line.storage,
                    start: start,
                    end: end,
                    number: self.line.number,
                    source: self.line.source
                )
            }
        }
    }

    /// The line as a decimal integer — an optional `+` or `-`, then digits, nothing else — or `nil` (also on
    /// overflow).
    @inlinable
    public var int: Int? {
        self.withUnsafeBytes { bytes -> Int? in
            var index = 0
            var negative = false
            if index < bytes.count && (bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+")) {
                negative = bytes[index] == UInt8(ascii: "-")
                index += 1
            }
            guard index < bytes.count else { return nil }
            var value = 0
            while index < bytes.count {
                let digit = Int(bytes[index]) &- 48
                guard digit >= 0 && digit <= 9 else { return nil }
                let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) =
                    negative ? times10.subtractingReportingOverflow(digit) : times10.addingReportingOverflow(digit)
                guard !overflow1 && !overflow2 else { return nil }
                value = sum
                index += 1
            }
            return value
        }
    }

    /// The line as a decimal number — `12`, `-3.25`, `.5`, `1e-3` — correctly rounded, or `nil` for anything else
    /// (white space, hexadecimal, `inf`, `nan`, a number over 63 bytes).
    public var decimal: Double? {
        self.withUnsafeBytes { bytes -> Double? in
            guard !bytes.isEmpty && bytes.count < 64 else { return nil }
            var digits = 0
            for byte in bytes {
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digits += 1
                case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"):
                    break
                default: return nil
                }
            }
            guard digits > 0 else { return nil }
            // strtod on a copy on the stack, ended by a NUL: correctly rounded, and nothing on the heap.
            return withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { buffer -> Double? in
                let base = buffer.baseAddress!
                UnsafeMutableRawPointer(base).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
                base[bytes.count] = 0
                var end: UnsafeMutablePointer<CChar>?
                let value = strtod(base, &end)
                return end == base + bytes.count ? value : nil
            }
        }
    }
}
