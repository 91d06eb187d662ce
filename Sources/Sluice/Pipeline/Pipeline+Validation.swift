extension Pipeline {
    /// This pipeline, failing the run before it starts if `check` throws.
    func validating(_ check: @escaping @Sendable () throws -> Void) -> Pipeline<Output> {
        Pipeline { graph, edges in
            do { try check() } catch { graph.fail(error) }
            self.attach(graph, edges)
        }
    }
}

extension RunnablePipeline {
    /// This pipeline, failing the run before it starts if `check` throws.
    func validating(_ check: @escaping @Sendable () throws -> Void) -> RunnablePipeline<Result> {
        RunnablePipeline { graph in
            do { try check() } catch { graph.fail(error) }
            return self.build(graph)
        }
    }
}
