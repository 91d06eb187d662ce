import CDeflateHeader
import CIsal
import CZlib

/// Decodes gzip data as it arrives: any number of members, every header flag, each member's CRC32 and ISIZE
/// checked (the backend's gzip mode does the header and trailer; this type drives the members and reports offsets).
/// Zero bytes after the last member are padding, and end the data as they end it for GNU gzip.
///
/// Feed it the file's bytes in order with ``decode(_:)``, then call ``finish()`` at the end of the file.
/// Decoded bytes come out in chunks of `chunkSize` (the last one may be shorter) through ``takeChunks()``.
///
/// Two backends inflate: zlib, the reference, and ISA-L, 2–3× as fast. They give the same records and the same
/// errors. With ISA-L, this type reads each member's header and trailer itself (ISA-L inflates raw deflate data and
/// keeps the CRC32): a member whose header is not a plain gzip header (another magic or method, reserved flags, a
/// header CRC) is left to zlib. ISA-L refuses the same deflate data as zlib but for one thing — a dynamic block
/// whose Huffman code is incomplete, which it decodes as long as the data never uses a missing code — so ISA-L is
/// made to stop at the end of every block (each block is presented to it as the last one), and the next block's
/// header is checked as zlib would (`CDeflateHeader`) before ISA-L reads it; the history is handed back to ISA-L
/// as a dictionary. When ISA-L or that check refuses a member, or its trailer does not match, the member is decoded
/// again from its start by zlib, reading the file again through `reread`, and zlib's verdict — its error kind and
/// compressed offset, and any output it made beyond ISA-L's — is the one reported. Input that cannot be read twice
/// (a pipe) gets the same error kinds, at the offset where ISA-L or the check stopped.
///
/// - Important: Every call does CPU work in the codec: call it from a stage on a thread of its own or a pool.
final class GzipDecoder {
    let path: String
    let backend: InflateBackend
    private let stream: UnsafeMutablePointer<z_stream>
    private let isal: UnsafeMutablePointer<inflate_state>
    /// Reads the file's stored bytes again from an offset (up to `chunkSize` of them; none at its end).
    private let reread: ((Int) throws(FileError) -> [UInt8])?
    private let chunkSize: Int
    /// Bytes decoded from the current member (its ISIZE, once it ends).
    private var memberOutput = 0
    /// ISA-L's place in the current member: the gzip header's bytes still to skip, a block about to start (its header
    /// not checked yet), how far the block's header check was fed (an offset in the file; the check's own status says
    /// whether it is still going), whether the block is the member's last, and the trailer's bytes once the last
    /// block ended.
    private var headerLeft = 0
    private var atBlockStart = false
    private var blockHeaderFedUpTo = 0
    private var blockIsFinal = false
    private var trailer: [UInt8]?
    private var trailerStart = 0
    private let blockHeader: UnsafeMutablePointer<sluice_deflate_header>
    /// The last 32 KiB of output handed out of the output buffer (a ring; ISA-L's dictionary when a block starts,
    /// with what the buffer holds), and room to put that history together.
    private var handedOut: [UInt8] = []
    private var handedOutEnd = 0
    private var history: [UInt8] = []
    /// Bytes of the file consumed so far (the compressed offset).
    private(set) var consumed = 0
    /// Where the current member started, in the file.
    private var memberStart = 0
    /// The backend decoding the current member: zlib for a member with a header ISA-L would not check.
    private var memberBackend: InflateBackend
    /// Input kept (by the ISA-L path) from a member's start until its header is complete, then fed to the backend.
    private var memberHead: [UInt8] = []
    private var members = 0
    private var inMember = false
    /// Where zero bytes after the last member began (GNU gzip's padding rule: ``skipPadding(_:used:)``), while they last.
    private var paddingStart: Int?
    private var output: [UInt8] = []
    private var outputCount = 0
    private var ready: [[UInt8]] = []
    private var ended = false

    /// - Throws: ``FileError`` if zlib cannot be initialised (out of memory).
    init(
        path: String,
        chunkSize: Int,
        backend: InflateBackend = .zlib,
        reread: ((Int) throws(FileError) -> [UInt8])? = nil
    ) throws(FileError) {
        self.path = path
        self.chunkSize = chunkSize
        self.backend = backend
        self.memberBackend = backend
        self.reread = reread
        self.stream = .allocate(capacity: 1)
        self.stream.initialize(to: z_stream())
        self.isal = .allocate(capacity: 1)
        self.isal.initialize(to: inflate_state())
        self.blockHeader = .allocate(capacity: 1)
        self.blockHeader.initialize(to: sluice_deflate_header())
        // 15 + 16: a gzip wrapper (not zlib, not raw deflate), with the largest window.
        let status = CZlib_inflateInit2(self.stream, 15 + 16)
        guard status == Z_OK else {
            self.stream.deallocate()
            self.isal.deallocate()
            self.blockHeader.deallocate()
            self.ended = true
            throw FileError(code: .systemError, path: path, detail: "zlib inflateInit2 failed (\(status))")
        }
        self.resetIsal()
        self.output = Self.makeBuffer(chunkSize)
    }

    private func resetIsal() {
        isal_inflate_init(self.isal)
        // Raw deflate with the CRC32 of the output kept: the header and trailer are read here.
        self.isal.pointee.crc_flag = UInt32(ISAL_GZIP_NO_HDR)
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
        self.isal.deallocate()
        self.blockHeader.deallocate()
    }

    /// Whether the backend may still hold decoded output for input already given: the last call stopped because a chunk
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
        // Kept input is used up before returning, but for an unfinished header (which waits for more input).
        while (used < input.count || self.isHoldingOutput || !self.memberHead.isEmpty) && self.ready.isEmpty {
            if !self.inMember && self.memberHead.isEmpty && self.members > 0
                && (self.paddingStart != nil || (used < input.count && input[used] == 0))
            {
                try self.skipPadding(input, used: &used)
                break
            }
            if !self.inMember {
                if self.backend == .zlib {
                    guard used < input.count else { break }
                    self.startMember(decodedBy: .zlib)
                } else if self.memberHead.isEmpty, used < input.count,
                    let length = Self.headerLength(UnsafeRawBufferPointer(rebasing: input[used...]))
                {
                    self.startMember(
                        decodedBy: self.backend(forHeader: UnsafeRawBufferPointer(rebasing: input[used...])),
                        headerLength: length
                    )
                } else {
                    // The backend is chosen on a whole header: input that arrives a little at a time is kept until
                    // the header is complete.
                    self.memberHead.append(contentsOf: input[used...])
                    used = input.count
                    if let length = self.memberHead.withUnsafeBytes({ Self.headerLength($0) }) {
                        self.startMember(
                            decodedBy: self.memberHead.withUnsafeBytes { self.backend(forHeader: $0) },
                            headerLength: length
                        )
                    } else if self.memberHead.count > Self.longestKeptHeader {
                        self.startMember(decodedBy: .zlib)  // a header this long (a huge name) is zlib's to read
                    } else {
                        break
                    }
                }
            }
            let count: Int
            let outcome: Outcome
            if !self.memberHead.isEmpty {
                // Input kept while a member's header was incomplete goes to the backend first, with what came since.
                if used < input.count {
                    self.memberHead.append(contentsOf: input[used...])
                    used = input.count
                }
                (count, outcome) = self.memberHead.withUnsafeBytes { self.inflate($0) }
                self.memberHead.removeFirst(count)
                self.consumed += count
                if count == 0, case .more = outcome, !self.isHoldingOutput { break }  // it waits for more input
            } else {
                let step = UnsafeRawBufferPointer(rebasing: input[used...])
                (count, outcome) = self.inflate(step)
                used += count
                self.consumed += count
            }
            switch outcome {
            case .more:
                continue
            case .memberEnd:
                self.members += 1
                self.inMember = false
                self.isHoldingOutput = false
                inflateReset(self.stream)
                self.resetIsal()
            case .failed(let failure):
                self.flushPartialChunk()
                throw failure
            }
        }
        return used
    }

    /// Skips zero bytes after the last member, as GNU gzip, pigz and igzip do: a tape's block, or a file preallocated
    /// or zero-filled past its end, pads gzip data with zeros, and those readers end the file there quietly. Bytes
    /// other than zero after the padding (a member included, as gzip has it) are trailing garbage, reported at the
    /// padding's start; the padding alone ends the file without error.
    private func skipPadding(_ input: UnsafeRawBufferPointer, used: inout Int) throws(FileError) {
        if self.paddingStart == nil { self.paddingStart = self.consumed }
        let zeros = input[used...].firstIndex { $0 != 0 }.map { $0 - used } ?? input.count - used
        used += zeros
        self.consumed += zeros
        guard used == input.count else {
            self.flushPartialChunk()
            throw FileError(
                code: .trailingGarbage,
                path: self.path,
                offset: self.paddingStart!,
                detail: "bytes that are not a gzip member follow member \(self.members) and the zero bytes after it"
            )
        }
    }

    /// The backend for a member whose (whole) header is at the start of `header`: zlib for anything but a plain gzip
    /// header — bytes that are not gzip's magic or method (zlib says what they are), reserved flags (zlib refuses
    /// them), a header CRC (rare; zlib checks it).
    private func backend(forHeader header: UnsafeRawBufferPointer) -> InflateBackend {
        guard header.count >= 4, header[0] == 0x1F, header[1] == 0x8B, header[2] == 8, header[3] & 0xE2 == 0 else {
            return .zlib
        }
        return self.backend
    }

    /// The most bytes kept for a member's header before zlib is left to read it.
    private static let longestKeptHeader = 4096

    /// The length of the gzip header at the start of `bytes` (magic, method, flags, time, extra field, name, comment,
    /// header CRC), or `nil` if it does not end within them. What the bytes say is not checked here.
    static func headerLength(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count >= 10 else { return nil }
        let flags = bytes[3]
        var end = 10
        if flags & 0x04 != 0 {  // FEXTRA: a length, then that many bytes
            guard bytes.count >= end + 2 else { return nil }
            end += 2 + Int(bytes[end]) | Int(bytes[end + 1]) << 8
        }
        for flag: UInt8 in [0x08, 0x10] where flags & flag != 0 {  // FNAME, FCOMMENT: zero-terminated
            guard end < bytes.count, let zero = bytes[end...].firstIndex(of: 0) else { return nil }
            end = zero + 1
        }
        if flags & 0x02 != 0 { end += 2 }  // FHCRC
        return end <= bytes.count ? end : nil
    }

    /// Starts a member at the current offset, decoded by `backend`; ISA-L starts after the header's `headerLength`
    /// bytes.
    private func startMember(decodedBy backend: InflateBackend, headerLength: Int = 0) {
        self.inMember = true
        self.memberStart = self.consumed
        self.memberOutput = 0
        self.memberBackend = backend
        self.headerLeft = headerLength
        self.atBlockStart = true
        self.trailer = nil
    }

    /// One inflate step of the current member by its backend.
    private func inflate(_ input: UnsafeRawBufferPointer) -> (used: Int, outcome: Outcome) {
        self.memberBackend == .zlib ? self.inflateWithZlib(input) : self.inflateWithIsal(input)
    }

    /// Ends decoding at the end of the file.
    ///
    /// - Throws: ``FileError`` with ``FileError/Code/truncatedGzip`` if the file ends inside a member.
    func finish() throws(FileError) {
        if !self.memberHead.isEmpty {
            // The start of a last member whose header never ended (or that the backend left): zlib tells what the
            // bytes are — not gzip, or a member cut short.
            if !self.inMember { self.startMember(decodedBy: .zlib) }
            let head = self.memberHead
            self.memberHead = []
            let (count, outcome) = head.withUnsafeBytes { self.inflate($0) }
            self.consumed += count
            if case .failed(let failure) = outcome {
                self.flushPartialChunk()
                throw failure
            }
        }
        if self.inMember {
            let truncated = FileError(
                code: .truncatedGzip,
                path: self.path,
                offset: self.consumed,
                detail: "the input ends inside gzip member \(self.members + 1) (started at byte \(self.memberStart))"
            )
            // ISA-L keeps some decoded bytes to itself until it sees more input: zlib tells what a cut member holds.
            let failure = self.memberBackend == .isal ? self.verdictOfZlib(otherwise: truncated) : truncated
            self.flushPartialChunk()
            throw failure
        }
        self.flushPartialChunk()
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

    /// How one inflate step ended.
    private enum Outcome {
        /// Needs more input, or a chunk is full.
        case more
        /// The member ended (its trailer checked).
        case memberEnd
        case failed(FileError)
    }

    /// Takes a full chunk out of the output buffer, if it is full; returns whether it did (the step must end).
    private func takeFullChunk() -> Bool {
        guard self.outputCount == self.chunkSize else { return false }
        self.ready.append(self.output)
        self.keepHistory(self.output[...])
        self.output = Self.makeBuffer(self.chunkSize)
        self.outputCount = 0
        // The backend may hold more output for the input it took: the next call collects it.
        self.isHoldingOutput = true
        return true
    }

    /// Runs zlib on `input` until it needs more input, a chunk is full (then that chunk is ready and the call
    /// ends), or the member ends; returns the bytes used and how it ended.
    private func inflateWithZlib(_ input: UnsafeRawBufferPointer) -> (used: Int, outcome: Outcome) {
        var used = 0
        while true {
            if self.takeFullChunk() { return (used, .more) }
            let before = (input: input.count - used, output: self.chunkSize - self.outputCount)
            let status = self.output.withUnsafeMutableBytes { output in
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
            let produced = before.output - Int(self.stream.pointee.avail_out)
            self.outputCount += produced
            self.memberOutput += produced
            switch status {
            case Z_OK, Z_BUF_ERROR: break
            case Z_STREAM_END: return (used, .memberEnd)
            default: return (used, .failed(self.error(for: status, in: self.stream, memberStart: self.memberStart)))
            }
            // Done with this input once it is used up and zlib had room to spare (so it holds nothing back).
            if used == input.count && self.stream.pointee.avail_out > 0 {
                self.isHoldingOutput = false
                return (used, .more)
            }
        }
    }

    /// The longest distance deflate reaches back.
    private static let historySize = 32768

    /// Runs ISA-L on `input`, as ``inflateWithZlib(_:)`` runs zlib, a block at a time: the header's bytes are
    /// skipped, each block's header checked before ISA-L reads the block, and the trailer read after the last.
    private func inflateWithIsal(_ input: UnsafeRawBufferPointer) -> (used: Int, outcome: Outcome) {
        var used = min(self.headerLeft, input.count)
        self.headerLeft -= used
        while true {
            if self.trailer != nil { return self.readTrailer(input, from: used) }
            if self.takeFullChunk() { return (used, .more) }
            if self.headerLeft > 0 || (self.atBlockStart && !self.startBlock(input, used: &used)) {
                self.isHoldingOutput = false
                return (used, .more)  // waits for more input
            }
            if self.blockHeader.pointee.status != Int32(SLUICE_DEFLATE_HEADER_VALID),
                let failure = self.checkBlockHeader(input, used: used)
            {
                return (used, .failed(failure))
            }
            let before = (input: input.count - used, output: self.chunkSize - self.outputCount)
            let status = self.output.withUnsafeMutableBytes { output in
                self.isal.pointee.next_in = UnsafeMutablePointer(
                    mutating: input.baseAddress.map { $0.assumingMemoryBound(to: UInt8.self) + used }
                )
                self.isal.pointee.avail_in = UInt32(before.input)
                self.isal.pointee.next_out = output.baseAddress!.assumingMemoryBound(to: UInt8.self) + self.outputCount
                self.isal.pointee.avail_out = UInt32(before.output)
                return isal_inflate(self.isal)
            }
            // After some errors ISA-L leaves `avail_in` meaningless (seen: past the input's end): keep it in bounds.
            let taken = min(max(before.input - Int(self.isal.pointee.avail_in), 0), before.input)
            used += taken
            let produced = before.output - Int(self.isal.pointee.avail_out)
            self.outputCount += produced
            self.memberOutput += produced
            if status < 0 {
                return (used, .failed(self.verdictOfZlib(otherwise: self.isalFailure(status, at: used))))
            }
            if self.isal.pointee.block_state == ISAL_BLOCK_FINISH {
                // The block ended, and all its output is out.
                if self.blockIsFinal {
                    self.startTrailer(at: used)
                } else if let failure = self.continueAfterBlock(at: used) {
                    return (used, .failed(self.verdictOfZlib(otherwise: failure)))
                }
                continue
            }
            if used == input.count && self.isal.pointee.avail_out > 0 {
                self.isHoldingOutput = false
                return (used, .more)
            }
            if taken == 0 && produced == 0 { return (used, .more) }
        }
    }

    /// At a block's start: notes whether it is the member's last block, has ISA-L take it as the last (so that it
    /// stops at its end), and starts checking its header. `false` when the block's first bit is still to come.
    private func startBlock(_ input: UnsafeRawBufferPointer, used: inout Int) -> Bool {
        if self.isal.pointee.read_in_length == 0 {
            guard used < input.count else { return false }
            // The header's first byte goes to ISA-L's bit buffer, where its BFINAL bit can be set.
            self.isal.pointee.read_in = UInt64(input[used])
            self.isal.pointee.read_in_length = 8
            used += 1
        }
        let bits = self.isal.pointee.read_in
        let count = UInt32(self.isal.pointee.read_in_length)
        self.blockIsFinal = bits & 1 == 1
        self.isal.pointee.read_in = bits | 1
        self.atBlockStart = false
        self.blockHeaderFedUpTo = self.consumed + used
        _ = sluice_deflate_header_begin(self.blockHeader, bits, count)
        return true
    }

    /// Feeds the block header's check the input it has not seen: the failure if the header is one zlib refuses.
    private func checkBlockHeader(_ input: UnsafeRawBufferPointer, used: Int) -> FileError? {
        let from = self.blockHeaderFedUpTo - self.consumed
        if from < input.count, self.blockHeader.pointee.status == Int32(SLUICE_DEFLATE_HEADER_MORE) {
            _ = sluice_deflate_header_feed(
                self.blockHeader,
                input.baseAddress!.assumingMemoryBound(to: UInt8.self) + from,
                input.count - from
            )
            self.blockHeaderFedUpTo = self.consumed + input.count
        }
        switch self.blockHeader.pointee.status {
        case Int32(SLUICE_DEFLATE_HEADER_VALID):
            return nil
        case Int32(SLUICE_DEFLATE_HEADER_INVALID):
            let reason = self.blockHeader.pointee.reason.map { String(cString: $0) } ?? "invalid block header"
            return self.verdictOfZlib(
                otherwise: FileError(
                    code: .corruptGzip,
                    path: self.path,
                    offset: self.consumed + used,
                    detail: "invalid gzip data: \(reason)"
                )
            )
        default:
            return nil  // more of the header to come: ISA-L keeps what it has too
        }
    }

    /// After a block that is not the member's last: ISA-L starts the next one with the last 32 KiB of output as its
    /// dictionary (it keeps no history when a stream ends) and its count of output at zero, so that it refuses a
    /// distance reaching before the member's start exactly as zlib does.
    private func continueAfterBlock(at used: Int) -> FileError? {
        self.isal.pointee.block_state = ISAL_BLOCK_NEW_HDR
        self.isal.pointee.total_out = 0
        let length = min(self.memberOutput, Self.historySize)
        if length > 0 {
            let status: Int32
            if self.outputCount >= length {
                status = self.output.withUnsafeMutableBytes { output in
                    isal_inflate_set_dict(
                        self.isal,
                        output.baseAddress!.assumingMemoryBound(to: UInt8.self) + self.outputCount - length,
                        UInt32(length)
                    )
                }
            } else {
                // The bytes before the buffer's, from the end of the ring (it holds them: memberOutput counts them).
                self.history.removeAll(keepingCapacity: true)
                let needed = length - self.outputCount
                let start = (self.handedOutEnd - needed + Self.historySize) % Self.historySize
                if start + needed <= Self.historySize {
                    self.history.append(contentsOf: self.handedOut[start..<(start + needed)])
                } else {
                    self.history.append(contentsOf: self.handedOut[start...])
                    self.history.append(contentsOf: self.handedOut[..<(start + needed - Self.historySize)])
                }
                self.history.append(contentsOf: self.output[..<self.outputCount])
                status = self.history.withUnsafeMutableBytes { history in
                    isal_inflate_set_dict(
                        self.isal,
                        history.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        UInt32(history.count)
                    )
                }
            }
            guard status == COMP_OK else {
                // Not seen: ISA-L takes a dictionary whenever a block may start.
                return FileError(
                    code: .systemError,
                    path: self.path,
                    offset: self.consumed + used,
                    detail: "ISA-L refused the history at the start of a block (\(status))"
                )
            }
        }
        self.atBlockStart = true
        return nil
    }

    /// After the member's last block: the trailer's first bytes are the whole bytes left in ISA-L's bit buffer.
    private func startTrailer(at used: Int) {
        var bits = self.isal.pointee.read_in >> (UInt64(self.isal.pointee.read_in_length) % 8)
        let whole = Int(self.isal.pointee.read_in_length) / 8
        var trailer: [UInt8] = []
        for _ in 0..<whole {
            trailer.append(UInt8(truncatingIfNeeded: bits))
            bits >>= 8
        }
        self.isal.pointee.read_in = 0
        self.isal.pointee.read_in_length = 0
        self.trailerStart = self.consumed + used - whole
        self.trailer = trailer
    }

    /// Collects the member's 8-byte trailer and checks its CRC32 and ISIZE.
    private func readTrailer(_ input: UnsafeRawBufferPointer, from start: Int) -> (used: Int, outcome: Outcome) {
        var trailer = self.trailer ?? []
        let taken = min(8 - trailer.count, input.count - start)
        trailer.append(contentsOf: input[start..<(start + taken)])
        self.trailer = trailer
        let used = start + taken
        guard trailer.count == 8 else {
            self.isHoldingOutput = false
            return (used, .more)
        }
        func word(_ at: Int) -> UInt32 {
            (0..<4).reduce(UInt32(0)) { $0 | UInt32(trailer[at + $1]) << (8 * $1) }
        }
        if word(0) != self.isal.pointee.crc {
            let failure = FileError(
                code: .checksumMismatch,
                path: self.path,
                offset: self.trailerStart + 4,
                detail: "CRC32 of gzip member \(self.members + 1) does not match its data"
            )
            return (used, .failed(self.verdictOfZlib(otherwise: failure)))
        }
        if word(4) != UInt32(truncatingIfNeeded: self.memberOutput) {
            let failure = FileError(
                code: .lengthMismatch,
                path: self.path,
                offset: self.trailerStart + 8,
                detail: "ISIZE of gzip member \(self.members + 1) does not match its data's length"
            )
            return (used, .failed(self.verdictOfZlib(otherwise: failure)))
        }
        self.trailer = nil
        return (used, .memberEnd)
    }

    /// ISA-L's own verdict on deflate data, for input that cannot be read again: zlib's kind (the header and trailer
    /// are read here, so every ISA-L error is about the data), at ISA-L's offset.
    private func isalFailure(_ status: Int32, at used: Int) -> FileError {
        let what: String
        switch status {
        case ISAL_INVALID_BLOCK: what = "invalid block"
        case ISAL_INVALID_SYMBOL: what = "invalid literal/length or distance code"
        case ISAL_INVALID_LOOKBACK: what = "invalid distance too far back"
        default: what = "ISA-L error \(status)"
        }
        return FileError(
            code: .corruptGzip,
            path: self.path,
            offset: self.consumed + used,
            detail: "invalid gzip data: \(what)"
        )
    }

    /// Decodes the current member again with zlib, from its start, reading the file again: zlib's error (kind and
    /// offset) is the one reported, and what zlib decodes beyond what was handed out already is handed out first —
    /// so both backends give the same records and the same error. `otherwise` when the file cannot be read again.
    private func verdictOfZlib(otherwise fallback: FileError) -> FileError {
        guard let reread = self.reread else { return fallback }
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        guard CZlib_inflateInit2(stream, 15 + 16) == Z_OK else {
            stream.deallocate()
            return fallback
        }
        defer {
            inflateEnd(stream)
            stream.deallocate()
        }
        // What ISA-L decoded of the member is a correct prefix of it (both decode the same bits): only what zlib
        // decodes beyond it is new.
        let handedOut = self.memberOutput
        var position = self.memberStart
        var decoded = 0
        var scratch = Self.makeBuffer(self.chunkSize)
        while true {
            let input: [UInt8]
            do {
                input = try reread(position)
            } catch {
                return error
            }
            if input.isEmpty {
                return FileError(
                    code: .truncatedGzip,
                    path: self.path,
                    offset: position,
                    detail:
                        "the input ends inside gzip member \(self.members + 1) (started at byte \(self.memberStart))"
                )
            }
            var used = 0
            while used < input.count {
                var status: Int32 = Z_OK
                var produced = 0
                input.withUnsafeBytes { bytes in
                    scratch.withUnsafeMutableBytes { output in
                        stream.pointee.next_in = UnsafeMutablePointer(
                            mutating: bytes.baseAddress!.assumingMemoryBound(to: Bytef.self) + used
                        )
                        stream.pointee.avail_in = uInt(input.count - used)
                        stream.pointee.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
                        stream.pointee.avail_out = uInt(output.count)
                        status = CZlib.inflate(stream, Z_NO_FLUSH)
                        used = input.count - Int(stream.pointee.avail_in)
                        produced = output.count - Int(stream.pointee.avail_out)
                    }
                }
                // Hand out what zlib decoded past what was handed out already.
                let fresh = max(0, min(produced, decoded + produced - handedOut))
                if fresh > 0 {
                    self.appendOutput(scratch[(produced - fresh)..<produced])
                }
                decoded += produced
                switch status {
                case Z_OK, Z_BUF_ERROR:
                    if produced == 0 && stream.pointee.avail_in > 0 && status == Z_BUF_ERROR { return fallback }
                case Z_STREAM_END:
                    return FileError(
                        code: .corruptGzip,
                        path: self.path,
                        offset: self.memberStart,
                        detail:
                            "ISA-L refused gzip member \(self.members + 1), which zlib reads: read with --codec zlib"
                    )
                default:
                    // ISA-L may have written a little past the point where zlib stops (the bytes of a match whose
                    // distance reaches before the member): those bytes, still waiting to be handed out, go.
                    self.dropPendingOutput(handedOut - decoded)
                    return self.error(for: status, in: stream, memberStart: self.memberStart)
                }
            }
            position += input.count
        }
    }

    /// Adds decoded bytes to the output, chunk by chunk.
    private func appendOutput(_ bytes: ArraySlice<UInt8>) {
        var rest = bytes[...]
        while !rest.isEmpty {
            let room = self.chunkSize - self.outputCount
            let part = rest.prefix(room)
            self.output.withUnsafeMutableBytes { output in
                part.withUnsafeBytes { source in
                    (output.baseAddress! + self.outputCount).copyMemory(
                        from: source.baseAddress!,
                        byteCount: part.count
                    )
                }
            }
            self.outputCount += part.count
            rest = rest.dropFirst(part.count)
            if self.outputCount == self.chunkSize {
                self.ready.append(self.output)
                self.output = Self.makeBuffer(self.chunkSize)
                self.outputCount = 0
            }
        }
    }

    /// Takes back the last `count` decoded bytes, as far as they were not handed out yet.
    private func dropPendingOutput(_ count: Int) {
        var excess = count
        while excess > 0 {
            if self.outputCount > 0 {
                let dropped = min(excess, self.outputCount)
                self.outputCount -= dropped
                self.memberOutput -= dropped
                excess -= dropped
            } else if var last = self.ready.popLast() {
                // A full chunk made in this call: it becomes the partial chunk being filled again.
                let dropped = min(excess, last.count)
                last.removeLast(dropped)
                self.memberOutput -= dropped
                excess -= dropped
                self.appendOutput(last[...])
            } else {
                return
            }
        }
    }

    private func flushPartialChunk() {
        guard self.outputCount > 0 else { return }
        self.ready.append(Array(self.output[..<self.outputCount]))
        self.keepHistory(self.output[..<self.outputCount])
        self.outputCount = 0
    }

    /// Keeps the last 32 KiB of output leaving the output buffer, while ISA-L decodes (it may need them again).
    private func keepHistory(_ bytes: ArraySlice<UInt8>) {
        guard self.memberBackend == .isal else { return }
        if self.handedOut.isEmpty { self.handedOut = Self.makeBuffer(Self.historySize) }
        var rest = bytes.suffix(Self.historySize)
        while !rest.isEmpty {
            let part = rest.prefix(Self.historySize - self.handedOutEnd)
            self.handedOut.withUnsafeMutableBytes { ring in
                part.withUnsafeBytes { source in
                    (ring.baseAddress! + self.handedOutEnd).copyMemory(from: source.baseAddress!, byteCount: part.count)
                }
            }
            self.handedOutEnd = (self.handedOutEnd + part.count) % Self.historySize
            rest = rest.dropFirst(part.count)
        }
    }

    private func error(for status: Int32, in stream: UnsafeMutablePointer<z_stream>, memberStart: Int) -> FileError {
        let message = stream.pointee.msg.map { String(cString: $0) } ?? "zlib error \(status)"
        var offset = memberStart + Int(stream.pointee.total_in)
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
