extension Pipeline {
    /// Sends every record both down this pipeline and into a side branch (fan-out).
    ///
    /// ```swift
    /// try await Pipeline.from(events)
    ///     .tee { $0.filter(\.isError).forEach { alert($0) } }
    ///     .map(\.summary)
    ///     .forEach { print($0) }
    ///     .run()
    /// ```
    ///
    /// The stage before the tee sends each batch into both channels, so there is no extra hop. Each branch
    /// backpressures its own channel: a slow branch slows the stage before the tee (and so the source) — it does not
    /// lose records. A branch that stops early (a sink that needed only some records) is dropped, and the other
    /// branch goes on. The branch's result is discarded; the run ends when every sink has ended.
    ///
    /// - Parameter branch: Builds the side branch from a pipeline of this pipeline's records.
    /// - Returns: This pipeline, to continue the main branch.
    public func tee<BranchResult: Sendable>(
        _ branch: @escaping @Sendable (Pipeline<Output>) -> RunnablePipeline<BranchResult>
    ) -> Pipeline<Output> {
        Pipeline { graph, edges in
            let tap = graph.makeTap()
            let branchInput = Pipeline { graph, branchEdges in
                graph.addToTap(tap, branchEdges)
            }
            _ = branch(branchInput).build(graph)
            self.attach(graph, edges + graph.takeTap(tap, of: Output.self))
        }
    }
}
