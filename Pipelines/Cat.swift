public import Sluice

/// `cat`: every line of the inputs, in input order, unchanged.
public enum Cat: ReadyPipeline {
    public static let name = "cat"
    public static let summary = "every line of the inputs, in order, unchanged (gzip in or out)"
    public static let stages = "read -> lines -> write"
    public static let resultMerge = ResultMerge.concatenate

    public static func run(_ invocation: Invocation, options: NoOptions) async throws -> RunReport<Void> {
        try await invocation.lines
            .write(to: invocation.output, options: invocation.writeOptions)
            .run(invocation.runOptions)
    }
}
