public import ArgumentParser
public import Sluice

/// `grep`: the lines containing a byte string, like `LC_ALL=C grep -F` (`-vF` with `--invert`).
public enum Grep: ReadyPipeline {
    public static let name = "grep"
    public static let summary = "the lines containing --pattern P as bytes, like LC_ALL=C grep -F (--invert: -vF)"
    public static let stages = "read -> lines -> match (compute pool) -> write"
    public static let resultMerge = ResultMerge.concatenate

    public struct Options: ParsableArguments, Sendable {
        @Option(help: "The byte string to look for.")
        public var pattern: String

        @Flag(help: "Keep the lines that do not contain the pattern.")
        public var invert = false

        public init() {}
    }

    public static func run(_ invocation: Invocation, options: Options) async throws -> RunReport<Void> {
        let pattern = Array(options.pattern.utf8)
        let invert = options.invert
        return try await invocation.lines
            .filter(name: "match", on: .compute, containing: pattern, invert: invert)
            .write(to: invocation.output, options: invocation.writeOptions)
            .run(invocation.runOptions)
    }
}
