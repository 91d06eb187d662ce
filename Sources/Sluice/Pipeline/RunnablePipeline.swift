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
        var outcome: Swift.Result<RunReport<Result>, any Error>
        if let error = graph.buildError {
            outcome = .failure(error)
        } else if let error = await Self.openDeadLetters(graph) {
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
        if let error = await Self.closeDeadLetters(graph), case .success = outcome {
            outcome = .failure(error)
        }
        // A pool made for this run ends with it: no thread outlives the run, whatever its outcome.
        await graph.ownedPool?.shutdown()
        await graph.ioThreads.shutdown()
        return try outcome.get()
    }

    /// Opens (creates, empties) the run's dead-letter files on the compute pool; the first error, if any.
    private static func openDeadLetters(_ graph: PipelineGraph) async -> (any Error)? {
        let destinations = graph.deadLetters
        guard !destinations.isEmpty, let pool = graph.computePool() else { return nil }
        var opened: [DeadLetters] = []
        for destination in destinations {
            do {
                try await pool.run { try destination.open() }
                opened.append(destination)
            } catch {
                for destination in opened { try? await pool.run { try destination.close() } }
                return PipelineError(stage: "dead-letters", underlying: error)
            }
        }
        return nil
    }

    /// Closes the run's dead-letter files on the compute pool; the first error, if any.
    private static func closeDeadLetters(_ graph: PipelineGraph) async -> (any Error)? {
        let destinations = graph.deadLetters
        guard !destinations.isEmpty, let pool = graph.computePool() else { return nil }
        var failure: (any Error)?
        for destination in destinations {
            do {
                try await pool.run { try destination.close() }
            } catch {
                failure = failure ?? PipelineError(stage: "dead-letters", underlying: error)
            }
        }
        return failure
    }
}
