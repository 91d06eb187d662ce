/// An error from a ``ComputePool``.
public struct ComputePoolError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Base: Hashable, Sendable {
            case shutDown
            case threadCreationFailed
        }

        let base: Base

        /// Work was submitted after ``ComputePool/shutdown()`` was called; it did not run.
        public static let shutDown = Code(base: .shutDown)
        /// The system refused to start a thread for the pool.
        public static let threadCreationFailed = Code(base: .threadCreationFailed)

        public var description: String {
            switch self.base {
            case .shutDown: "shutDown"
            case .threadCreationFailed: "threadCreationFailed"
            }
        }
    }

    /// What went wrong.
    public let code: Code
    /// The name of the pool.
    public let pool: String
    /// The system error number, for ``Code/threadCreationFailed``.
    public let errno: Int32?

    init(_ code: Code, pool: String, errno: Int32? = nil) {
        self.code = code
        self.pool = pool
        self.errno = errno
    }

    public var description: String {
        switch self.code.base {
        case .shutDown:
            "ComputePoolError.shutDown: compute pool '\(self.pool)' is shut down; the work did not run"
        case .threadCreationFailed:
            "ComputePoolError.threadCreationFailed: compute pool '\(self.pool)' could not start a thread "
                + "(error \(self.errno ?? 0))"
        }
    }
}
