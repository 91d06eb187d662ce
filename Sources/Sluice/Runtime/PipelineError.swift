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
    /// The position of the failing record in the stage's input, counting from 0, when the stage knows it
    /// (parallel stages do).
    public var recordIndex: Int?

    /// Creates an error for `stage` failing with `underlying`.
    public init(code: Code = .stageFailed, stage: String, underlying: any Error, recordIndex: Int? = nil) {
        self.code = code
        self.stage = stage
        self.underlying = underlying
        self.recordIndex = recordIndex
    }

    public var description: String {
        let position = self.recordIndex.map { " at record \($0)" } ?? ""
        return "stage '\(self.stage)' failed\(position): \(self.underlying)"
    }
}

/// A graceful shutdown did not finish draining within ``RunOptions/drainDeadline``; the run was cancelled.
public struct DrainDeadlineExceeded: Error, Sendable, Hashable, CustomStringConvertible {
    /// The deadline that passed.
    public var deadline: Duration
    /// The stages still busy when it passed: where the drain was stuck.
    public var busyStages: [String]

    public var description: String {
        "the drain deadline of \(self.deadline) passed with stages still busy: "
            + self.busyStages.joined(separator: ", ")
    }
}

/// A failure of an input stage (a source, the line framer) that travels down the channels after every record read
/// before it, so nothing read is lost; the sink rethrows it and the runner reports the stage it came from.
struct UpstreamFailure: Error {
    let stage: String
    let underlying: any Error
}

/// A record's failure inside a stage that knows the record's position; the runner turns it into a
/// ``PipelineError`` with ``PipelineError/recordIndex`` set.
@usableFromInline
struct RecordFailure: Error {
    @usableFromInline let index: Int
    @usableFromInline let underlying: any Error

    @usableFromInline
    init(index: Int, underlying: any Error) {
        self.index = index
        self.underlying = underlying
    }
}
