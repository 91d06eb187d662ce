public import Sluice

/// A ready pipeline that the `sluice` CLI runs by name. Add one by adding a file with a type conforming to this
/// protocol and listing it in ``PipelineRegistry/all``.
public protocol ReadyPipeline: Sendable {
    /// The name used on the command line, e.g. `"grep"`.
    static var name: String { get }
    /// One line saying what it does.
    static var summary: String { get }
    /// Its own options, beyond the ones every pipeline takes.
    static var options: [PipelineOption] { get }
    /// Its stages, for `sluice describe`.
    static var stages: String { get }

    /// Runs it and returns the report of its main run.
    static func run(_ invocation: Invocation) async throws -> RunReport<Void>
}

/// An option a ready pipeline takes, e.g. `--pattern P`.
public struct PipelineOption: Sendable {
    /// The long name, without dashes.
    public var name: String
    /// What it does.
    public var summary: String
    /// Whether it takes a value (`--top 5`) or is a flag (`--invert`).
    public var takesValue: Bool
    /// Whether it must be given.
    public var required: Bool

    public init(name: String, summary: String, takesValue: Bool, required: Bool = false) {
        self.name = name
        self.summary = summary
        self.takesValue = takesValue
        self.required = required
    }
}

/// Everything a run of a ready pipeline needs: inputs, output, its options and the engine's settings.
public struct Invocation: Sendable {
    /// Input files in order; `"-"` is standard input.
    public var inputs: [String]
    /// The output file; `"-"` is standard output; a `.gz` name means gzip.
    public var output: String
    /// The pipeline's own options with values, by name.
    public var values: [String: String]
    /// The pipeline's own flags that were given.
    public var flags: Set<String>
    public var runOptions: RunOptions
    public var readOptions: ReadOptions
    public var writeOptions: WriteOptions
    /// What the pipeline's parsing stages do with a malformed record.
    public var errorPolicy: ErrorPolicy
    /// Whether the inputs are followed as they grow, like `tail -F` (see ``Pipeline/lines(following:options:)``).
    public var follow: Bool

    public init(
        inputs: [String],
        output: String,
        values: [String: String] = [:],
        flags: Set<String> = [],
        runOptions: RunOptions = RunOptions(),
        readOptions: ReadOptions = ReadOptions(),
        writeOptions: WriteOptions = WriteOptions(),
        errorPolicy: ErrorPolicy = .stop,
        follow: Bool = false
    ) {
        self.inputs = inputs
        self.output = output
        self.values = values
        self.flags = flags
        self.runOptions = runOptions
        self.readOptions = readOptions
        self.writeOptions = writeOptions
        self.errorPolicy = errorPolicy
        self.follow = follow
    }

    /// The lines of the inputs, followed as they grow if ``follow`` is set.
    public var lines: Pipeline<Line> {
        self.follow
            ? Pipeline.lines(following: self.inputs, options: self.readOptions)
            : Pipeline.lines(from: self.inputs, options: self.readOptions)
    }

    /// Writes `lines` to the output (a small result, like `wc`'s), as a run of its own.
    public func writeResult(_ lines: [String]) async throws {
        var options = self.runOptions
        options.shutdown = nil  // the result of a run that already ended is written whole
        options.monitor = nil  // a progress display shows the main run, not this one
        try await Pipeline.from(lines).write(to: self.output, options: self.writeOptions).run(options)
    }
}

/// A record that is not what the pipeline expects, with where it came from.
public struct MalformedRecord: Error, Sendable, CustomStringConvertible {
    public var source: String?
    public var line: Int?
    public var reason: String

    public init(_ line: Line, reason: String) {
        self.source = line.sourcePath
        self.line = line.lineNumber
        self.reason = reason
    }

    public var description: String {
        let place = [self.source.map { $0 == "-" ? "<stdin>" : $0 }, self.line.map { "line \($0)" }]
            .compactMap { $0 }.joined(separator: ", ")
        return place.isEmpty ? self.reason : "\(place): \(self.reason)"
    }
}
