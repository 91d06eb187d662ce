public import Sluice

/// `grep`: the lines containing a byte string, like `LC_ALL=C grep -F` (`-vF` with `--invert`).
public enum Grep: ReadyPipeline {
    public static let name = "grep"
    public static let summary = "the lines containing --pattern P as bytes, like LC_ALL=C grep -F (--invert: -vF)"
    public static let options = [
        PipelineOption(name: "pattern", summary: "the byte string to look for", takesValue: true, required: true),
        PipelineOption(name: "invert", summary: "keep the lines that do not contain it", takesValue: false),
    ]
    public static let stages = "read -> lines -> match (compute pool) -> write"

    public static func run(_ invocation: Invocation) async throws -> RunReport<Void> {
        let pattern = Array((invocation.values["pattern"] ?? "").utf8)
        let invert = invocation.flags.contains("invert")
        return try await invocation.lines
            .filter(name: "match", on: .compute) { $0.contains(pattern) != invert }
            .write(to: invocation.output, options: invocation.writeOptions)
            .run(invocation.runOptions)
    }
}
