import ArgumentParser
import Pipelines
import Sluice
import SluiceCommand

/// `head`: the first --lines N lines of the inputs; reading stops once they are out.
enum Head: ReadyPipeline {
    struct Options: ParsableArguments, Sendable {
        @Option(help: "How many lines to keep.")
        var lines = 10
    }

    static let name = "head"
    static let summary = "the first --lines N lines of the inputs"
    static let stages = "read -> lines -> take -> write"

    static func run(_ invocation: Invocation, options: Options) async throws -> RunReport<Void> {
        try await invocation.lines
            .stage(Take(count: options.lines), name: "take")
            .write(to: invocation.output, options: invocation.writeOptions)
            .run(invocation.runOptions)
    }
}

/// Passes on the first `count` lines, then returns: the stages before it stop, the ones after it finish.
struct Take: Stage {
    let count: Int

    func run(input: StageInput<Line>, output: StageOutput<Line>) async throws {
        var left = self.count
        for try await batch in input {
            for line in batch {
                guard left > 0 else { return }
                try await output.emit(line)
                left -= 1
            }
            if left == 0 { return }
        }
    }
}

// Every ready pipeline of Sluice, and this package's own.
await SluiceCommand.main(pipelines: PipelineRegistry.all + [Head.self])
