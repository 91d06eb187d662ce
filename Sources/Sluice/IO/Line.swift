import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One line of text input, without its `\n`: a view into a buffer shared with the other lines read with it.
///
/// Reading makes no `String` and no array per line: a line is a reference to the chunk it was read in and a
/// range. Bytes pass through unchanged — `\r`, NUL and invalid UTF-8 included; ``string`` decodes on demand
/// (replacing invalid UTF-8) when you need text.
///
/// - Important: A line keeps its whole chunk (up to a few hundred KiB) alive. To keep a few lines long after the
///   run, copy their bytes (`Array(line.bytes)`) or strings.
public struct Line: Sendable {
    // Variables only so that walking a columnar batch can move one line over its slots (see
    // `LineColumns.forEachLine`); no public API changes a line.
    @usableFromInline var storage: [UInt8]
    @usableFromInline var start: Int
    @usableFromInline var end: Int
    /// The line's number in its file (from 1), 0 when unknown.
    @usableFromInline var number: Int
    /// The file it was read from, as an id in ``LineSources`` (-1 when unknown): two words, no reference to count.
    @usableFromInline var source: Int32

    @usableFromInline
    init(storage: [UInt8], start: Int, end: Int, number: Int = 0, source: Int32 = -1) {
        self.storage = storage
        self.start = start
        self.end = end
        self.number = number
        self.source = source
    }

    /// A line holding `bytes` (which should not contain `\n`).
    public init(bytes: [UInt8]) {
        self.init(storage: bytes, start: 0, end: bytes.count)
    }

    /// The line's number in the file it was read from (from 1), if it was read from a file.
    public var lineNumber: Int? { self.number > 0 ? self.number : nil }

    /// The path of the file the line was read from (`"-"` for standard input), if it was read from a file.
    public var sourcePath: String? { LineSources.shared.path(for: self.source) }

    /// A line holding the UTF-8 of `string` (which should not contain `\n`).
    public init(_ string: String) {
        self.init(bytes: Array(string.utf8))
    }

    /// The number of bytes in the line, without the `\n`.
    @inlinable public var count: Int { self.end - self.start }

    /// Whether the line has no bytes.
    @inlinable public var isEmpty: Bool { self.end == self.start }

    /// The line's bytes.
    @inlinable public var bytes: ArraySlice<UInt8> { self.storage[self.start..<self.end] }

    /// The line decoded as UTF-8, with invalid sequences replaced by U+FFFD.
    public var string: String { String(decoding: self.bytes, as: UTF8.self) }

    /// Calls `body` with the line's bytes, without copying them.
    @inlinable
    public func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try self.storage.withUnsafeBytes { all in
            try body(UnsafeRawBufferPointer(rebasing: all[self.start..<self.end]))
        }
    }

    /// Whether the line contains the byte string `needle` (an empty needle is always contained).
    public func contains(_ needle: some Collection<UInt8>) -> Bool {
        // A contiguous needle (an array, a string's UTF-8) is searched in place: no copy per line.
        if let found = needle.withContiguousStorageIfAvailable({ self.contains(UnsafeRawBufferPointer($0)) }) {
            return found
        }
        return Array(needle).withUnsafeBytes { self.contains($0) }
    }

    @usableFromInline
    func contains(_ needle: UnsafeRawBufferPointer) -> Bool {
        self.withUnsafeBytes { haystack in Self.bytes(haystack, contain: needle) }
    }

    /// Whether `haystack` contains `needle` (an empty needle is always contained).
    static func bytes(_ haystack: UnsafeRawBufferPointer, contain needle: UnsafeRawBufferPointer) -> Bool {
        guard !needle.isEmpty else { return true }
        return Self.firstOccurrence(of: needle, in: haystack) != nil
    }

    /// Where `needle` (not empty) first occurs in `haystack`, or `nil`.
    ///
    /// `memchr` to the next candidate, then a cheap check of the last byte, then `memcmp` (glibc's `memmem` is not
    /// exported). The candidate is found by the needle's first byte that is not a space: spaces are the commonest
    /// byte in text, and anchoring on one would send almost every space of the line to `memcmp`.
    static func firstOccurrence(of needle: UnsafeRawBufferPointer, in haystack: UnsafeRawBufferPointer) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        let anchor = needle.firstIndex { $0 != 0x20 } ?? 0
        let anchorByte = Int32(needle[anchor])
        let lastByte = needle[needle.count - 1]
        let lastStart = haystack.count - needle.count
        var start = 0
        while start <= lastStart {
            let from = haystack.baseAddress! + start + anchor
            guard let found = memchr(from, anchorByte, lastStart - start + 1) else { return nil }
            start = UnsafeRawPointer(found) - haystack.baseAddress! - anchor
            if haystack[start + needle.count - 1] == lastByte
                && memcmp(haystack.baseAddress! + start, needle.baseAddress!, needle.count) == 0
            {
                return start
            }
            start += 1
        }
        return nil
    }
}

extension Line: LocatedRecord {}

extension Line: ByteSized {
    @inlinable public var byteCount: Int { self.count }
}

extension Line: Equatable, Hashable {
    public static func == (lhs: Line, rhs: Line) -> Bool {
        lhs.count == rhs.count && lhs.bytes.elementsEqual(rhs.bytes)
    }

    public func hash(into hasher: inout Hasher) {
        self.withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}

extension Line: CustomStringConvertible, ExpressibleByStringLiteral {
    public var description: String { self.string }

    public init(stringLiteral value: String) {
        self.init(value)
    }
}

/// The files lines were read from, interned so a ``Line`` carries a small id instead of a counted reference.
final class LineSources: Sendable {
    static let shared = LineSources()

    private struct Table {
        var paths: [String] = []
        var ids: [String: Int32] = [:]
    }

    private let table = Locked(Table())

    func id(for path: String) -> Int32 {
        self.table.withLock { table in
            if let id = table.ids[path] { return id }
            let id = Int32(table.paths.count)
            table.paths.append(path)
            table.ids[path] = id
            return id
        }
    }

    func path(for id: Int32) -> String? {
        guard id >= 0 else { return nil }
        return self.table.withLock { Int(id) < $0.paths.count ? $0.paths[Int(id)] : nil }
    }
}
