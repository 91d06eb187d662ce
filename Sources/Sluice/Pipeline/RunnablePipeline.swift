import ServiceLifecycle

/// A complete pipeline — sources, stages and a sink — ready to run.
///
/// Made by ending a ``Pipeline`` with a sink: `forEach`, `collect`, `reduce`, `drain`, or `to(_:)`.
/// It is a value; every call to ``run(_:)`` is a new, independent run.
public struct RunnablePipeline<Result: Sendable>: Sendable {
    /// Adds every stage to `graph` and returns where the sink will put its result.
    let build: @Sendable (PipelineGraph) -> ResultSlot<Result>

    init(build: @escaping @Sendable (PipelineGraph) -> ResultSlot<Result>) {
        self.build = build
    }

    /// Runs every stage until the sink finishes, and reports what each did.
    ///
    /// Every stage runs as a child task of the caller; when `run` returns or throws, all of them have ended.
    ///
    /// - Parameter options: Channel capacity and batch limits.
    /// - Returns: The sink's result and per-stage statistics.
    /// - Throws: ``ConfigurationError`` if `options` or a stage's settings cannot work, before anything starts. ``PipelineError`` if
    ///   a stage fails: the first stage's own error, not the cancellations it caused in the others.
    ///   `CancellationError` if the calling task is cancelled; every stage is then stopped.
    @discardableResult
    public func run(_ options: RunOptions = RunOptions()) async throws -> RunReport<Result> {
        try options.validate()
        let graph = PipelineGraph(options: options)
        let slot = self.build(graph)
        let outcome: Swift.Result<RunReport<Result>, any Error>
        if let error = graph.buildError {
            outcome = .failure(error)
        } else {
            do {
                // Inside a ServiceGroup, the group's graceful shutdown drains the run; elsewhere this does nothing.
                let shutdown = graph.shutdown
                outcome = .success(
                    try await withGracefulShutdownHandler {
                        try await PipelineRunner.run(graph, result: slot)
                    } onGracefulShutdown: {
                        shutdown.requestShutdown()
                    }
                )
            } catch {
                outcome = .failure(error)
            }
        }
        for destination in graph.deadLetters {
            destination.close()
        }
        // A pool made for this run ends with it: no thread outlives the run, whatever its outcome.
        await graph.ownedPool?.shutdown()
        await graph.ioThreads.shutdown()
        return try outcome.get()
    }
}
