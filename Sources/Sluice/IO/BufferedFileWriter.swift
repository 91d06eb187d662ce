/// Writes a file (or standard output) through a large buffer, so the system sees few, large writes.
///
/// Writes behind: every ``writeBehind`` bytes written to a regular file, it starts their write-back to the device
/// (without waiting for it). The output goes to disk as it grows instead of piling up as dirty pages (which count
/// against a container's memory limit) for the kernel to flush later, and closing a replaced file — ext4 then flushes
/// whatever is still dirty — or a later `fsync` finds little left to write.
///
/// - Important: Blocking: only a stage on an I/O thread of its own (``Placement/io``) uses it. Close it explicitly, on every path.
final class BufferedFileWriter {
    let path: String
    private let file: FileDescriptor
    private var buffer: [UInt8] = []
    private let capacity: Int
    private var closed = false
    /// Bytes handed to the system so far.
    private(set) var written = 0
    /// Bytes whose write-back has been started; `nil` once the file showed it cannot (not a regular file).
    private(set) var writtenBack: Int? = 0
    /// How many written bytes start their write-back together.
    let writeBehind: Int

    /// Opens `path` (see ``FileDescriptor/openForWriting(_:stopWaiting:)``): a fifo without a reader is waited for
    /// until one comes or the task is cancelled (`CancellationError`).
    init(path: String, capacity: Int = 256 * 1024, writeBehind: Int = 8 * 1024 * 1024) throws {
        self.path = path
        guard let file = try FileDescriptor.openForWriting(path, stopWaiting: { Task.isCancelled }) else {
            throw CancellationError()
        }
        self.file = file
        self.capacity = capacity
        self.writeBehind = writeBehind
        self.buffer.reserveCapacity(capacity)
        if (try? self.file.status().isRegular) != true { self.writtenBack = nil }
    }

    /// Adds `bytes`, writing the buffer out when it is full.
    func write(_ bytes: some Collection<UInt8>) throws {
        self.buffer.append(contentsOf: bytes)
        if self.buffer.count >= self.capacity {
            try self.flush()
        }
    }

    /// Adds `bytes`, and a `\n` if `newline`.
    func write(raw bytes: UnsafeRawBufferPointer, newline: Bool = false) throws {
        self.buffer.append(contentsOf: bytes.assumingMemoryBound(to: UInt8.self))
        if newline { self.buffer.append(0x0A) }
        if self.buffer.count >= self.capacity {
            try self.flush()
        }
    }

    /// Whether bytes wait in the buffer.
    var hasBuffered: Bool { !self.buffer.isEmpty }

    /// Hands the buffered bytes to the system.
    func flush() throws {
        guard !self.buffer.isEmpty else { return }
        let offset = self.written
        try self.buffer.withUnsafeBytes { bytes in
            try self.file.write(bytes, offset: offset)
        }
        self.written += self.buffer.count
        self.buffer.removeAll(keepingCapacity: true)
        if let writtenBack = self.writtenBack, self.written - writtenBack >= self.writeBehind {
            // The whole file, not the range from `writtenBack`: standard output may not have started at offset 0.
            self.writtenBack = self.file.startWriteBack() ? self.written : nil
        }
    }

    /// Flushes, optionally syncs to the device, and closes. Calling it again does nothing.
    func close(synchronize: Bool) throws {
        guard !self.closed else { return }
        self.closed = true
        do {
            try self.flush()
            if synchronize { try self.file.synchronize() }
            // Written in place (a live output is read while it grows): a file removed or renamed over meanwhile —
            // its directory deleted, say — took what was written with it, and the run must not report success.
            guard try self.file.isStillNamedByItsPath() else {
                throw FileError(
                    code: .changedWhileInUse,
                    path: self.path,
                    offset: self.written,
                    detail: "the file was removed or replaced while it was written: \(self.written) bytes are lost"
                )
            }
        } catch {
            try? self.file.close()
            throw error
        }
        try self.file.close()
    }
}
