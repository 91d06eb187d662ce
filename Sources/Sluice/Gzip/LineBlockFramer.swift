/// Frames decoded bytes into lines and gathers them straight into gzip blocks, for a file's lines written unchanged to
/// a gzip file (`cat in -o out.gz`).
///
/// The same lines as ``LineFramer`` then ``GzipBlockBuilder`` give, and the same errors at the same offsets — a line
/// over the record limit, a partial line where reading stopped — without a slot per line in between: the lines of a
/// chunk go to the block builder as one run of bytes. Lines are many and often short (tens of bytes): a slot per line,
/// written by one stage and read back by the next, cost ~3% of the CPU of `cat` to a level-6 `.gz`.
struct LineBlockFramer {
    let maxRecordBytes: Int
    private var builder: GzipBlockBuilder
    /// The start of a line that continues in the next chunk, and its offset in its file's decoded data.
    private var carry: [UInt8] = []
    private var carryStart = 0
    /// Room for the offsets of the newlines found by one scan.
    private let newlines = NewlineOffsets()
    /// The lines framed so far (a partial line carried to the next chunk is not one yet).
    private(set) var lineCount = 0

    init(maxRecordBytes: Int, builder: GzipBlockBuilder) {
        self.maxRecordBytes = maxRecordBytes
        self.builder = builder
    }

    /// Adds the complete lines of `chunk` — at the end of a file, its last line too, with or without a final `\n` —
    /// appending the blocks completed to `blocks`.
    ///
    /// A line longer than the limit fails with the lines before it added (and counted).
    mutating func frame(_ chunk: ByteChunk, into blocks: inout [GzipBlock]) throws(FileError) {
        let bytes = chunk.bytes
        let count = bytes.count
        var start = 0  // where the next line starts
        let result: Result<Void, FileError> = bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return .success(()) }
            if !self.carry.isEmpty {
                // The line carried from the previous chunk ends at this chunk's first newline.
                guard let end = LineFramer.newline(in: base, from: 0, to: count) else { return .success(()) }
                let length = self.carry.count + end
                if length > self.maxRecordBytes {
                    return .failure(self.tooLong(at: self.carryStart, in: chunk.path))
                }
                self.carry.append(contentsOf: raw[0..<end])
                self.carry.withUnsafeBytes { self.builder.append($0, terminated: false, into: &blocks) }
                self.carry = []
                self.lineCount += 1
                start = end + 1
            }
            // The lines inside the chunk are checked against the limit and counted, then go on as one run.
            let first = start
            var failure: FileError?
            let offsets = self.newlines.offsets
            var scanned = start
            scan: while scanned < count {
                let (found, next) = self.newlines.scan(base, from: scanned, to: count)
                scanned = next
                for index in 0..<found {
                    let end = Int(offsets[index])
                    if end - start > self.maxRecordBytes {
                        failure = self.tooLong(at: chunk.offset + start, in: chunk.path)
                        self.lineCount += index
                        break scan
                    }
                    start = end + 1
                }
                self.lineCount += found
            }
            if start > first {
                let lines = UnsafeRawBufferPointer(rebasing: raw[first..<start])
                self.builder.append(lines, terminated: true, into: &blocks)
            }
            return failure.map { .failure($0) } ?? .success(())
        }
        try result.get()
        if start < count {
            if self.carry.isEmpty {
                self.carryStart = chunk.offset + start
            }
            let length = self.carry.count + count - start
            if length > self.maxRecordBytes {
                throw self.tooLong(at: self.carryStart, in: chunk.path)
            }
            self.carry.append(contentsOf: bytes[start...])
        }
        if chunk.endOfFile && chunk.stopped {
            // Reading stopped in the middle of the input: a partial last line was never a whole record.
            self.carry = []
        } else if chunk.endOfFile && !self.carry.isEmpty {
            self.carry.withUnsafeBytes { self.builder.append($0, terminated: false, into: &blocks) }
            self.carry = []
            self.lineCount += 1
        }
    }

    /// Whether no line waits for a block (a partial line carried to the next chunk does not count).
    var isEmpty: Bool { self.builder.isEmpty }

    /// The last, partial block, if any.
    mutating func finish() -> GzipBlock? {
        self.builder.finish()
    }

    private func tooLong(at offset: Int, in path: String) -> FileError {
        LineFramer.tooLong(limit: self.maxRecordBytes, at: offset, in: path)
    }
}
