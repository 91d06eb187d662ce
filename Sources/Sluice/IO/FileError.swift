#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A problem reading or writing a file or a standard stream: what went wrong, where, and at which byte.
///
/// ```
/// logs/app.log.gz: truncated gzip data at byte 1048576 (compressed): the input ends inside a member
/// ```
public struct FileError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String

        /// The file or a directory on its path does not exist.
        public static let notFound = Code(name: "notFound")
        /// The file may not be read or written.
        public static let permissionDenied = Code(name: "permissionDenied")
        /// A directory was given where a file was expected.
        public static let isDirectory = Code(name: "isDirectory")
        /// The device is full.
        public static let noSpace = Code(name: "noSpace")
        /// The reader at the other end of a pipe went away.
        public static let brokenPipe = Code(name: "brokenPipe")
        /// Another system error; see ``FileError/errno``.
        public static let systemError = Code(name: "systemError")
        /// gzip data ends before its member does (in the header, the deflate data or the trailer).
        public static let truncatedGzip = Code(name: "truncatedGzip")
        /// gzip data is not valid: a bad header, an unknown method, invalid deflate data.
        public static let corruptGzip = Code(name: "corruptGzip")
        /// A gzip member's CRC32 does not match its data.
        public static let checksumMismatch = Code(name: "checksumMismatch")
        /// A gzip member's ISIZE does not match its data's length.
        public static let lengthMismatch = Code(name: "lengthMismatch")
        /// Bytes that are not a gzip member follow the last member.
        public static let trailingGarbage = Code(name: "trailingGarbage")
        /// The input is compressed in a format other than gzip (zstd, xz, bzip2, lz4, zlib, compress, zip): read as
        /// text it would give garbage records, so it is refused at byte 0.
        public static let unsupportedCompression = Code(name: "unsupportedCompression")
        /// A record is longer than the configured maximum.
        public static let recordTooLong = Code(name: "recordTooLong")
        /// The input cannot be followed (`--follow`): standard input, or a gzip file.
        public static let notFollowable = Code(name: "notFollowable")
        /// The output would overwrite one of the inputs.
        public static let outputIsInput = Code(name: "outputIsInput")
        /// The file was truncated while it was read, or removed or replaced while it was written: records would be
        /// lost without a word.
        public static let changedWhileInUse = Code(name: "changedWhileInUse")

        public var description: String { self.name }
    }

    /// The error's fields, kept private: a file error is made by Sluice, read by its users.
    private struct Storage: Sendable, Hashable {
        var code: Code
        var path: String
        var offset: Int?
        var errno: Int32?
        var detail: String
        var standardStream: StandardStream?
    }

    /// Which standard stream a path of `"-"` is, where the error was made knowing it.
    enum StandardStream: Sendable, Hashable {
        case input
        case output
    }

    private var storage: Storage

    /// What went wrong.
    public var code: Code { self.storage.code }
    /// The file's path as given, `"-"` for standard input or output.
    public var path: String { self.storage.path }
    /// The byte offset where the problem is: in the file as stored (compressed) for gzip errors, in the decoded
    /// data for record errors. `nil` when it does not apply (the file could not be opened).
    public var offset: Int? { self.storage.offset }
    /// The system error number, for system errors.
    public var errno: Int32? { self.storage.errno }
    /// A human-readable account of the problem.
    public var detail: String { self.storage.detail }

    init(code: Code, path: String, offset: Int? = nil, errno: Int32? = nil, detail: String) {
        self.storage = Storage(code: code, path: path, offset: offset, errno: errno, detail: detail)
    }

    /// The same error, about standard `stream` if its path is `"-"`: named so in its description.
    func about(_ stream: StandardStream) -> FileError {
        guard self.path == "-" else { return self }
        var error = self
        error.storage.standardStream = stream
        return error
    }

    /// A file error for the system error `number` from `operation` (`"open"`, `"read"`, `"write"`, …).
    static func system(_ number: Int32, _ operation: String, path: String, offset: Int? = nil) -> FileError {
        let code: Code =
            switch number {
            case ENOENT: .notFound
            case EACCES, EPERM, EROFS: .permissionDenied
            case EISDIR: .isDirectory
            case ENOSPC, EDQUOT: .noSpace
            case EPIPE: .brokenPipe
            default: .systemError
            }
        let reason = String(cString: strerror(number))
        return FileError(code: code, path: path, offset: offset, errno: number, detail: "\(operation): \(reason)")
    }

    public var description: String {
        let name =
            switch (self.path, self.storage.standardStream) {
            case ("-", .input): "standard input"
            case ("-", .output): "standard output"
            case ("-", nil): "<stdin/stdout>"
            default: self.path
            }
        let position = self.offset.map { " at byte \($0)" } ?? ""
        return "\(name): \(self.code)\(position): \(self.detail)"
    }
}
