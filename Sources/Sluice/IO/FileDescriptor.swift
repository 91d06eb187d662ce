#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An open file or standard stream, read or written with blocking system calls.
///
/// - Important: Every call blocks the calling thread. Sluice makes them only from stages placed on a
///   ``ComputePool``, never on the cooperative pool. Closing is explicit (``close()``, once); standard streams
///   are never closed.
struct FileDescriptor {
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
    @available(*, noasync, message: "blocks: call from a stage on a ComputePool")
    static func openForReading(_ path: String) throws(FileError) -> FileDescriptor {
        if path == "-" {
            return FileDescriptor(path: path, descriptor: STDIN_FILENO, isStandardStream: true)
        }
        let descriptor = Self.retryingOnInterrupt { open(path, O_RDONLY | O_CLOEXEC) }
        guard descriptor >= 0 else { throw FileError.system(errno, "open", path: path) }
        return FileDescriptor(path: path, descriptor: descriptor, isStandardStream: false)
    }

    /// Opens `path` for writing, creating or truncating it; `"-"` is standard output.
    @available(*, noasync, message: "blocks: call from a stage on a ComputePool")
    static func openForWriting(_ path: String) throws(FileError) -> FileDescriptor {
        if path == "-" {
            return FileDescriptor(path: path, descriptor: STDOUT_FILENO, isStandardStream: true)
        }
        let descriptor = Self.retryingOnInterrupt { open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
        guard descriptor >= 0 else { throw FileError.system(errno, "open", path: path) }
        return FileDescriptor(path: path, descriptor: descriptor, isStandardStream: false)
    }

    /// Waits until the file can be read or `wake` becomes readable; returns `false` for the latter.
    ///
    /// This is what keeps a silent pipe from holding a graceful shutdown hostage: the read waits on the shutdown
    /// signal's descriptor too.
    @available(*, noasync, message: "blocks: call from a stage on a ComputePool")
    func waitUntilReadable(orWoken wake: Int32) throws(FileError) -> Bool {
        var descriptors = [
            pollfd(fd: self.descriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wake, events: Int16(POLLIN), revents: 0),
        ]
        while poll(&descriptors, 2, -1) < 0 {
            guard errno == EINTR else { throw FileError.system(errno, "poll", path: self.path) }
        }
        return descriptors[1].revents & Int16(POLLIN) == 0
    }

    /// Reads up to `count` bytes; an empty array means the end of the file.
    @available(*, noasync, message: "blocks: call from a stage on a ComputePool")
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

    /// Writes all of `bytes`.
    @available(*, noasync, message: "blocks: call from a stage on a ComputePool")
    func write(_ bytes: UnsafeRawBufferPointer, offset: Int) throws(FileError) {
        var written = 0
        while written < bytes.count {
            let result = Self.retryingOnInterrupt {
                Glibc.write(self.descriptor, bytes.baseAddress! + written, bytes.count - written)
            }
            guard result >= 0 else {
                throw FileError.system(errno, "write", path: self.path, offset: offset + written)
            }
            written += result
        }
    }

    /// Forces written data to the device.
    @available(*, noasync, message: "blocks: call from a stage on a ComputePool")
    func synchronize() throws(FileError) {
        guard !self.isStandardStream else { return }
        guard fsync(self.descriptor) == 0 else { throw FileError.system(errno, "fsync", path: self.path) }
    }

    /// Closes the file (never a standard stream). A failing close of a written file is reported: it can mean the
    /// data did not reach the disk.
    @available(*, noasync, message: "blocks: call from a stage on a ComputePool")
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
