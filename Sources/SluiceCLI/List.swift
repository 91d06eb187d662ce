import ArgumentParser
import Pipelines

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the ready pipelines.")

    func run() {
        let width = PipelineRegistry.all.map { $0.name.count }.max() ?? 0
        for pipeline in PipelineRegistry.all {
            print(pipeline.name + String(repeating: " ", count: width - pipeline.name.count) + "  " + pipeline.summary)
        }
    }
}
