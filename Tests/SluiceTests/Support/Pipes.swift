import CGlibcExtras
import Synchronization

@testable import Sluice

#if canImport(Glibc)
import Glibc
#endif

/// A pipe a test writes to, read by a pipeline as the file `/dev/fd/N` — live input the test controls.
///
/// Test pipes are close-on-exec: a child process another test starts meanwhile (the example CLI's build takes
/// minutes) would otherwise hold a copy of the write end, and the pipeline would not see the end of its input until
/// that child exits.
final class InputPipe: Sendable {
    private let readEnd: Int32
    private let writeEnd: Locked<Int32>

    init() throws {
        var ends: [Int32] = [-1, -1]
        guard pipe2(&ends, O_CLOEXEC) == 0 else { throw Shell.Failed(command: "pipe", status: errno) }
        self.readEnd = ends[0]
        self.writeEnd = Locked(ends[1])
    }

    /// The path a pipeline opens to read the pipe.
    var path: String { "/dev/fd/\(self.readEnd)" }

    func write(_ text: String) {
        self.write(bytes: Array(text.utf8))
    }

    func write(bytes: [UInt8]) {
        self.writeEnd.withLock { descriptor in
            _ = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        }
    }

    /// Ends the input (the pipeline then sees the end of the file).
    func closeWriter() {
        self.writeEnd.withLock { descriptor in
            if descriptor >= 0 { close(descriptor) }
            descriptor = -1
        }
    }

    deinit {
        self.closeWriter()
        close(self.readEnd)
    }
}

/// The read end of a pipe a pipeline writes to (as `/dev/fd/N`) or a child process's standard output: the test
/// reads the lines as they arrive, on one of ``BlockingThreads``, so a line held back by the writer shows as a failure
/// (a read that times out) instead of passing by luck.
final class OutputPipe: Sendable {
    struct TimedOut: Error {}

    private let readEnd: Int32
    private let writeEnd: Locked<Int32>
    private let decoder: Locked<GzipDecoder?>
    private let pending = Locked<[UInt8]>([])

    /// - Parameter gzip: Whether the writer writes gzip; its lines are then decoded as they arrive.
    init(gzip: Bool = false) throws {
        var ends: [Int32] = [-1, -1]
        guard pipe2(&ends, O_CLOEXEC) == 0 else { throw Shell.Failed(command: "pipe", status: errno) }
        self.readEnd = ends[0]
        self.writeEnd = Locked(ends[1])
        self.decoder = Locked(gzip ? try GzipDecoder(path: "pipe", chunkSize: 1 << 16) : nil)
    }

    /// The path a pipeline writes to.
    var path: String { "/dev/fd/\(self.writeEnd.withLock { $0 })" }

    /// The descriptor a child process gets as its standard output.
    var writeDescriptor: Int32 { self.writeEnd.withLock { $0 } }

    /// Closes the test's own copy of the write end (once a child process or the pipeline holds its own).
    func closeWriter() {
        self.writeEnd.withLock { descriptor in
            if descriptor >= 0 { close(descriptor) }
            descriptor = -1
        }
    }

    /// The next line (without `\n`), waiting for it at most `timeout`; `nil` at the end of the output.
    func readLine(timeout: Duration = .seconds(20)) async throws -> String? {
        let milliseconds = Int32(timeout.components.seconds * 1000)
        // On the tests' shared blocking threads, not a pool of the pipe's own: the last reference to the pipe may
        // be dropped on the thread that ran the read, and a pool cannot be shut down from one of its own threads.
        return try await BlockingThreads.run { () throws -> String? in
            while true {
                if let line = self.takeLine() { return line }
                var descriptor = pollfd(fd: self.readEnd, events: Int16(POLLIN), revents: 0)
                guard poll(&descriptor, 1, milliseconds) == 1 else { throw TimedOut() }
                var buffer = [UInt8](repeating: 0, count: 1 << 16)
                let count = buffer.withUnsafeMutableBytes { Glibc.read(self.readEnd, $0.baseAddress, $0.count) }
                if count <= 0 { return nil }
                try self.append(Array(buffer[..<count]))
            }
        }
    }

    private func append(_ bytes: [UInt8]) throws {
        let decoded = try self.decoder.withLock { decoder -> [UInt8] in
            guard let decoder else { return bytes }
            var start = 0
            var decoded: [UInt8] = []
            while start < bytes.count || decoder.isHoldingOutput {
                start += try bytes.withUnsafeBytes { all in
                    try decoder.decode(UnsafeRawBufferPointer(rebasing: all[start...]))
                }
                decoded += decoder.takeChunks().flatMap { $0 }
            }
            return decoded + decoder.takeRemainingChunks().flatMap { $0 }
        }
        self.pending.withLock { $0 += decoded }
    }

    private func takeLine() -> String? {
        self.pending.withLock { pending in
            guard let newline = pending.firstIndex(of: 0x0A) else { return nil }
            let line = String(decoding: pending[..<newline], as: UTF8.self)
            pending.removeSubrange(...newline)
            return line
        }
    }

    deinit {
        self.closeWriter()
        close(self.readEnd)
        self.decoder.withLock { $0?.end() }
    }
}

/// Waits, without sleeping, until `path` exists: inotify on its directory says when something is created there.
func waitUntilExists(_ path: String) async throws {
    try await BlockingThreads.run { try waitUntilExistsBlocking(path) }
}

private func waitUntilExistsBlocking(_ path: String) throws {
    let watch = try FileFollower(path: path)
    defer { watch.close() }
    while access(path, F_OK) != 0 {
        var descriptor = pollfd(fd: watch.descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, 20_000) == 1 else { throw Shell.Failed(command: "wait for \(path)", status: -1) }
        watch.drainEvents()
    }
}

/// Waits, without sleeping, until the file at `path` holds `text`: inotify on its directory says when it changes.
func waitUntil(_ path: String, contains text: String) async throws {
    try await BlockingThreads.run { try waitUntilBlocking(path, contains: text) }
}

private func waitUntilBlocking(_ path: String, contains text: String) throws {
    let watch = try FileFollower(path: path)
    defer { watch.close() }
    while !((try? readFile(path)).map { String(decoding: $0, as: UTF8.self).contains(text) } ?? false) {
        var descriptor = pollfd(fd: watch.descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, 20_000) == 1 else {
            throw Shell.Failed(command: "wait for '\(text)' in \(path)", status: -1)
        }
        watch.drainEvents()
    }
}
