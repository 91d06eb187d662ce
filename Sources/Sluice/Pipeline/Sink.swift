/// Where a pipeline's records end: a file, standard output, a collection, a user's code.
///
/// A sink runs as its own task and reads its input to the end. What it returns is the run's result
/// (``RunReport/result``). A sink that returns before the end of its input stops the pipeline early, and
/// successfully: the upstream stages are told nobody needs their output.
public protocol Sink<Input>: Sendable {
    /// The records this sink consumes.
    associatedtype Input: Sendable
    /// What the sink produces at the end of the run.
    associatedtype Result: Sendable = Void

    /// The kind of sink, used to name its stage in reports. Defaults to `"sink"`.
    var kind: String { get }

    /// Consumes `input` and returns the result.
    ///
    /// - Throws: Anything; it fails the run. A sink that holds a resource (a file) must release it on every path.
    func run(input: StageInput<Input>) async throws -> Result
}

extension Sink {
    public var kind: String { "sink" }
}
