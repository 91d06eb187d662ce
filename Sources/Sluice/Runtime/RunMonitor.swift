import Synchronization

/// A live view of a running pipeline: what every stage has done so far, for progress displays and dashboards.
///
/// ```swift
/// let monitor = RunMonitor()
/// var options = RunOptions()
/// options.monitor = monitor
/// async let report = pipeline.run(options)
/// // meanwhile, a few times a second:
/// let read = monitor.stages.bytesRead     // or any stage: monitor.stages.first { $0.name == "parse" }
/// ```
///
/// Reading it is cheap (relaxed atomic loads) and never slows the stages down. Use one monitor per run.
public final class RunMonitor: Sendable {
    private let recorders = Locked<[StageRecorder]>([])

    /// Creates a monitor to pass in ``RunOptions/monitor``.
    public init() {}

    /// What every stage has done so far, in the order of the run report (empty before the run starts).
    public var stages: [StageReport] {
        let now = monotonicNanoseconds()
        return self.recorders.withLock { $0 }.map { $0.report(runEnd: now) }
    }

    func attach(_ recorders: [StageRecorder]) {
        self.recorders.withLock { $0 = recorders }
    }
}
