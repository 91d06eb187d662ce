import CoreMetrics

/// A stage's swift-metrics instruments, labelled `sluice_stage_*` with `pipeline` and `stage` dimensions, so a
/// Prometheus (or any) backend sees live numbers, updated once per batch — not only at the end of a run.
final class StageMetrics: Sendable {
    let recordsIn: Counter
    let recordsOut: Counter
    let errors: Counter
    let skipped: Counter
    let retries: Counter
    let deadLetters: Counter
    let timeouts: Counter
    /// Time the stage waited for room in a full downstream channel, per send that had to wait.
    let blocked: Timer
    /// Batches waiting in the stage's input channel, sampled at each receive.
    let channelDepth: Gauge
    /// The most batches that waited in the stage's input channel at once.
    let queueDepthPeak: Gauge
    /// How long the stage took per batch (per call for asynchronous stages).
    let latency: Timer

    init(pipeline: String, stage: String, factory: any MetricsFactory) {
        let dimensions = [("pipeline", pipeline), ("stage", stage)]
        self.recordsIn = Counter(label: "sluice_stage_records_in", dimensions: dimensions, factory: factory)
        self.recordsOut = Counter(label: "sluice_stage_records_out", dimensions: dimensions, factory: factory)
        self.errors = Counter(label: "sluice_stage_errors", dimensions: dimensions, factory: factory)
        self.skipped = Counter(label: "sluice_stage_skipped", dimensions: dimensions, factory: factory)
        self.retries = Counter(label: "sluice_stage_retries", dimensions: dimensions, factory: factory)
        self.deadLetters = Counter(label: "sluice_stage_dead_letters", dimensions: dimensions, factory: factory)
        self.timeouts = Counter(label: "sluice_stage_timeouts", dimensions: dimensions, factory: factory)
        self.blocked = Timer(label: "sluice_stage_blocked", dimensions: dimensions, factory: factory)
        self.channelDepth = Gauge(label: "sluice_stage_channel_depth", dimensions: dimensions, factory: factory)
        self.queueDepthPeak = Gauge(label: "sluice_stage_channel_depth_peak", dimensions: dimensions, factory: factory)
        self.latency = Timer(label: "sluice_stage_latency", dimensions: dimensions, factory: factory)
    }
}
