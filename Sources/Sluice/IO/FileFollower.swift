#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Watches a followed file, as `tail -F` does: tells a reader at the end of the data whether to wait, to finish
/// the file and go on with the one that now has its name (rotation), or to start over (truncation).
///
/// Waking is by inotify on the file's directory — appends, creates, renames, deletes and truncations of the files
/// in it — with a poll at most every 250 ms as well, for file systems that send no events (NFS, FUSE).
final class FileFollower {
    /// The longest wait without looking at the file, when no event comes.
    static let pollInterval = Duration.milliseconds(250)

    let path: String
    /// The inotify queue; readable when something happened in the directory.
    let descriptor: Int32

    /// - Throws: ``FileError`` if inotify cannot be set up for the file's directory.
    init(path: String) throws(FileError) {
        self.path = path
        let descriptor = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard descriptor >= 0 else { throw FileError.system(errno, "inotify_init1", path: path) }
        let directory = Self.directory(of: path)
        let events =
            UInt32(IN_MODIFY) | UInt32(IN_ATTRIB) | UInt32(IN_CREATE) | UInt32(IN_DELETE) | UInt32(IN_MOVED_FROM)
            | UInt32(IN_MOVED_TO) | UInt32(IN_CLOSE_WRITE) | UInt32(IN_DELETE_SELF) | UInt32(IN_MOVE_SELF)
        if inotify_add_watch(descriptor, directory, events) < 0 {
            let failure = errno
            _ = Glibc.close(descriptor)
            if failure == ENOENT || failure == ENOTDIR {
                throw FileError(
                    code: .notFound,
                    path: path,
                    detail: "its directory \(directory) does not exist: there is nothing to watch"
                )
            }
            throw FileError.system(failure, "inotify_add_watch", path: directory)
        }
        self.descriptor = descriptor
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
        var buffer = [UInt8](repeating: 0, count: 4096)
        while buffer.withUnsafeMutableBytes({ read(self.descriptor, $0.baseAddress, $0.count) }) > 0 {}
    }

    /// Stops watching. Call it once.
    func close() {
        _ = Glibc.close(self.descriptor)
    }

    private static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let directory = path[..<slash]
        return directory.isEmpty ? "/" : String(directory)
    }
}
