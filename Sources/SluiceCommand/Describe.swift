import ArgumentParser
import Pipelines

struct Describe: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a ready pipeline's options and stages.")

    @Argument(help: "The pipeline's name (see `sluice list`).")
    var name: String

    func validate() throws {
        guard PipelineCatalog.named(self.name) != nil else {
            throw ValidationError(unknownPipelineMessage(self.name))
        }
    }

    func run() {
        guard let pipeline = PipelineCatalog.named(self.name) else { return }
        print("\(pipeline.name): \(pipeline.summary)")
        print("stages: \(pipeline.stages)")
        print(Self.ownOptions(of: pipeline))
        print("and every pipeline's options: see `sluice run \(pipeline.name) --help`")
    }

    /// The pipeline's own options, as its help shows them.
    static func ownOptions<P: ReadyPipeline>(of pipeline: P.Type) -> String {
        let help = P.Options.helpMessage(columns: 100)
        guard let start = help.range(of: "OPTIONS:") else { return "options: none of its own" }
        let options = help[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.contains("-h, --help") && !$0.contains("Show help information") }
        return "options:" + options.joined(separator: "\n").trimmingTrailingWhitespace
    }
}

extension String {
    fileprivate var trimmingTrailingWhitespace: String {
        var text = self
        while text.last?.isWhitespace == true { text.removeLast() }
        return text
    }
}

func unknownPipelineMessage(_ name: String) -> String {
    "unknown pipeline '\(name)'; known pipelines: " + PipelineCatalog.pipelines.map { $0.name }.joined(separator: ", ")
}
