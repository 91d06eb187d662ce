import ArgumentParser
import Pipelines

#if canImport(Glibc)
import Glibc
#endif

@main
struct SluiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "Run ready stream-processing pipelines on files: gzip or plain, in and out.",
        subcommands: [Run.self, List.self, Describe.self]
    )

    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        // `sluice run NAME` with a NAME that is no pipeline's: say which ones there are (argument-parser would only
        // say the argument is unexpected).
        if arguments.first == "run", let name = arguments.dropFirst().first, !name.hasPrefix("-"), name != "help",
            PipelineRegistry.named(name) == nil
        {
            CommonRunOptions.writeStandardError(
                "Error: \(unknownPipelineMessage(name))\nUsage: sluice run <pipeline> [<options>] [<inputs> ...]\n"
            )
            Glibc.exit(ExitCode.validationFailure.rawValue)
        }
        await self.main(arguments)
    }
}
