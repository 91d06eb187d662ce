import CZlib

/// Decodes gzip data as it arrives: any number of members, every header flag, each member's CRC32 and ISIZE
/// checked (zlib's gzip mode does the header and trailer; this type drives the members and reports offsets).
///
/// Feed it the file's bytes in order with ``decode(_:)``, then call ``finish()`` at the end of the file.
/// Decoded bytes come out in chunks of `chunkSize` (the last one may be shorter) through ``takeChunks()``.
///
/// - Important: Every call does CPU work in zlib: call it from a stage on a ``ComputePool``.
final class GzipDecoder {
    let path: String
    private let stream: UnsafeMutablePointer<z_stream>
    private let chunkSize: Int
    /// Bytes of the file consumed so far (the compressed offset).
    private(set) var consumed = 0
    /// Where the current member started, in the file.
    private var memberStart = 0
    private var members = 0
    private var inMember = false
    private var output: [UInt8] = []
    private var outputCount = 0
    private var ready: [[UInt8]] = []
    private var ended = false

    /// - Throws: ``FileError`` if zlib cannot be initialised (out of memory).
    init(path: String, chunkSize: Int) throws(FileError) {
        self.path = path
        self.chunkSize = chunkSize
        self.stream = .allocate(capacity: 1)
        self.stream.initialize(to: z_stream())
        // 15 + 16: a gzip wrapper (not zlib, not raw deflate), with the largest window.
        let status = CZlib_inflateInit2(self.stream, 15 + 16)
        guard status == Z_OK else {
            self.stream.deallocate()
            self.ended = true
            throw FileError(code: .systemError, path: path, detail: "zlib inflateInit2 failed (\(status))")
        }
        self.output = Self.makeBuffer(chunkSize)
    }

    /// An output buffer; its bytes are written by zlib before anyone reads them, so they are not cleared first.
    private static func makeBuffer(_ size: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: size) { _, initialized in initialized = size }
    }

    deinit {
        self.end()
    }

    /// Releases zlib's state; called when decoding is over (and by `deinit` as a last resort).
    func end() {
        guard !self.ended else { return }
        self.ended = true
        inflateEnd(self.stream)
        self.stream.deallocate()
    }

    /// Whether zlib may still hold decoded output for input already given: the last call stopped because a chunk
    /// was full. Call ``decode(_:)`` again (with more input, or none) before ``finish()``.
    private(set) var isHoldingOutput = false

    /// Decodes the next bytes of the file, until one chunk of output is ready or the input is used up.
    ///
    /// Memory stays bounded whatever the compression ratio: at most one full chunk is made per call (a megabyte of
    /// gzip can hold gigabytes), and the caller keeps the input not used yet for the next call.
    ///
    /// - Returns: How many bytes of `input` were used.
    /// - Throws: ``FileError`` for corrupt data, a checksum or length mismatch, or bytes that are not gzip after
    ///   a member. Everything decoded before the problem is in ``takeChunks()`` first.
    func decode(_ input: UnsafeRawBufferPointer) throws(FileError) -> Int {
        var used = 0
        while (used < input.count || self.isHoldingOutput) && self.ready.isEmpty {
            if !self.inMember {
                guard used < input.count else { break }
                // A new member starts here; zlib checks its magic bytes and flags.
                self.inMember = true
                self.memberStart = self.consumed
            }
            let (count, status) = self.inflate(UnsafeRawBufferPointer(rebasing: input[used...]))
            used += count
            self.consumed += count
            switch status {
            case Z_OK, Z_BUF_ERROR:
                continue
            case Z_STREAM_END:
                self.members += 1
                self.inMember = false
                self.isHoldingOutput = false
                inflateReset(self.stream)
            default:
                self.flushPartialChunk()
                throw self.error(for: status)
            }
        }
        return used
    }

    /// Ends decoding at the end of the file.
    ///
    /// - Throws: ``FileError`` with ``FileError/Code/truncatedGzip`` if the file ends inside a member.
    func finish() throws(FileError) {
        self.flushPartialChunk()
        if self.inMember {
            throw FileError(
                code: .truncatedGzip,
                path: self.path,
                offset: self.consumed,
                detail: "the input ends inside gzip member \(self.members + 1) (started at byte \(self.memberStart))"
            )
        }
    }

    /// The decoded chunks produced so far, the partial one included, when decoding stops early on purpose.
    func takeRemainingChunks() -> [[UInt8]] {
        self.flushPartialChunk()
        return self.takeChunks()
    }

    /// The decoded chunks produced so far, in order.
    func takeChunks() -> [[UInt8]] {
        defer { self.ready.removeAll(keepingCapacity: true) }
        return self.ready
    }

    /// Runs zlib on `input` until it needs more input, or a chunk is full (then that chunk is ready and the call
    /// ends); returns the bytes used and the status.
    private func inflate(_ input: UnsafeRawBufferPointer) -> (used: Int, status: Int32) {
        var used = 0
        var status = Z_OK
        while true {
            if self.outputCount == self.chunkSize {
                self.ready.append(self.output)
                self.output = Self.makeBuffer(self.chunkSize)
                self.outputCount = 0
                // zlib may hold more output for the input it took: the next call collects it.
                self.isHoldingOutput = true
                return (used, Z_OK)
            }
            let before = (input: input.count - used, output: self.chunkSize - self.outputCount)
            status = self.output.withUnsafeMutableBytes { output in
                self.stream.pointee.next_in = UnsafeMutablePointer(
                    mutating: input.baseAddress.map { $0.assumingMemoryBound(to: Bytef.self) + used }
                )
                self.stream.pointee.avail_in = uInt(before.input)
                self.stream.pointee.next_out =
                    output.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    + self.outputCount
                self.stream.pointee.avail_out = uInt(before.output)
                return CZlib.inflate(self.stream, Z_NO_FLUSH)
            }
            used += before.input - Int(self.stream.pointee.avail_in)
            self.outputCount += before.output - Int(self.stream.pointee.avail_out)
            // Done with this input once it is used up and zlib had room to spare (so it holds nothing back).
            let drained = used == input.count && self.stream.pointee.avail_out > 0
            if drained { self.isHoldingOutput = false }
            if status != Z_OK || drained { break }
        }
        return (used, status)
    }

    private func flushPartialChunk() {
        guard self.outputCount > 0 else { return }
        self.ready.append(Array(self.output[..<self.outputCount]))
        self.outputCount = 0
    }

    private func error(for status: Int32) -> FileError {
        let message = self.stream.pointee.msg.map { String(cString: $0) } ?? "zlib error \(status)"
        var offset = self.memberStart + Int(self.stream.pointee.total_in)
        let code: FileError.Code
        var detail = message
        switch message {
        case "incorrect header check" where self.members > 0:
            code = .trailingGarbage
            offset = self.memberStart
            detail = "bytes that are not a gzip member follow member \(self.members)"
        case "incorrect header check":
            code = .corruptGzip
            detail = "not a valid gzip header"
        case "unknown compression method":
            code = .corruptGzip
            detail = "compression method is not deflate"
        case "incorrect data check":
            code = .checksumMismatch
            detail = "CRC32 of gzip member \(self.members + 1) does not match its data"
        case "incorrect length check":
            code = .lengthMismatch
            detail = "ISIZE of gzip member \(self.members + 1) does not match its data's length"
        case "header crc mismatch":
            code = .checksumMismatch
            detail = "header CRC16 of gzip member \(self.members + 1) does not match"
        default:
            code = status == Z_MEM_ERROR ? .systemError : .corruptGzip
            detail = "invalid gzip data: \(message)"
        }
        return FileError(code: code, path: self.path, offset: offset, detail: detail)
    }
}
