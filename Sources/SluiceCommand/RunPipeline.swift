import ArgumentParser
import Pipelines

/// `sluice run NAME`: one ready pipeline, with its own options (its `Options`) and every pipeline's.
struct RunPipeline<P: ReadyPipeline>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: P.name,
            abstract: P.summary,
            discussion: "Stages: \(P.stages).\n\n" + CommonRunOptions.discussion
        )
    }

    @OptionGroup(title: "\(P.name) options")
    var own: P.Options

    @OptionGroup(title: "Options of every pipeline")
    var common: CommonRunOptions

    func run() async throws {
        try await self.common.run(P.self, options: self.own)
    }
}

/// The `run` command of `pipeline`.
func runCommand<P: ReadyPipeline>(for pipeline: P.Type) -> any ParsableCommand.Type {
    RunPipeline<P>.self
}
