import Logging
import Synchronization

/// Runs every stage of a graph in one task group, and decides how the run ended.
///
/// Structured concurrency throughout: when `run` returns or throws, every stage task has ended.
enum PipelineRunner {
    private enum Outcome: Sendable {
        case finished(index: Int)
        case failed(index: Int)
        /// The drain deadline passed after a shutdown request.
        case deadlinePassed
        /// The deadline watcher ended without the deadline passing.
        case watcherEnded
    }

    static func run<Result: Sendable>(
        _ graph: PipelineGraph,
        result slot: ResultSlot<Result>
    ) async throws -> RunReport<Result> {
        let nodes = graph.nodes
        let failures = FailureRecorder()
        let onStageEnded = graph.options.hooks.onStageEnded
        graph.options.monitor?.attach(nodes.map(\.recorder))
        let logger = graph.logger
        logger.info(
            "pipeline started",
            metadata: ["stages": "\(nodes.map(\.recorder.name).joined(separator: " -> "))"]
        )
        let start = monotonicNanoseconds()
        let lagMonitor = graph.options.lagProbe.map {
            PoolLagMonitor(settings: $0, pipeline: graph.options.name, factory: graph.metricsFactory)
        }

        await withTaskGroup(of: Outcome.self) { group in
            for (index, node) in nodes.enumerated() {
                group.addTask(executorPreference: node.executor) {
                    node.recorder.startNanoseconds.store(monotonicNanoseconds(), ordering: .relaxed)
                    defer {
                        node.recorder.endNanoseconds.store(monotonicNanoseconds(), ordering: .relaxed)
                        onStageEnded?(node.recorder.name)
                    }
                    do {
                        try await node.body()
                        return .finished(index: index)
                    } catch {
                        failures.record(error, stage: node.recorder.name)
                        return .failed(index: index)
                    }
                }
            }
            let (shutdown, clock, deadline) = (graph.shutdown, graph.options.clock, graph.options.drainDeadline)
            group.addTask {
                // Once a shutdown is requested, the stages have `deadline` to drain.
                await shutdown.wait()
                guard !Task.isCancelled else { return .watcherEnded }
                logger.notice(
                    "shutdown requested: sources stop, records in flight drain",
                    metadata: ["drain-deadline": "\(deadline.map { "\($0)" } ?? "none")"]
                )
                guard let deadline else { return .watcherEnded }
                do {
                    try await clock.sleep(for: deadline)
                } catch {
                    return .watcherEnded
                }
                return .deadlinePassed
            }

            if let probe = lagMonitor {
                let (clock, onTick) = (graph.clock, graph.options.hooks.onLagProbeTick)
                group.addTask {
                    await probe.run(clock: clock, logger: logger, onTick: onTick)
                    return .watcherEnded
                }
            }

            var running = Set(nodes.indices)
            var sinksRunning = graph.sinkCount
            var stopping = false
            for await outcome in group {
                switch outcome {
                case .failed(let index):
                    running.remove(index)
                    // The first failure stops everything else; what the others throw next is a consequence.
                    if !stopping {
                        stopping = true
                        group.cancelAll()
                    }
                case .finished(let index):
                    running.remove(index)
                    guard nodes[index].isSink else { break }
                    sinksRunning -= 1
                    if sinksRunning == 0 && !stopping {
                        // Every sink is done: whatever the upstream stages still do, nobody will consume it.
                        stopping = true
                        failures.close()
                        group.cancelAll()
                    }
                case .deadlinePassed:
                    guard !running.isEmpty else { break }
                    // The stages at work — not those waiting for input or for room downstream — unless all wait.
                    let working = running.sorted().filter { !nodes[$0].recorder.isWaiting }
                    let busy = (working.isEmpty ? running.sorted() : working).map { nodes[$0].recorder.name }
                    logger.error(
                        "drain deadline passed: cancelling the run",
                        metadata: ["busy-stages": "\(busy.joined(separator: ", "))"]
                    )
                    failures.record(
                        DrainDeadlineExceeded(deadline: deadline ?? .zero, busyStages: busy),
                        stage: busy[0]
                    )
                    stopping = true
                    group.cancelAll()
                case .watcherEnded:
                    break
                }
                if running.isEmpty {
                    // Every stage ended: stop the deadline watcher too.
                    group.cancelAll()
                }
            }
        }

        let end = monotonicNanoseconds()
        if let failure = failures.rootCause(callerCancelled: Task.isCancelled) {
            if let failure = failure as? PipelineError {
                nodes.first { $0.recorder.name == failure.stage }?.recorder.metrics.errors.increment()
                logger.error(
                    "pipeline failed",
                    metadata: ["stage": "\(failure.stage)", "error": "\(failure.underlying)"]
                )
            } else {
                logger.notice("pipeline cancelled")
            }
            throw failure
        }
        guard let result = slot.take() else {
            // Unreachable unless a sink returned without its result: a bug, reported rather than hidden.
            preconditionFailure("the pipeline's sink finished without a result")
        }
        let interrupted = graph.shutdown.isRequested
        logger.info(
            interrupted ? "pipeline drained after a shutdown request" : "pipeline finished",
            metadata: ["wall-time": "\(Duration.nanoseconds(Int64(end &- start)))"]
        )
        return RunReport(
            result: result,
            stages: nodes.map { $0.recorder.report(runEnd: end) },
            wallTime: .nanoseconds(Int64(end &- start)),
            peakRecordsInFlight: graph.flight.peak,
            recordsInFlightBound: graph.recordsInFlightBound,
            peakBytesInFlight: graph.bytesInFlight.peak,
            bytesInFlightBound: graph.bytesInFlightBound,
            interrupted: interrupted,
            poolLag: lagMonitor?.lags.summary
        )
    }
}

/// Collects the errors stages end with and picks the root cause.
///
/// A `CancellationError` or a ``ChannelError`` is what a stage throws when another stage's failure (or the caller)
/// stopped it: a consequence. Any other error is a cause; the first recorded wins.
final class FailureRecorder: Sendable {
    private struct State {
        var cause: PipelineError?
        var consequence: PipelineError?
        var closed = false
    }

    private let state = Locked(State())

    func record(_ error: any Error, stage: String) {
        let failure: PipelineError
        switch error {
        case let error as PipelineError:
            failure = error
        case let error as RecordFailure:
            failure = PipelineError(
                stage: stage,
                underlying: error.underlying,
                recordIndex: error.index,
                source: error.source,
                line: error.line
            )
        case let error as UpstreamFailure:
            failure = PipelineError(stage: error.stage, underlying: error.underlying)
        default:
            failure = PipelineError(stage: stage, underlying: error)
        }
        let isConsequence = Self.isConsequence(error)
        self.state.withLock { state in
            guard !state.closed else { return }
            if isConsequence {
                if state.consequence == nil { state.consequence = failure }
            } else if state.cause == nil {
                state.cause = failure
            }
        }
    }

    /// Ignores what stages throw from now on: the run already succeeded and is only stopping the rest.
    func close() {
        self.state.withLock { $0.closed = true }
    }

    /// The error the run throws, or `nil` if it succeeded.
    func rootCause(callerCancelled: Bool) -> (any Error)? {
        self.state.withLock { state in
            if let cause = state.cause { return cause }
            guard let consequence = state.consequence else { return nil }
            // Stopped by the caller's cancellation: that is what the caller should see.
            return callerCancelled ? CancellationError() : consequence
        }
    }

    private static func isConsequence(_ error: any Error) -> Bool {
        if error is CancellationError { return true }
        // `finished`: a merged sibling failed the channel this stage sends into.
        if let error = error as? ChannelError, error.code == .consumerGone || error.code == .finished { return true }
        return false
    }
}

/// Where the sink puts the run's result.
final class ResultSlot<Result: Sendable>: Sendable {
    private let value = Locked<Result?>(nil)

    func store(_ result: Result) {
        self.value.withLock { $0 = result }
    }

    func take() -> Result? {
        self.value.withLock { $0.take() }
    }
}
