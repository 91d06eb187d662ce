/// The error a pipeline run throws when anything goes wrong while it runs: the root cause (``underlying``), with
/// the stage that raised it and, when known, the failing record's position and origin.
///
/// The rule: ``RunnablePipeline/run(_:)`` throws a `PipelineError` for every failure of the run — a stage's error,
/// a file's (``FileError``), a drain that overran its deadline (``DrainDeadlineExceeded``) — a
/// ``ConfigurationError`` for settings refused before anything starts, and `CancellationError` when the calling
/// task is cancelled. Reach the cause with ``underlying(as:)``:
///
/// ```swift
/// do {
///     try await pipeline.run()
/// } catch let error as PipelineError {
///     if let file = error.underlying(as: FileError.self) { print(file.path, file.offset ?? -1) }
///     print(error.stage, error.recordIndex ?? -1, error.source ?? "-", error.line ?? -1)
/// }
/// ```
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
    /// The position of the failing record in the stage's input, counting from 0: every operator of ``Pipeline``
    /// (`map`, `filter`, `compactMap`, `flatMap`, `forEach`, `reduce`, `stage`, the parallel ones) knows it; a custom
    /// ``Stage`` or ``Sink`` does not.
    public var recordIndex: Int?
    /// The file the failing record was read from, for records that know their origin (``LocatedRecord``: ``Line``).
    public var source: String?
    /// The failing record's line number in ``source`` (from 1), for records that know their origin.
    public var line: Int?

    /// Creates an error for `stage` failing with `underlying`.
    public init(
        code: Code = .stageFailed,
        stage: String,
        underlying: any Error,
        recordIndex: Int? = nil,
        source: String? = nil,
        line: Int? = nil
    ) {
        self.code = code
        self.stage = stage
        self.underlying = underlying
        self.recordIndex = recordIndex
        self.source = source
        self.line = line
    }

    /// The cause, if it is an `E` — `error.underlying(as: FileError.self)`.
    public func underlying<E: Error>(as type: E.Type) -> E? {
        self.underlying as? E
    }

    public var description: String {
        var position = self.recordIndex.map { " at record \($0)" } ?? ""
        let origin = [self.source.map { $0 == "-" ? "<stdin>" : $0 }, self.line.map { "line \($0)" }]
            .compactMap { $0 }
        if !origin.isEmpty { position += " (\(origin.joined(separator: ", ")))" }
        return "stage '\(self.stage)' failed\(position): \(self.underlying)"
    }
}

/// A record that knows where it came from: the file and line a failure on it is reported with, in
/// ``PipelineError`` and in dead letters. ``Line`` is one; make your own record types one to get the same.
public protocol LocatedRecord {
    /// The file the record was read from, when known (`"-"` for standard input).
    var sourcePath: String? { get }
    /// Its line number in that file, from 1, when known.
    var lineNumber: Int? { get }
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

/// Thrown by a user's source's `emit` or `send` after a graceful shutdown was requested: the engine takes it as the
/// end of the source's input.
struct SourceEndedOnShutdown: Error {}

/// A failure of an input stage (a source, the line framer) that travels down the channels after every record read
/// before it, so nothing read is lost; the sink rethrows it and the runner reports the stage it came from.
struct UpstreamFailure: Error {
    let stage: String
    let underlying: any Error
}

/// A record's failure inside a stage that knows the record's position; the runner turns it into a
/// ``PipelineError`` with ``PipelineError/recordIndex`` (and the record's origin) set.
@usableFromInline
struct RecordFailure: Error {
    @usableFromInline let index: Int
    @usableFromInline let underlying: any Error
    let source: String?
    let line: Int?

    @usableFromInline
    init(index: Int, underlying: any Error, record: Any? = nil) {
        self.index = index
        self.underlying = underlying
        let located = record as? any LocatedRecord
        self.source = located?.sourcePath
        self.line = located?.lineNumber
    }
}
