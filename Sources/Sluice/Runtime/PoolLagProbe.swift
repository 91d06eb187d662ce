import CoreMetrics
import Logging

/// Watches Swift's cooperative thread pool for lag: a task that wakes every ``interval`` on the run's clock and
/// measures how late it runs. On a healthy pool it runs on time; when stages block the pool's threads (a blocking
/// call in a `map`, a lock held across a slow operation) every task waits, and the probe waits with them — the
/// lag it measures is how long any task of the run, and of the process, had to wait for a thread.
///
/// The run reports the lag's percentiles (``RunReport/poolLag``), records it in the `sluice_pool_lag` timer, and
/// logs a warning when it passes ``warningThreshold`` (once per episode: again only after a tick on time).
///
/// ```swift
/// var options = RunOptions()
/// options.lagProbe = LagProbe(interval: .milliseconds(50), warningThreshold: .milliseconds(20))
/// ```
public struct LagProbe: Sendable, Hashable {
    /// How often the probe wakes. Default 100 ms.
    public var interval: Duration
    /// The lag above which the run logs a warning. Default 100 ms.
    public var warningThreshold: Duration

    public init(interval: Duration = .milliseconds(100), warningThreshold: Duration = .milliseconds(100)) {
        self.interval = interval
        self.warningThreshold = warningThreshold
    }
}

/// The probe of one run (see ``LagProbe``).
final class PoolLagMonitor: Sendable {
    let settings: LagProbe
    let lags = LatencyRecorder()
    private let metric: Timer

    init(settings: LagProbe, pipeline: String, factory: any MetricsFactory) {
        self.settings = settings
        self.metric = Timer(label: "sluice_pool_lag", dimensions: [("pipeline", pipeline)], factory: factory)
    }

    /// Ticks until the task is cancelled.
    func run(clock: RunClock, logger: Logger, onTick: (@Sendable (Duration) -> Void)?) async {
        var late = false
        while !Task.isCancelled {
            let due = clock.elapsed() + self.settings.interval
            do {
                try await clock.sleepUntil(due)
            } catch {
                return  // cancelled: the run is over
            }
            let lag = max(clock.elapsed() - due, .zero)
            let nanoseconds = lag.components.seconds * 1_000_000_000 + lag.components.attoseconds / 1_000_000_000
            self.lags.record(nanoseconds: UInt64(nanoseconds))
            self.metric.recordNanoseconds(nanoseconds)
            if lag >= self.settings.warningThreshold {
                if !late {
                    logger.warning(
                        "cooperative pool lag: tasks wait for a thread; a stage may block it",
                        metadata: ["lag": "\(lag)", "threshold": "\(self.settings.warningThreshold)"]
                    )
                }
                late = true
            } else {
                late = false
            }
            onTick?(lag)
        }
    }
}
