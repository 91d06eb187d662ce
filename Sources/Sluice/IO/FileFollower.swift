#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Watches a followed file, as `tail -F` does: tells a reader at the end of the data whether to wait, to finish
/// the file and go on with the one that now has its name (rotation), or to start over (truncation).
///
/// Waking is by inotify on the file's directory — appends, creates, renames, deletes and truncations of the files
/// in it — with a poll at most every 250 ms as well, for file systems that send no events (NFS, FUSE). When the
/// system has no inotify instance or watch left for this user (128 instances by default, shared by every process
/// of the user: each followed file takes one), the file is only looked at every 250 ms, as `tail -F` reverts to
/// polling then.
final class FileFollower {
    /// The longest wait without looking at the file, when no event comes.
    static let pollInterval = Duration.milliseconds(250)

    let path: String
    /// The inotify queue, readable when something happened in the directory; -1 when polling (which `poll`
    /// ignores: a wait on it is a wait for the timeout, a shutdown or a cancellation).
    let descriptor: Int32

    /// Whether the directory's events wake the reader (`false`: it looks every ``pollInterval``).
    var isWatching: Bool { self.descriptor >= 0 }

    /// - Parameter inotifyExhausted: Behave as if the system had no inotify instance left (tests).
    /// - Throws: ``FileError`` if the file's directory does not exist, or inotify fails otherwise than for want of
    ///   instances, watches or memory.
    init(path: String, inotifyExhausted: Bool = false) throws(FileError) {
        self.path = path
        let descriptor = inotifyExhausted ? -1 : inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        if descriptor < 0 {
            let failure = inotifyExhausted ? EMFILE : errno
            guard Self.isExhaustion(failure) else { throw FileError.system(failure, "inotify_init1", path: path) }
            // No events: looked at every pollInterval. A missing directory still fails, as with events.
            var status = stat()
            guard stat(Self.directory(of: path), &status) == 0 else { throw Self.noDirectory(path) }
            self.descriptor = -1
            return
        }
        let directory = Self.directory(of: path)
        let events =
            UInt32(IN_MODIFY) | UInt32(IN_ATTRIB) | UInt32(IN_CREATE) | UInt32(IN_DELETE) | UInt32(IN_MOVED_FROM)
            | UInt32(IN_MOVED_TO) | UInt32(IN_CLOSE_WRITE) | UInt32(IN_DELETE_SELF) | UInt32(IN_MOVE_SELF)
        if inotify_add_watch(descriptor, directory, events) < 0 {
            let failure = errno
            _ = Glibc.close(descriptor)
            if failure == ENOENT || failure == ENOTDIR { throw Self.noDirectory(path) }
            guard Self.isExhaustion(failure) else {
                throw FileError.system(failure, "inotify_add_watch", path: directory)
            }
            self.descriptor = -1  // no watch left: looked at every pollInterval
            return
        }
        self.descriptor = descriptor
    }

    /// The system's inotify instances or watches for this user (or its memory) are used up.
    private static func isExhaustion(_ code: Int32) -> Bool {
        code == EMFILE || code == ENFILE || code == ENOSPC || code == ENOMEM
    }

    private static func noDirectory(_ path: String) -> FileError {
        FileError(
            code: .notFound,
            path: path,
            detail: "its directory \(Self.directory(of: path)) does not exist: there is nothing to watch"
        )
    }

    /// What happened to the file since the reader reached the end of its data.
    enum Change: Equatable {
        /// Nothing: wait for more.
        case none
        /// The path now names another file: finish the open one, then read the new one from its start.
        case rotated
        /// The file is shorter than what was read of it: read it again from its start.
        case truncated(size: Int)
        /// The bytes just before the point read are not the ones read there: the file was truncated and written
        /// again past that point before the reader looked (its size alone does not show it). Read it again from
        /// its start.
        case rewritten(size: Int)
    }

    /// Compares the open file with what `path` names now, and with `lastRead` — the last bytes read of it, which
    /// end at `offset`. A path that names nothing (renamed away, not yet created again) is no change: the open
    /// file may still grow, and the directory's events say when a new one appears.
    func change(of file: FileDescriptor, readUpTo offset: Int, lastRead: [UInt8]) throws(FileError) -> Change {
        let open = try file.status()
        var named = stat()
        if stat(self.path, &named) == 0 && !FileDescriptor.Status(named).isSameFile(as: open) {
            return .rotated
        }
        if open.size < offset {
            return .truncated(size: open.size)
        }
        if !lastRead.isEmpty, try file.read(upTo: lastRead.count, at: offset - lastRead.count) != lastRead {
            return .rewritten(size: open.size)
        }
        return .none
    }

    /// Empties the event queue after a wake-up (the events themselves are not needed: the file is looked at).
    func drainEvents() {
        guard self.isWatching else { return }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while buffer.withUnsafeMutableBytes({ read(self.descriptor, $0.baseAddress, $0.count) }) > 0 {}
    }

    /// Stops watching. Call it once.
    func close() {
        if self.isWatching { _ = Glibc.close(self.descriptor) }
    }

    private static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let directory = path[..<slash]
        return directory.isEmpty ? "/" : String(directory)
    }
}
