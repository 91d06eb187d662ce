import ArgumentParser
import Pipelines

struct Describe: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a ready pipeline's options and stages.")

    @Argument(help: "The pipeline's name (see `sluice list`).")
    var name: String

    func validate() throws {
        guard PipelineRegistry.named(self.name) != nil else {
            throw ValidationError(unknownPipelineMessage(self.name))
        }
    }

    func run() {
        guard let pipeline = PipelineRegistry.named(self.name) else { return }
        print("\(pipeline.name): \(pipeline.summary)")
        print("stages: \(pipeline.stages)")
        if pipeline.options.isEmpty {
            print("options: none of its own")
        } else {
            print("options:")
            for option in pipeline.options {
                let usage = "--\(option.name)" + (option.takesValue ? " VALUE" : "")
                print("  \(usage)\(option.required ? " (required)" : ""): \(option.summary)")
            }
        }
        print("and every pipeline's options: see `sluice run --help`")
    }
}

func unknownPipelineMessage(_ name: String) -> String {
    "unknown pipeline '\(name)'; known pipelines: " + PipelineRegistry.all.map { $0.name }.joined(separator: ", ")
}
