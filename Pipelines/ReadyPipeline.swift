public import ArgumentParser
public import Sluice

/// A ready pipeline that the `sluice` CLI runs by name: `sluice run NAME [its options] [every pipeline's options]
/// INPUTS…`. Add one by adding a file with a type conforming to this protocol and listing it in
/// ``PipelineRegistry/all``; its own options are an argument-parser `ParsableArguments` type, so the CLI parses,
/// validates and documents them (`sluice describe NAME`, `sluice run NAME --help`) with nothing else to change.
///
/// ```swift
/// public enum Head: ReadyPipeline {
///     public struct Options: ParsableArguments, Sendable {
///         @Option(help: "How many lines.") public var lines = 10
///         public init() {}
///     }
///     public static let name = "head"
///     public static let summary = "the first --lines N lines"
///     public static let stages = "read -> lines -> take -> write"
///     public static func run(_ invocation: Invocation, options: Options) async throws -> RunReport<Void> { … }
/// }
/// ```
public protocol ReadyPipeline: Sendable {
    /// Its own options, beyond the ones every pipeline takes; ``NoOptions`` for none.
    associatedtype Options: ParsableArguments & Sendable = NoOptions

    /// The name used on the command line, e.g. `"grep"`.
    static var name: String { get }
    /// One line saying what it does.
    static var summary: String { get }
    /// Its stages, for `sluice describe`.
    static var stages: String { get }

    /// Runs it with its own options and returns the report of its main run.
    static func run(_ invocation: Invocation, options: Options) async throws -> RunReport<Void>

    /// How its results over separate parts of the input (the work units of a distributed run, `sluice job`)
    /// combine into the result of one run over all of it. Default: ``ResultMerge/unsupported(_:)``.
    static var resultMerge: ResultMerge { get }

    /// Runs it over one work unit, writing to the invocation's output what ``resultMerge`` combines. Default:
    /// ``run(_:options:)`` — right when the unit's output is already a part of the whole (`cat`, `grep`, `wc`);
    /// `wordfreq` writes every word's count instead of the top ones.
    static func runUnit(_ invocation: Invocation, options: Options) async throws -> RunReport<Void>

    /// With ``ResultMerge/combineLines``: reads the units' outputs — the invocation's inputs, in input order — and
    /// writes the result of the whole to its output, as one run over all the input would (`wc` sums its three
    /// columns). It streams: memory holds what the result needs (three numbers; a count per distinct word), however
    /// many units there are. A line that is not what ``runUnit(_:options:)`` writes is a ``MalformedRecord`` naming
    /// the unit's file and line. Default: throws ``UnmergeableResult``.
    static func combine(_ invocation: Invocation, options: Options) async throws
}

/// How a ready pipeline's results over the parts of an input combine (see ``ReadyPipeline/resultMerge``).
public enum ResultMerge: Sendable {
    /// The outputs, concatenated in input order, are the result (`cat`, `grep`, `json-filter`): gzip outputs
    /// concatenate as members.
    case concatenate
    /// ``ReadyPipeline/combine(_:options:)`` reads the units' outputs and writes the result (`wc`, `wordfreq`).
    case combineLines
    /// The pipeline writes no result to merge (it delivers its records elsewhere, like `http-post`).
    case nothing
    /// Its results cannot be combined; the text says why.
    case unsupported(String)
}

extension ReadyPipeline {
    public static var resultMerge: ResultMerge {
        .unsupported("\(Self.name) does not say how its results over separate inputs combine")
    }

    public static func runUnit(_ invocation: Invocation, options: Options) async throws -> RunReport<Void> {
        try await Self.run(invocation, options: options)
    }

    public static func combine(_ invocation: Invocation, options: Options) async throws {
        throw UnmergeableResult(pipeline: Self.name)
    }
}

/// A pipeline was asked to combine results it cannot combine.
public struct UnmergeableResult: Error, Sendable, CustomStringConvertible {
    public var pipeline: String

    public var description: String { "\(self.pipeline) cannot combine results of separate runs" }
}

extension ReadyPipeline {
    /// Runs it with its own options parsed from command-line `arguments` (e.g. `["--pattern", "GET"]`).
    ///
    /// - Throws: argument-parser's error for arguments that are not its options, or the run's error.
    public static func run(_ invocation: Invocation, arguments: [String]) async throws -> RunReport<Void> {
        try await self.run(invocation, options: Options.parse(arguments))
    }

    /// Runs it over one work unit with its own options parsed from `arguments` (see ``runUnit(_:options:)``).
    public static func runUnit(_ invocation: Invocation, arguments: [String]) async throws -> RunReport<Void> {
        try await self.runUnit(invocation, options: Options.parse(arguments))
    }

    /// Parses `arguments` once and returns what runs a unit with them: for many units of one job, without parsing
    /// the options again for each (argument-parser's parse costs more than an empty unit's run).
    public static func unitRunner(
        arguments: [String]
    ) throws -> @Sendable (Invocation) async throws -> RunReport<Void> {
        let options = try Options.parse(arguments)
        return { invocation in try await Self.runUnit(invocation, options: options) }
    }

    /// Checks that `arguments` are its own options (argument-parser's error if not).
    public static func validateArguments(_ arguments: [String]) throws {
        _ = try Options.parse(arguments)
    }

    /// The message of an error ``validateArguments(_:)`` threw, without the usage of its options' type (whose
    /// name is not a command).
    public static func message(forArgumentError error: any Error) -> String {
        Options.message(for: error)
    }

    /// Combines the units' output lines with its own options parsed from `arguments` (see
    /// ``combine(_:options:)``).
    public static func combine(_ invocation: Invocation, arguments: [String]) async throws {
        try await self.combine(invocation, options: Options.parse(arguments))
    }
}

/// The options of a pipeline that has none of its own.
public struct NoOptions: ParsableArguments, Sendable {
    public init() {}
}

/// Everything a run of a ready pipeline needs but its own options: inputs, output and the engine's settings.
public struct Invocation: Sendable {
    /// Input files in order; `"-"` is standard input.
    public var inputs: [String]
    /// The output file; `"-"` is standard output; a `.gz` name means gzip.
    public var output: String
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
        runOptions: RunOptions = RunOptions(),
        readOptions: ReadOptions = ReadOptions(),
        writeOptions: WriteOptions = WriteOptions(),
        errorPolicy: ErrorPolicy = .stop,
        follow: Bool = false
    ) {
        self.inputs = inputs
        self.output = output
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
        try await self.writeResult(lines.map { Line($0) })
    }

    /// Writes `lines` to the invocation's output (for a result computed after the input ended).
    public func writeResult(_ lines: [Line]) async throws {
        try await self.writeResult(Pipeline.from(lines))
    }

    /// Writes the lines of `text` — chunks of bytes, back to back, lines ending with `\n` — to the invocation's
    /// output: for a large result made in memory, written at the speed of copying a file
    /// (``Sluice/Pipeline/lines(inMemory:name:)``).
    public func writeResult(text: [[UInt8]]) async throws {
        try await self.writeResult(Pipeline.lines(inMemory: text, name: "result"))
    }

    private func writeResult(_ lines: Pipeline<Line>) async throws {
        var options = self.runOptions
        options.shutdown = nil  // the result of a run that already ended is written whole
        options.monitor = nil  // a progress display shows the main run, not this one
        try await lines.write(to: self.output, options: self.writeOptions).run(options)
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
