import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads files (or standard input) one after the other, in large chunks, decoding gzip ones.
///
/// gzip is recognised by its magic bytes `1f 8b`, not by the file's name; another compression's first bytes
/// (``ForeignCompression``) are an error; anything else is passed through as is.
///
/// Input that can keep the reader waiting — a pipe, a fifo, a terminal, a socket, a followed file — is read only
/// after an ``InputWaiter`` says a read will not block, so a graceful shutdown or a cancellation ends the wait,
/// before the first byte too. What such input delivers is handed on at once, decoded, however little it is.
///
/// - Important: Blocking: only a stage on an I/O thread of its own (``Placement/io``) calls it, inside
///   ``InputWaiter/wakingOnCancellation(_:)``.
final class FileChunkReader {
    private let paths: [String]
    private let chunkSize: Int
    private let waiter: InputWaiter
    /// Set when following: the files are read past their end, as `tail -F` does.
    private let follows: Bool
    private let logger: Logger
    /// The run's budget of bytes in flight, which the decoded chunks count in.
    private let budget: ByteBudget?
    /// The library that inflates gzip input.
    private let inflate: InflateBackend
    /// Follow as if the system had no inotify instance left (tests).
    private let inotifyExhausted: Bool
    private var stopped = false
    private var nextPath = 0
    private var file: FileDescriptor?
    /// Whether the open file is a regular file (reads never wait) rather than a pipe, fifo, terminal or socket.
    private var isRegular = true
    private var decoder: GzipDecoder?
    private var follower: FileFollower?
    /// The first bytes of the open file, gathered until its format is known (`nil` once it is).
    private var head: [UInt8]?
    /// Set when a followed path was found to name a new file: the open one is read to its end first.
    private var rotated = false
    /// The last bytes read of a followed file (at most ``lastReadLength``), ending at `storedOffset`: a file
    /// truncated and written again past that point before the reader looked is told by them, not by its size.
    private var lastRead: [UInt8] = []
    static let lastReadLength = 64
    /// Set when a followed file was truncated, until data is read of it again: a hole at its start is skipped.
    private var truncatedSinceRead = false
    /// Set when such a hole was skipped, until a byte other than zero is read: the zeros before the writer's first
    /// byte in the file system block where the data starts are the hole's too.
    private var dropsHoleZeros = false
    /// Bytes read from the current file as stored, and decoded bytes handed out for it.
    private var storedOffset = 0
    private var decodedOffset = 0
    private var pendingError: (any Error)?
    /// gzip input read and not decoded yet (from `compressedStart`), and whether the file's end came after it.
    private var compressed: [UInt8] = []
    private var compressedStart = 0
    private var inputEnded = false
    /// Bytes read as stored and handed out decoded, over all files (for the run report).
    private(set) var totalStored = 0
    private(set) var totalDecoded = 0

    init(
        paths: [String],
        chunkSize: Int,
        waiter: InputWaiter,
        follows: Bool = false,
        budget: ByteBudget? = nil,
        inflate: InflateBackend = .zlib,
        inotifyExhausted: Bool = false,
        logger: Logger
    ) {
        self.inotifyExhausted = inotifyExhausted
        self.paths = paths
        self.budget = budget
        self.inflate = inflate
        self.chunkSize = chunkSize
        self.waiter = waiter
        self.follows = follows
        self.logger = logger
    }

    /// The next decoded chunks, in order; an empty array once every file was read (or the reading stopped).
    ///
    /// - Throws: ``FileError`` naming the file and the byte offset. Chunks decoded before a problem are returned
    ///   by the call before the one that throws, so none is lost. `CancellationError` if the task was cancelled
    ///   while waiting for input.
    func next() throws -> [ByteChunk] {
        if let error = self.pendingError {
            self.pendingError = nil
            throw error
        }
        while true {
            guard !self.stopped else { return [] }
            guard let file = self.file else {
                guard self.nextPath < self.paths.count, !self.waiter.shutdown.isRequested else { return [] }
                try self.open(self.paths[self.nextPath])
                self.nextPath += 1
                continue
            }
            if let budget = self.budget, !self.waiter.shutdown.isRequested {
                // Past the run's budget of bytes in flight: wait until stages downstream let go of some.
                try budget.waitForRoom(self.waiter, path: file.path, logger: self.logger)
            }
            if self.hasCompressedInput {
                // What was read is decoded before anything more is read — and before a shutdown stops the reading.
                let chunks = self.decodeCompressed(from: file)
                if !chunks.isEmpty { return chunks }
                continue
            }
            if self.waiter.shutdown.isRequested { return self.stop(file) }
            if !self.isRegular, try self.waiter.wait(for: file.rawValue, path: file.path) == .shutdown {
                return self.stop(file)
            }
            if self.truncatedSinceRead { try self.skipHole(file) }
            var raw = try file.read(upTo: self.chunkSize, offset: self.storedOffset)
            if !raw.isEmpty { self.truncatedSinceRead = false }
            if self.dropsHoleZeros && !raw.isEmpty {
                let zeros = raw.prefix { $0 == 0 }.count
                self.storedOffset += zeros
                self.decodedOffset += zeros
                raw.removeFirst(zeros)
                if raw.isEmpty { continue }  // zeros only so far: read on
                self.dropsHoleZeros = false
            }
            if raw.isEmpty && self.isRegular && self.follower == nil {
                try self.checkNotTruncated(file)
            }
            if raw.isEmpty, let follower = self.follower {
                if let chunks = try self.endOfData(file, follower) { return chunks }
                continue
            }
            var input = raw
            if let head = self.head {
                // Still finding out the format: a pipe may deliver fewer than two bytes at first.
                input = head + raw
                if input.count < 2 && !raw.isEmpty {
                    self.head = input
                    continue
                }
                self.head = nil
                try self.startDecoding(file, sniffed: input)
            }
            let chunks = try self.decode(input, endOfFile: raw.isEmpty, from: file)
            if !chunks.isEmpty { return chunks }
        }
    }

    /// A graceful shutdown: stop reading, and hand on what was decoded (a gzip member cut short is not an error
    /// here — the reading stopped on purpose).
    private func stop(_ file: FileDescriptor) -> [ByteChunk] {
        self.stopped = true
        var decoded = self.decoder?.takeRemainingChunks() ?? []
        if let head = self.head, !head.isEmpty {
            decoded.append(head)
        }
        var chunks = self.chunks(decoded, from: file, endOfFile: false)
        chunks.append(
            ByteChunk(
                buffer: LineBuffer([], budget: nil),
                path: file.path,
                offset: self.decodedOffset,
                endOfFile: true,
                stopped: true
            )
        )
        self.close()
        return chunks
    }

    /// At the end of a regular file: a file now shorter than what was read of it was truncated meanwhile, and the lines
    /// it held past that point would be lost without a word (a followed file is read again instead).
    private func checkNotTruncated(_ file: FileDescriptor) throws(FileError) {
        let size = try file.status().size
        guard size >= self.storedOffset else {
            throw FileError(
                code: .changedWhileInUse,
                path: file.path,
                offset: size,
                detail:
                    "the file was truncated to \(size) bytes while it was read (\(self.storedOffset) bytes were read)"
            )
        }
    }

    /// Closes the current file, if any (after an error, or when the reading stage stops early).
    func close() {
        self.closeFile()
        self.follower?.close()
        self.follower = nil
    }

    private func closeFile() {
        self.decoder?.end()
        self.decoder = nil
        self.compressed = []
        self.compressedStart = 0
        self.inputEnded = false
        try? self.file?.close()
        self.file = nil
    }

    private func open(_ path: String) throws {
        if self.follows && path == "-" {
            throw FileError(code: .notFollowable, path: path, detail: "standard input cannot be followed")
        }
        if self.follows {
            // Stopped while waiting for the file to appear: nothing to read.
            guard let file = try self.openWaitingToAppear(path) else { return }
            try self.adopt(file)
            return
        }
        try self.adopt(FileDescriptor.openForReading(path))
    }

    /// Opens a followed file; one not there yet is waited for, as `tail -F` does (its directory's events, and a
    /// look every ``FileFollower/pollInterval``). Returns `nil` if a shutdown came first.
    private func openWaitingToAppear(_ path: String) throws -> FileDescriptor? {
        if let file = try Self.openIfPresent(path) { return file }
        let follower = try self.follower ?? self.makeFollower(path)
        self.logger.warning("followed file not found: waiting for it to appear", metadata: ["path": "\(path)"])
        while true {
            switch try self.waiter.wait(for: follower.descriptor, path: path, timeout: FileFollower.pollInterval) {
            case .shutdown: return nil
            case .ready: follower.drainEvents()
            case .timedOut: break
            }
            if let file = try Self.openIfPresent(path) {
                self.logger.notice("followed file appeared", metadata: ["path": "\(path)"])
                return file
            }
        }
    }

    /// Makes `file` the one being read, from its start.
    private func adopt(_ file: FileDescriptor) throws(FileError) {
        self.file = file
        self.head = []
        self.storedOffset = 0
        self.decodedOffset = 0
        self.lastRead = []
        self.truncatedSinceRead = false
        self.dropsHoleZeros = false
        do {
            self.isRegular = try file.status().isRegular
            if self.follows && self.follower == nil {
                _ = try self.makeFollower(file.path)
            }
        } catch {
            self.closeFile()
            throw error
        }
    }

    /// Starts watching the followed `path` (its directory's events; without them, a look every 250 ms).
    private func makeFollower(_ path: String) throws(FileError) -> FileFollower {
        let follower = try FileFollower(path: path, inotifyExhausted: self.inotifyExhausted)
        self.follower = follower
        if !follower.isWatching {
            self.logger.warning(
                "no inotify instance or watch left for this user: the followed file is looked at every 250 ms",
                metadata: ["path": "\(path)"]
            )
        }
        return follower
    }

    /// Sets up decoding once the first bytes tell the format.
    private func startDecoding(_ file: FileDescriptor, sniffed head: [UInt8]) throws(FileError) {
        if let format = ForeignCompression.format(of: head) {
            throw FileError(
                code: .unsupportedCompression,
                path: file.path,
                offset: self.storedOffset,
                detail: "\(format.name) data, which Sluice does not decode (it reads plain text and gzip): "
                    + "decompress it first, e.g. `\(format.advice) FILE | sluice run …`"
            )
        }
        guard head.count >= 2 && head[0] == 0x1f && head[1] == 0x8b else { return }
        if self.follows {
            throw FileError(
                code: .notFollowable,
                path: file.path,
                detail: "a gzip file cannot be followed (it is not read as it grows)"
            )
        }
        // A regular file can be read again: how a member ISA-L refuses is judged by zlib, as the reference would.
        let reread: ((Int) throws(FileError) -> [UInt8])? =
            self.isRegular
            ? { [chunkSize] position throws(FileError) in try file.read(upTo: chunkSize, at: position) } : nil
        self.decoder = try GzipDecoder(
            path: file.path,
            chunkSize: self.chunkSize,
            backend: self.inflate,
            reread: reread
        )
    }

    /// At the end of a followed file's data: waits for more, or moves on to the file that now has its name, or
    /// starts over on a truncated file. Returns chunks to hand on, or `nil` to read again.
    private func endOfData(_ file: FileDescriptor, _ follower: FileFollower) throws -> [ByteChunk]? {
        if self.rotated {
            // The old file is read to its end: finish it, and go on with the new one from its start.
            self.rotated = false
            guard let new = try Self.openIfPresent(file.path) else {
                return nil  // gone again before it could be opened: keep the old one until the next appears
            }
            let ending = self.finishFile(file)
            self.closeFile()
            try self.adopt(new)
            return ending
        }
        var change = try follower.change(of: file, readUpTo: self.storedOffset, lastRead: self.lastRead)
        if change == .none {
            switch try self.waiter.wait(for: follower.descriptor, path: file.path, timeout: FileFollower.pollInterval) {
            case .shutdown: return self.stop(file)
            case .ready: follower.drainEvents()
            case .timedOut: break
            }
            // Look again before reading: a truncation followed at once by an append is told from a plain append
            // only while the file is still shorter than what was read of it.
            change = try follower.change(of: file, readUpTo: self.storedOffset, lastRead: self.lastRead)
        }
        switch change {
        case .none:
            return nil
        case .rotated:
            self.rotated = true
            return nil  // one more read of the old file, for what was appended before the rotation
        case .truncated(let size), .rewritten(let size):
            let what =
                if case .truncated = change { "truncated" } else { "truncated and written again past the point read" }
            self.logger.warning(
                "followed file \(what): reading it again from its start",
                metadata: ["path": "\(file.path)", "size": "\(size)", "was-read": "\(self.storedOffset)"]
            )
            let ending = self.finishFile(file)
            try file.seek(to: 0)
            self.storedOffset = 0
            self.decodedOffset = 0
            self.lastRead = []
            self.truncatedSinceRead = true
            return ending
        }
    }

    /// Skips a hole where a truncated file is read again: a writer that does not append (no `O_APPEND`) goes on
    /// writing at its old offset after the truncation (`logrotate`'s `copytruncate`), and the file is a hole up to
    /// there — gigabytes of zeros that would be one line. Reading goes on at the first data, past the zeros before
    /// the writer's first byte in its file system block.
    private func skipHole(_ file: FileDescriptor) throws(FileError) {
        guard let data = file.nextData(from: self.storedOffset), data > self.storedOffset else { return }
        self.logger.warning(
            "followed file truncated, then written past its start: skipping the hole before its data",
            metadata: ["path": "\(file.path)", "from": "\(self.storedOffset)", "to": "\(data)"]
        )
        try file.seek(to: data)
        self.storedOffset = data
        self.decodedOffset = data
        self.dropsHoleZeros = true
    }

    private static func openIfPresent(_ path: String) throws(FileError) -> FileDescriptor? {
        let file: FileDescriptor
        do {
            file = try FileDescriptor.openForReading(path)
        } catch {
            if error.code == .notFound { return nil }
            throw error
        }
        return file
    }

    /// The end of one file's data (its last line counts even without a `\n`).
    private func finishFile(_ file: FileDescriptor) -> [ByteChunk] {
        var decoded: [[UInt8]] = []
        if let head = self.head, !head.isEmpty {
            decoded.append(head)
            self.head = []
        }
        return self.chunks(decoded, from: file, endOfFile: true)
    }

    private func decode(_ input: [UInt8], endOfFile: Bool, from file: FileDescriptor) throws(FileError) -> [ByteChunk] {
        self.storedOffset += input.count
        self.totalStored += input.count
        if self.follower != nil && !input.isEmpty {
            let length = Self.lastReadLength
            self.lastRead =
                input.count >= length ? Array(input.suffix(length)) : Array((self.lastRead + input).suffix(length))
        }
        guard self.decoder != nil else {
            let chunks = self.chunks(input.isEmpty ? [] : [input], from: file, endOfFile: endOfFile)
            if endOfFile { self.close() }
            return chunks
        }
        self.compressed = input
        self.compressedStart = 0
        self.inputEnded = endOfFile
        return self.decodeCompressed(from: file)
    }

    /// Decodes what is left of the compressed input read last: at most about one chunk per call, so a small file
    /// that expands enormously (a gigabyte of newlines is a megabyte of gzip) never fills memory.
    private func decodeCompressed(from file: FileDescriptor) -> [ByteChunk] {
        guard let decoder = self.decoder else { return [] }
        var drained = false
        do {
            let used = try self.compressed.withUnsafeBytes { bytes in
                try decoder.decode(UnsafeRawBufferPointer(rebasing: bytes[self.compressedStart...]))
            }
            self.compressedStart += used
            drained = self.compressedStart == self.compressed.count && !decoder.isHoldingOutput
            if drained {
                self.compressed = []
                self.compressedStart = 0
                if self.inputEnded { try decoder.finish() }
            }
        } catch {
            // Hand out what was decoded before the problem; throw on the next call.
            self.pendingError = error
        }
        // From input that may pause, what was decoded goes on now, not when a whole chunk is full.
        let decoded = self.isRegular || !drained ? decoder.takeChunks() : decoder.takeRemainingChunks()
        let ended = (drained && self.inputEnded) || self.pendingError != nil
        let chunks = self.chunks(decoded, from: file, endOfFile: ended)
        if ended {
            self.close()
        }
        return chunks
    }

    /// Whether compressed input read earlier is still to be decoded (before anything more is read).
    private var hasCompressedInput: Bool {
        self.decoder != nil && (self.compressedStart < self.compressed.count || self.decoder!.isHoldingOutput)
    }

    /// `decoded` as chunks of `file`, the last one marked as its end if `endOfFile` (an empty one if need be).
    private func chunks(_ decoded: [[UInt8]], from file: FileDescriptor, endOfFile: Bool) -> [ByteChunk] {
        var chunks: [ByteChunk] = []
        for (index, bytes) in decoded.enumerated() {
            let last = endOfFile && index == decoded.count - 1
            let buffer = LineBuffer(bytes, budget: self.budget)
            chunks.append(ByteChunk(buffer: buffer, path: file.path, offset: self.decodedOffset, endOfFile: last))
            self.decodedOffset += bytes.count
            self.totalDecoded += bytes.count
        }
        if endOfFile && decoded.isEmpty {
            let empty = LineBuffer([], budget: nil)
            chunks.append(ByteChunk(buffer: empty, path: file.path, offset: self.decodedOffset, endOfFile: true))
        }
        return chunks
    }
}
