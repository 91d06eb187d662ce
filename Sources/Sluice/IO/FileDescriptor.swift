#if canImport(Glibc)
import CGlibcExtras
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An open file or standard stream, read or written with blocking system calls.
///
/// - Important: Every call blocks the calling thread. Sluice makes them only from stages on an I/O thread of
///   their own (``Placement/io``), never on the compute pool or the cooperative pool. Closing is explicit (``close()``, once); standard streams
///   are never closed.
struct FileDescriptor: Sendable {
    /// The path as the user gave it; `"-"` for standard input or output.
    let path: String
    private let descriptor: Int32
    private let isStandardStream: Bool

    private init(path: String, descriptor: Int32, isStandardStream: Bool) {
        self.path = path
        self.descriptor = descriptor
        self.isStandardStream = isStandardStream
    }

    /// Opens `path` for reading; `"-"` is standard input.
    @available(*, noasync, message: "blocks: call from a stage placed on .io")
    static func openForReading(_ path: String) throws(FileError) -> FileDescriptor {
        if path == "-" {
            return FileDescriptor(path: path, descriptor: STDIN_FILENO, isStandardStream: true)
        }
        // Non-blocking open: opening a fifo that has no writer yet would block here, where no shutdown or
        // cancellation could wake it. Reads then block again, after a poll says they will not wait.
        let descriptor = Self.retryingOnInterrupt { open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) }
        guard descriptor >= 0 else { throw FileError.system(errno, "open", path: path) }
        let flags = fcntl(descriptor, F_GETFL)
        if flags < 0 || fcntl(descriptor, F_SETFL, flags & ~O_NONBLOCK) < 0 {
            let failure = errno
            _ = Glibc.close(descriptor)
            throw FileError.system(failure, "fcntl", path: path)
        }
        return FileDescriptor(path: path, descriptor: descriptor, isStandardStream: false)
    }

    /// What `fstat` says of the open file.
    struct Status: Equatable {
        var device: UInt64
        var inode: UInt64
        var size: Int
        var isRegular: Bool

        init(_ info: stat) {
            self.device = UInt64(info.st_dev)
            self.inode = UInt64(info.st_ino)
            self.size = Int(info.st_size)
            self.isRegular = (info.st_mode & S_IFMT) == S_IFREG
        }

        /// Whether both describe the same file (not the same contents).
        func isSameFile(as other: Status) -> Bool {
            self.device == other.device && self.inode == other.inode
        }
    }

    /// The open file's status.
    func status() throws(FileError) -> Status {
        var info = stat()
        guard fstat(self.descriptor, &info) == 0 else { throw FileError.system(errno, "fstat", path: self.path) }
        return Status(info)
    }

    /// Whether `path` still names the open file: `false` once it was removed or replaced (renamed over).
    func isStillNamedByItsPath() throws(FileError) -> Bool {
        guard !self.isStandardStream else { return true }
        var named = stat()
        guard stat(self.path, &named) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { return false }
            throw FileError.system(errno, "stat", path: self.path)
        }
        return Status(named).isSameFile(as: try self.status())
    }

    /// The raw descriptor, to wait on.
    var rawValue: Int32 { self.descriptor }

    /// Moves the read position to `offset` from the start.
    func seek(to offset: Int) throws(FileError) {
        guard lseek(self.descriptor, off_t(offset), SEEK_SET) >= 0 else {
            throw FileError.system(errno, "lseek", path: self.path)
        }
    }

    /// The offset of the first data at or after `offset` (`lseek` `SEEK_DATA`): past a hole of a sparse file. The
    /// file's offset moves there too. `nil` (the offset unchanged) if there is none at or after `offset`.
    func nextData(from offset: Int) -> Int? {
        #if os(Linux)
        let found = lseek(self.descriptor, off_t(offset), SLUICE_SEEK_DATA)
        return found >= 0 ? Int(found) : nil
        #else
        return nil
        #endif
    }

    /// Opens `path` for writing, creating or truncating it; `"-"` is standard output.
    ///
    /// A fifo opens once a reader has it open. `open(2)` would wait for one where nothing can interrupt it — not a
    /// cancellation, not the second signal of a shutdown — so it is opened without waiting, and tried again (after
    /// 1 ms, doubling up to 50 ms) until a reader comes or `stopWaiting` says to give up (then `nil`).
    @available(*, noasync, message: "blocks: call from a stage placed on .io")
    static func openForWriting(
        _ path: String,
        stopWaiting: () -> Bool = { false }
    ) throws(FileError) -> FileDescriptor? {
        if path == "-" {
            return FileDescriptor(path: path, descriptor: STDOUT_FILENO, isStandardStream: true)
        }
        var info = stat()
        if stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFIFO {
            var pause: UInt32 = 1_000  // microseconds
            while true {
                let descriptor = Self.retryingOnInterrupt { open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC) }
                if descriptor >= 0 {
                    // Its own open file description: blocking writes again, as for any other output.
                    _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) & ~O_NONBLOCK)
                    return FileDescriptor(path: path, descriptor: descriptor, isStandardStream: false)
                }
                guard errno == ENXIO else { throw FileError.system(errno, "open", path: path) }  // ENXIO: no reader
                if stopWaiting() { return nil }
                usleep(pause)
                pause = min(pause * 2, 50_000)
            }
        }
        let descriptor = Self.retryingOnInterrupt { open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
        guard descriptor >= 0 else { throw FileError.system(errno, "open", path: path) }
        return FileDescriptor(path: path, descriptor: descriptor, isStandardStream: false)
    }

    /// Opens `path` for appending, creating it, and emptying it first if `truncating`: every write goes to the file's
    /// end at once, so writers sharing the descriptor never interleave within one write.
    @available(*, noasync, message: "blocks: call it on the compute pool or an I/O thread")
    static func openForAppending(_ path: String, truncating: Bool) throws(FileError) -> FileDescriptor {
        let flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncating ? O_TRUNC : 0)
        let descriptor = Self.retryingOnInterrupt { open(path, flags, 0o644) }
        guard descriptor >= 0 else { throw FileError.system(errno, "open", path: path) }
        return FileDescriptor(path: path, descriptor: descriptor, isStandardStream: false)
    }

    /// Reads up to `count` bytes; an empty array means the end of the file.
    @available(*, noasync, message: "blocks: call from a stage placed on .io")
    func read(upTo count: Int, offset: Int) throws(FileError) -> [UInt8] {
        var failure: Int32 = 0
        // Uninitialised: the kernel fills what it returns, and the array's count is only what it returned.
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            let got = Self.retryingOnInterrupt { Glibc.read(self.descriptor, buffer.baseAddress, count) }
            if got < 0 { failure = errno }
            initialized = max(got, 0)
        }
        guard failure == 0 else { throw FileError.system(failure, "read", path: self.path, offset: offset) }
        return bytes
    }

    /// Reads up to `count` bytes at `position` without moving the file's offset (`pread`): a regular file read
    /// again. Fewer only at the file's end; none past it.
    func read(upTo count: Int, at position: Int) throws(FileError) -> [UInt8] {
        var failure: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var got = 0
            while got < count {
                let part = Self.retryingOnInterrupt {
                    pread(self.descriptor, buffer.baseAddress! + got, count - got, off_t(position + got))
                }
                if part < 0 { failure = errno }
                if part <= 0 { break }
                got += part
            }
            initialized = got
        }
        guard failure == 0 else { throw FileError.system(failure, "pread", path: self.path, offset: position) }
        return bytes
    }

    /// Writes all of `bytes`.
    @available(*, noasync, message: "blocks: call from a stage placed on .io")
    func write(_ bytes: UnsafeRawBufferPointer, offset: Int) throws(FileError) {
        var written = 0
        while written < bytes.count {
            let result = Self.retryingOnInterrupt {
                Glibc.write(self.descriptor, bytes.baseAddress! + written, bytes.count - written)
            }
            guard result >= 0 else {
                throw FileError.system(errno, "write", path: self.path, offset: offset + written).about(.output)
            }
            written += result
        }
    }

    /// Starts writing the file's dirty pages back to the device, without waiting for them (Linux
    /// `sync_file_range(SYNC_FILE_RANGE_WRITE)` over the whole file: only pages still dirty are looked at, so a file
    /// written behind costs what was written since). Advisory: `false` where the file cannot (a pipe, a terminal,
    /// another system), and nothing is lost then.
    @available(*, noasync, message: "blocks: call from a stage placed on .io")
    func startWriteBack() -> Bool {
        #if canImport(Glibc)
        return sync_file_range(self.descriptor, 0, 0, 2) == 0  // offset 0, length 0: to the end; SYNC_FILE_RANGE_WRITE
        #else
        return false
        #endif
    }

    /// Forces written data to the device.
    @available(*, noasync, message: "blocks: call from a stage placed on .io")
    func synchronize() throws(FileError) {
        guard !self.isStandardStream else { return }
        guard fsync(self.descriptor) == 0 else { throw FileError.system(errno, "fsync", path: self.path) }
    }

    /// Closes the file (never a standard stream). A failing close of a written file is reported: it can mean the
    /// data did not reach the disk.
    @available(*, noasync, message: "blocks: call from a stage placed on .io")
    func close() throws(FileError) {
        guard !self.isStandardStream else { return }
        if Glibc.close(self.descriptor) != 0 && errno != EINTR {
            throw FileError.system(errno, "close", path: self.path)
        }
    }

    private static func retryingOnInterrupt<Result: BinaryInteger>(_ call: () -> Result) -> Result {
        while true {
            let result = call()
            if result >= 0 || errno != EINTR { return result }
        }
    }
}
