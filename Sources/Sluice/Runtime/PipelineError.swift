/// The error a pipeline run throws when one of its stages fails: the root cause, with the stage that raised it.
///
/// When a stage throws, the runner cancels every other stage. Those stages then end with `CancellationError`s
/// or closed channels — consequences, not causes — and are not reported. If two stages fail on their own at
/// about the same time, the one whose failure reached the runner first is reported.
public struct PipelineError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Base: Hashable, Sendable {
            case stageFailed
        }

        let base: Base

        /// A stage threw ``PipelineError/underlying``.
        public static let stageFailed = Code(base: .stageFailed)

        public var description: String {
            switch self.base {
            case .stageFailed: "stageFailed"
            }
        }
    }

    /// What kind of failure this is.
    public var code: Code
    /// The name of the stage that failed.
    public var stage: String
    /// The error the stage threw.
    public var underlying: any Error

    /// Creates an error for `stage` failing with `underlying`.
    public init(code: Code = .stageFailed, stage: String, underlying: any Error) {
        self.code = code
        self.stage = stage
        self.underlying = underlying
    }

    public var description: String {
        "stage '\(self.stage)' failed: \(self.underlying)"
    }
}
