import ArgumentParser
import Pipelines

/// `sluice run`: a subcommand per ready pipeline (``RunPipeline``), each with its own options and every pipeline's.
struct Run: ParsableCommand {
    // Computed: the pipelines are known only once `SluiceCommand.main(pipelines:)` set them.
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            abstract: "Run a ready pipeline on files: `sluice run NAME [options] [inputs]`.",
            discussion: CommonRunOptions.discussion,
            subcommands: PipelineCatalog.pipelines.map { runCommand(for: $0) }
        )
    }
}
