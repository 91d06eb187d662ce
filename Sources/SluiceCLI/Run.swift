import ArgumentParser
import Pipelines

/// `sluice run`: a subcommand per ready pipeline (``RunPipeline``), each with its own options and every pipeline's.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a ready pipeline on files: `sluice run NAME [options] [inputs]`.",
        discussion: CommonRunOptions.discussion,
        subcommands: PipelineRegistry.all.map { runCommand(for: $0) }
    )
}
