/// A step in the middle of a pipeline that reads batches and sends batches.
///
/// Most pipelines need only the per-record operators (`map`, `filter`, …); a `Stage` is for work that spans
/// records: re-chunking, joining, windows.
public protocol Stage<Input, Output>: Sendable {
    /// The records this stage receives.
    associatedtype Input: Sendable
    /// The records this stage sends on.
    associatedtype Output: Sendable

    /// The kind of stage, used to name it in reports. Defaults to `"stage"`.
    var kind: String { get }

    /// Reads `input` to its end, sending results into `output`.
    ///
    /// - Throws: Anything; it fails the run.
    func run(input: StageInput<Input>, output: StageOutput<Output>) async throws
}

extension Stage {
    public var kind: String { "stage" }
}
