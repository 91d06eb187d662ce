public import CoreMetrics
public import Logging

/// Settings for one run of a pipeline.
///
/// ```swift
/// var options = RunOptions()
/// options.channelCapacity = 8
/// options.batch = BatchLimits(maxRecords: 4096)
/// let report = try await pipeline.run(options)
/// ```
public struct RunOptions: Sendable {
    /// The pipeline's name, in logs and metrics. Default `"pipeline"`.
    public var name = "pipeline"
    /// Where the run logs its lifecycle — start, shutdown requested, drained, errors, retries, dead letters —
    /// with `pipeline` and `stage` metadata. Default: no logging.
    public var logger = Logger(label: "sluice", factory: { _ in SwiftLogNoOpLogHandler() })
    /// The swift-metrics factory for the per-stage `sluice_stage_*` metrics; `nil` (the default) uses the
    /// process's `MetricsSystem`, which reports nothing unless the application bootstraps a backend.
    public var metricsFactory: (any MetricsFactory)?
    /// A live view of the run's stages while it runs (for progress displays). Default: none.
    public var monitor: RunMonitor?
    /// How many batches each channel between two stages holds before the upstream stage waits. Default 4.
    public var channelCapacity: Int
    /// How large each batch may grow.
    public var batch: BatchLimits
    /// The pool that stages placed on ``Placement/compute`` use (parallel stages by default). The caller owns it:
    /// the run does not shut it down. When `nil`, a run that needs a pool creates one and shuts it down at its end.
    public var computePool: ComputePool?
    /// How many threads a pool created by the run gets (ignored when ``computePool`` is set). Defaults to
    /// ``ComputePool/activeProcessorCount``. That pool's threads yield to the run's readers and writers
    /// (``ComputePool/Priority/yielding``).
    public var computeThreads: Int?
    /// The clock every wait of the run uses: retry backoff, timeouts, the drain deadline. Tests inject a manual
    /// clock. Default `ContinuousClock()`.
    public var clock: any Clock<Duration> = ContinuousClock()
    /// A signal to request a graceful shutdown of the run from outside (see ``ShutdownSignal``). Inside a
    /// `ServiceGroup` the run also shuts down gracefully with the group, without it.
    public var shutdown: ShutdownSignal?
    /// How long a graceful shutdown may take to drain before the run is cancelled, on ``clock``; the error then
    /// names the stages still busy. `nil`: no limit. Default 30 seconds.
    public var drainDeadline: Duration? = .seconds(30)
    /// The longest a record waits inside the run, on ``clock``, before it reaches the sink's output — on a live
    /// input that pauses, a slow pipe, a followed log. Default 200 ms.
    ///
    /// Under load nothing changes: batches fill and sinks write in large blocks. Records are held back only where
    /// holding them saves work — a partial batch, a write buffer, a partial gzip block — and each of those moves
    /// on as soon as its stage's input is idle (a gzip block: at the latest when its oldest line is `maxDelay`
    /// old), so a record read from a pipe reaches standard output or a file without waiting for more input.
    public var maxDelay: Duration = .milliseconds(200)
    /// The most bytes of data the run keeps in flight — decoded input, the lines framed from it, gzip blocks —
    /// before file readers wait for room. Default 32 MiB: with the other defaults a run holds at most 57 MiB of
    /// data (``RunReport/bytesInFlightBound``) whatever the input's size, compression ratio, line length or
    /// record count, and well-behaved runs stay far below (a few MiB: under load, stages keep up).
    ///
    /// The engine's stages let go of a batch before they wait for more input, so readers always get room back. A
    /// custom ``Stage`` or ``Sink`` that keeps whole batches of lines while it waits should keep the lines (or their
    /// bytes) instead; if nothing is released for 5 seconds, a reader goes on anyway and logs a warning.
    public var maxBytesInFlight: Int = 32 << 20
    /// Watches the cooperative pool for lag while the run lasts (see ``LagProbe``); the run reports it in
    /// ``RunReport/poolLag``. Default `nil`: off (the `sluice` command turns it on).
    public var lagProbe: LagProbe?

    /// Hooks for tests and instrumentation; internal so the public surface stays small.
    var hooks = Hooks()

    /// Creates run options.
    ///
    /// - Parameters:
    ///   - channelCapacity: How many batches each channel holds; at least 1.
    ///   - batch: How large each batch may grow.
    ///   - computePool: The pool for stages placed on ``Placement/compute``; the caller owns it.
    ///   - computeThreads: How many threads a pool created by the run gets, when `computePool` is `nil`.
    public init(
        channelCapacity: Int = 4,
        batch: BatchLimits = BatchLimits(),
        computePool: ComputePool? = nil,
        computeThreads: Int? = nil
    ) {
        self.channelCapacity = channelCapacity
        self.batch = batch
        self.computePool = computePool
        self.computeThreads = computeThreads
    }

    func validate() throws(ConfigurationError) {
        try ConfigurationError.requirePositive(self.channelCapacity, "channelCapacity")
        try self.batch.validate()
        try ConfigurationError.requirePositive(self.maxBytesInFlight, "maxBytesInFlight")
        if let threads = self.computeThreads {
            try ConfigurationError.requirePositive(threads, "computeThreads")
        }
        guard self.maxDelay > .zero else {
            let milliseconds = Int(self.maxDelay.components.seconds * 1000)
            throw ConfigurationError(setting: "maxDelay", value: milliseconds, requirement: "must be positive")
        }
        if let probe = self.lagProbe, probe.interval <= .zero {
            throw ConfigurationError(
                setting: "lagProbe.interval",
                text: "\(probe.interval)",
                requirement: "must be positive"
            )
        }
    }

    struct Hooks: Sendable {
        /// Called when a stage's send has to wait for room, once the sender is parked, with the stage's name.
        var onSendSuspended: (@Sendable (String) -> Void)?
        /// Called when a parallel stage has `reorderWindow` batches out and waits, with the stage's name.
        var onReorderWindowFull: (@Sendable (String) -> Void)?
        /// Called when a stage's task ends, with the stage's name.
        var onStageEnded: (@Sendable (String) -> Void)?
        /// Called when a stage is about to wait for input on a descriptor (a pipe, a followed file), with the
        /// stage's name.
        var onInputWait: (@Sendable (String) -> Void)?
        /// Called with the compute pool a run creates for itself, right after it starts.
        var onComputePoolCreated: (@Sendable (ComputePool) -> Void)?
        /// Called after each tick of the lag probe, with the lag it measured.
        var onLagProbeTick: (@Sendable (Duration) -> Void)?
        /// How long a reader waits for room while nothing is released before it reads on anyway (see
        /// ``ByteBudget/stallLimit``); shorter in tests.
        var byteBudgetStallLimit: Duration?
        /// Follow files as if the system had no inotify instance left (the polling fallback, in tests).
        var inotifyExhausted = false
    }
}
