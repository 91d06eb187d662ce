public import ServiceLifecycle

/// A pipeline as a swift-service-lifecycle `Service`, to run inside a `ServiceGroup` next to a server.
///
/// ```swift
/// let ingest = Pipeline.lines(from: ["-"]).map(parse).write(to: "events.gz").service()
/// let group = ServiceGroup(
///     configuration: ServiceGroupConfiguration(
///         services: [.init(service: ingest, successTerminationBehavior: .gracefullyShutdownGroup)],
///         gracefulShutdownSignals: [.sigterm, .sigint],
///         logger: logger
///     )
/// )
/// try await group.run()
/// ```
///
/// On the group's graceful shutdown the sources stop reading, everything read flows through, and the sinks flush
/// and close; the run then returns. A pipeline is usually finite: give it `successTerminationBehavior:
/// .gracefullyShutdownGroup`, or the group reports its normal end as `serviceFinishedUnexpectedly`.
public struct PipelineService<Result: Sendable>: Service {
    /// The pipeline the service runs.
    public let pipeline: RunnablePipeline<Result>
    /// The options of its run.
    public var options: RunOptions
    private let onReport: (@Sendable (RunReport<Result>) -> Void)?

    /// A service running `pipeline` once.
    ///
    /// - Parameters:
    ///   - pipeline: The pipeline.
    ///   - options: The options of its run.
    ///   - onReport: Called with the run's report when it ends without error.
    public init(
        _ pipeline: RunnablePipeline<Result>,
        options: RunOptions = RunOptions(),
        onReport: (@Sendable (RunReport<Result>) -> Void)? = nil
    ) {
        self.pipeline = pipeline
        self.options = options
        self.onReport = onReport
    }

    public func run() async throws {
        let report = try await self.pipeline.run(self.options)
        self.onReport?(report)
    }
}

extension RunnablePipeline {
    /// This pipeline as a `Service` for a swift-service-lifecycle `ServiceGroup`. See ``PipelineService``.
    public func service(
        options: RunOptions = RunOptions(),
        onReport: (@Sendable (RunReport<Result>) -> Void)? = nil
    ) -> PipelineService<Result> {
        PipelineService(self, options: options, onReport: onReport)
    }
}
