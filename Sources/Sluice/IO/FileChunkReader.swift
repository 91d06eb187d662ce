#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Decoded bytes of one input file, as they travel from the reading stage to the line framer.
struct ByteChunk: Sendable, ByteSized {
    var bytes: [UInt8]
    /// The file the bytes come from, as given.
    var path: String
    /// The position of the first byte in the file's decoded data.
    var offset: Int
    /// Whether this is the file's last chunk (it may be empty).
    var endOfFile: Bool
    /// Whether reading stopped early (a graceful shutdown): a line cut short at the end is not a record.
    var stopped = false

    var byteCount: Int { self.bytes.count }
}

/// Reads files (or standard input) one after the other, in large chunks, decoding gzip ones.
///
/// gzip is recognised by its magic bytes `1f 8b`, not by the file's name; anything else is passed through as is.
///
/// - Important: Blocking and CPU-heavy: only a stage placed on a ``ComputePool`` calls it.
final class FileChunkReader {
    private let paths: [String]
    private let chunkSize: Int
    private let shutdown: ShutdownSignal?
    private var stopped = false
    private var nextPath = 0
    private var file: FileDescriptor?
    private var decoder: GzipDecoder?
    /// Bytes read from the current file as stored, and decoded bytes handed out for it.
    private var storedOffset = 0
    private var decodedOffset = 0
    private var pendingError: FileError?
    /// Bytes read as stored and handed out decoded, over all files (for the run report).
    private(set) var totalStored = 0
    private(set) var totalDecoded = 0

    init(paths: [String], chunkSize: Int, shutdown: ShutdownSignal? = nil) {
        self.paths = paths
        self.chunkSize = chunkSize
        self.shutdown = shutdown
    }

    /// The next decoded chunks, in order; an empty array once every file was read.
    ///
    /// - Throws: ``FileError`` naming the file and the byte offset. Chunks decoded before a problem are returned
    ///   by the call before the one that throws, so none is lost.
    func next() throws(FileError) -> [ByteChunk] {
        if let error = self.pendingError {
            self.pendingError = nil
            throw error
        }
        while true {
            guard !self.stopped else { return [] }
            guard let file = self.file else {
                guard self.nextPath < self.paths.count, !(self.shutdown?.isRequested ?? false) else { return [] }
                try self.open(self.paths[self.nextPath])
                self.nextPath += 1
                continue
            }
            if let head = self.pendingHead {
                // The bytes read to sniff the format go on at once: on a pipe, more may not come for a while.
                self.pendingHead = nil
                let chunks = try self.decode(head, endOfFile: false, from: file)
                if !chunks.isEmpty { return chunks }
                continue
            }
            if let shutdown = self.shutdown {
                if shutdown.isRequested { return self.stop(file) }
                if try !file.waitUntilReadable(orWoken: shutdown.wakeDescriptor) { return self.stop(file) }
            }
            let raw = try file.read(upTo: self.chunkSize, offset: self.storedOffset)
            let chunks = try self.decode(raw, endOfFile: raw.isEmpty, from: file)
            if !chunks.isEmpty { return chunks }
        }
    }

    /// A graceful shutdown: stop reading, and hand on what was decoded (a gzip member cut short is not an error
    /// here — the reading stopped on purpose).
    private func stop(_ file: FileDescriptor) -> [ByteChunk] {
        self.stopped = true
        var decoded = self.decoder?.takeRemainingChunks() ?? []
        if let head = self.pendingHead, self.decoder == nil {
            decoded.append(head)
            self.pendingHead = nil
        }
        var chunks: [ByteChunk] = []
        for bytes in decoded {
            chunks.append(ByteChunk(bytes: bytes, path: file.path, offset: self.decodedOffset, endOfFile: false))
            self.decodedOffset += bytes.count
            self.totalDecoded += bytes.count
        }
        chunks.append(
            ByteChunk(bytes: [], path: file.path, offset: self.decodedOffset, endOfFile: true, stopped: true)
        )
        self.close()
        return chunks
    }

    /// Closes the current file, if any (after an error, or when the reading stage stops early).
    func close() {
        self.decoder?.end()
        self.decoder = nil
        try? self.file?.close()
        self.file = nil
    }

    private func open(_ path: String) throws(FileError) {
        let file = try FileDescriptor.openForReading(path)
        self.file = file
        self.storedOffset = 0
        self.decodedOffset = 0
        // Sniff the magic bytes; a pipe may deliver fewer than two bytes at first.
        var head = try file.read(upTo: self.chunkSize, offset: 0)
        while head.count == 1 {
            let more = try file.read(upTo: self.chunkSize, offset: head.count)
            if more.isEmpty { break }
            head += more
        }
        if head.count >= 2 && head[0] == 0x1f && head[1] == 0x8b {
            self.decoder = try GzipDecoder(path: path, chunkSize: self.chunkSize)
        }
        self.pendingHead = head
    }

    /// The first bytes read while sniffing, still to be decoded.
    private var pendingHead: [UInt8]?

    private func decode(_ input: [UInt8], endOfFile: Bool, from file: FileDescriptor) throws(FileError) -> [ByteChunk] {
        self.storedOffset += input.count
        self.totalStored += input.count
        var decoded: [[UInt8]]
        if let decoder = self.decoder {
            do {
                try input.withUnsafeBytes { try decoder.decode($0) }
                if endOfFile { try decoder.finish() }
            } catch {
                // Hand out what was decoded before the problem; throw on the next call.
                self.pendingError =
                    error as? FileError ?? FileError(code: .corruptGzip, path: file.path, detail: "\(error)")
            }
            decoded = decoder.takeChunks()
        } else {
            decoded = input.isEmpty ? [] : [input]
        }
        let failed = self.pendingError != nil
        var chunks: [ByteChunk] = []
        for (index, bytes) in decoded.enumerated() {
            let last = (endOfFile || failed) && index == decoded.count - 1
            chunks.append(ByteChunk(bytes: bytes, path: file.path, offset: self.decodedOffset, endOfFile: last))
            self.decodedOffset += bytes.count
            self.totalDecoded += bytes.count
        }
        if (endOfFile || failed) && decoded.isEmpty {
            chunks.append(ByteChunk(bytes: [], path: file.path, offset: self.decodedOffset, endOfFile: true))
        }
        if endOfFile || failed {
            self.close()
        }
        return chunks
    }
}

/// Splits decoded bytes into ``Line``s on `\n`, carrying a partial line from one chunk to the next.
///
/// Lines inside one chunk are views into it (no copy); only a line that spans chunks is copied. A line longer than
/// `maxRecordBytes` is an error naming the file and the line's offset — memory never grows without bound.
struct LineFramer {
    let maxRecordBytes: Int
    private var carry: [UInt8] = []
    private var carryStart = 0
    /// The current file, its id in ``LineSources``, and the number of the next line.
    private var path = ""
    private var source: Int32 = -1
    private var nextNumber = 1

    init(maxRecordBytes: Int) {
        self.maxRecordBytes = maxRecordBytes
    }

    /// Appends the complete lines of `chunk` to `lines`; at the end of a file, its last line too (with or without
    /// a final `\n`).
    mutating func frame(_ chunk: ByteChunk, into lines: inout [Line]) throws {
        if chunk.path != self.path {  // a new file (the end of each file resets the path)
            self.startFile(chunk.path)
        }
        let bytes = chunk.bytes
        let count = bytes.count
        var start = 0
        var number = self.nextNumber
        let source = self.source
        defer { self.nextNumber = number }
        try bytes.withUnsafeBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            while start < count, let found = memchr(base + start, 0x0A, count - start) {
                let end = UnsafeRawPointer(found) - base
                if self.carry.isEmpty {
                    try self.check(length: end - start, at: chunk.offset + start, in: chunk.path)
                    lines.append(Line(storage: bytes, start: start, end: end, number: number, source: source))
                } else {
                    try self.check(length: self.carry.count + end - start, at: self.carryStart, in: chunk.path)
                    self.carry.append(contentsOf: buffer[start..<end])
                    lines.append(
                        Line(storage: self.carry, start: 0, end: self.carry.count, number: number, source: source)
                    )
                    self.carry = []
                }
                number += 1
                start = end + 1
            }
        }
        if start < count {
            if self.carry.isEmpty {
                self.carryStart = chunk.offset + start
            }
            try self.check(length: self.carry.count + count - start, at: self.carryStart, in: chunk.path)
            self.carry.append(contentsOf: bytes[start...])
        }
        if chunk.endOfFile && chunk.stopped {
            // Reading stopped in the middle of the input: a partial last line was never a whole record.
            self.carry = []
            self.path = ""
        } else if chunk.endOfFile {
            self.nextNumber = number
            self.finish(into: &lines)
            number = self.nextNumber
            self.path = ""
        }
    }

    /// Hands out the partial line still carried, as a last line without `\n`.
    mutating func finish(into lines: inout [Line]) {
        guard !self.carry.isEmpty else { return }
        lines.append(
            Line(storage: self.carry, start: 0, end: self.carry.count, number: self.nextNumber, source: self.source)
        )
        self.nextNumber += 1
        self.carry = []
    }

    private mutating func startFile(_ path: String) {
        self.path = path
        self.source = LineSources.shared.id(for: path)
        self.nextNumber = 1
    }

    private func check(length: Int, at offset: Int, in path: String) throws(FileError) {
        guard length > self.maxRecordBytes else { return }
        throw FileError(
            code: .recordTooLong,
            path: path,
            offset: offset,
            detail: "a line is longer than the maximum record size of \(self.maxRecordBytes) bytes"
        )
    }
}
