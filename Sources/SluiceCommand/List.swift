import ArgumentParser
import Pipelines

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the ready pipelines.")

    func run() {
        let width = PipelineCatalog.pipelines.map { $0.name.count }.max() ?? 0
        for pipeline in PipelineCatalog.pipelines {
            print(pipeline.name + String(repeating: " ", count: width - pipeline.name.count) + "  " + pipeline.summary)
        }
    }
}
