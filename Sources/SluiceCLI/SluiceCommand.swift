import ArgumentParser

@main
struct SluiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "Run ready stream-processing pipelines on files: gzip or plain, in and out.",
        subcommands: [Run.self, List.self, Describe.self]
    )
}
