/// The ready pipelines the `sluice` CLI knows, by name.
public enum PipelineRegistry {
    /// Every ready pipeline. A new pipeline is one file in `Pipelines/` and one line here.
    public static let all: [any ReadyPipeline.Type] = [
        Cat.self,
        Grep.self,
        WordCount.self,
        WordFrequency.self,
        JSONFilter.self,
    ]

    /// The pipeline called `name`, if any.
    public static func named(_ name: String) -> (any ReadyPipeline.Type)? {
        self.all.first { $0.name == name }
    }
}
