/// Where a pipeline's records come from: files, standard input, a sequence, anything a user writes.
///
/// A source runs as its own task. It sends records into `output` until its input ends, then returns; the engine
/// flushes the last partial batch and tells the downstream stages that the input is over.
///
/// ```swift
/// struct Countdown: Source {
///     var from: Int
///     func run(into output: StageOutput<Int>) async throws {
///         for value in stride(from: from, through: 0, by: -1) {
///             try await output.emit(value)
///         }
///     }
/// }
/// let report = try await Pipeline.from(Countdown(from: 10)).collect().run()
/// ```
///
/// On a graceful shutdown, a source's next `emit` or `send` ends it as a normal end of input: what it emitted
/// before still drains, and a source that never looks at ``StageOutput/isShutdownRequested`` stops in time.
///
/// Records emitted are never held back longer than ``RunOptions/maxDelay``, whatever the source does between
/// emits: a flush task beside it sends them when they are due.
///
/// - Important: A source that waits on slow input (a socket, a pipe) should wait with
///   ``StageOutput/waitUntilReadable(_:)`` or ``StageOutput/waitForInput(_:)``: they send its partial batch on
///   first, end on a shutdown, and count the time as waiting rather than work (so the source is never named the
///   bottleneck).
public protocol Source<Output>: Sendable {
    /// The records this source produces.
    associatedtype Output: Sendable

    /// The kind of source, used to name its stage in reports (e.g. `"file"`). Defaults to `"source"`.
    var kind: String { get }

    /// Produces every record into `output`, and returns at the end of the input.
    ///
    /// - Throws: Whatever reading the input throws; it fails the run. Errors thrown by `output` (cancellation,
    ///   every consumer gone) should be left to propagate.
    func run(into output: StageOutput<Output>) async throws
}

extension Source {
    public var kind: String { "source" }
}
