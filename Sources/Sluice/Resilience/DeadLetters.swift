/// Where records a stage gave up on go, with their errors, so the run can go on (``ErrorPolicy/deadLetter(_:)``).
///
/// ```swift
/// let rejects = DeadLetters.file("rejects.ndjson")      // NDJSON, one letter per line
/// let kept = DeadLetters.memory()                         // in memory: kept.letters
/// ```
///
/// A file is created — and emptied, unless `append` is set — when a run that names it starts, so a clean run leaves
/// an empty file rather than the letters of the run before; it is closed when the run ends. A file that cannot be
/// opened fails the run before it starts; one that cannot be written (a full disk, an I/O error) fails the run with a
/// ``FileError`` naming it. Each letter is written with one `write` to a file opened for appending, on the run's
/// compute pool: letters from stages running in parallel never interleave, and no lock is held while writing.
public final class DeadLetters: Sendable {
    private enum Destination {
        case memory
        case file(path: String, append: Bool)
    }

    private struct State {
        var letters: [DeadLetter] = []
        var count = 0
        /// The open file, and how many runs are using it (one, unless runs share the destination).
        var file: FileDescriptor?
        var users = 0
    }

    private let destination: Destination
    private let state = Locked(State())

    private init(_ destination: Destination) {
        self.destination = destination
    }

    /// Letters written as NDJSON to the file at `path`: emptied at the start of each run that uses it, unless
    /// `append` is set.
    public static func file(_ path: String, append: Bool = false) -> DeadLetters {
        DeadLetters(.file(path: path, append: append))
    }

    /// Letters kept in memory, in ``letters``.
    public static func memory() -> DeadLetters {
        DeadLetters(.memory)
    }

    /// The letters kept in memory (empty for a file destination).
    public var letters: [DeadLetter] {
        self.state.withLock { $0.letters }
    }

    /// The number of letters received.
    public var count: Int {
        self.state.withLock { $0.count }
    }

    /// The file's path, for a file destination.
    var path: String? {
        if case .file(let path, _) = self.destination { return path }
        return nil
    }

    /// Opens the file for a run that starts (creating it, and emptying it unless appending); nothing for memory.
    ///
    /// - Important: Blocking: call it on the compute pool or an I/O thread.
    func open() throws(FileError) {
        guard case .file(let path, let append) = self.destination else { return }
        let opened: Bool = self.state.withLock { state in
            state.users += 1
            return state.users > 1
        }
        if opened { return }
        do {
            let file = try FileDescriptor.openForAppending(path, truncating: !append)
            self.state.withLock { $0.file = file }
        } catch {
            self.state.withLock { $0.users -= 1 }
            throw error
        }
    }

    func send(_ letter: DeadLetter, pool: ComputePool?) async throws {
        switch self.destination {
        case .memory:
            self.state.withLock { state in
                state.letters.append(letter)
                state.count += 1
            }
        case .file(let path, _):
            guard let file = self.state.withLock({ $0.file }) else {
                throw FileError(code: .systemError, path: path, detail: "the dead-letter file is not open")
            }
            let line = Array((letter.json + "\n").utf8)
            let write: @Sendable () throws -> Void = {
                try line.withUnsafeBytes { bytes in try file.write(bytes, offset: 0) }
            }
            if let pool {
                try await pool.run(write)
            } else {
                try write()
            }
            self.state.withLock { $0.count += 1 }
        }
    }

    /// Closes the file when the last run using it ends.
    ///
    /// - Throws: ``FileError`` if closing fails (the letters may not have reached the disk).
    func close() throws(FileError) {
        let file: FileDescriptor? = self.state.withLock { state in
            guard state.users > 0 else { return nil }
            state.users -= 1
            guard state.users == 0 else { return nil }
            defer { state.file = nil }
            return state.file
        }
        try file?.close()
    }
}
