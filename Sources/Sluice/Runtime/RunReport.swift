/// What one stage did during a run.
///
/// A stage's wall time splits three ways: ``busy`` working, ``waitingForInput`` (its upstream was slower), and
/// ``blockedOnOutput`` (its downstream was slower). The stage busy the longest is the bottleneck (never one that waited for input longer than it worked).
public struct StageReport: Sendable, Hashable {
    /// The stage's name, unique within the pipeline (e.g. `"map#2"` or a name given by the user).
    public var name: String
    /// What the stage does: `"source"`, `"map"`, `"filter"`, `"sink"`, ….
    public var kind: String
    /// Records the stage received (0 for a source).
    public var recordsIn: Int
    /// Records the stage sent downstream (0 for a sink).
    public var recordsOut: Int
    /// Batches the stage received.
    public var batchesIn: Int
    /// Batches the stage sent.
    public var batchesOut: Int
    /// Time spent neither waiting for input nor blocked on output.
    public var busy: Duration
    /// Time spent waiting for the upstream stage to deliver a batch.
    public var waitingForInput: Duration
    /// Time spent waiting for room in a downstream channel.
    public var blockedOnOutput: Duration
    /// How many sends had to wait for room: non-zero means backpressure reached this stage.
    public var blockedSends: Int
    /// Bytes the stage took in, for stages that handle bytes: a file source counts the file as stored
    /// (compressed for gzip), a compressor the uncompressed bytes it was given.
    public var bytesIn: Int
    /// Bytes the stage put out, for stages that handle bytes: a file source counts the decoded bytes, a file sink
    /// the bytes written as stored (compressed for gzip).
    public var bytesOut: Int
    /// Records dropped by the stage's ``ErrorPolicy/skip`` policy.
    public var skipped: Int
    /// Retries made under the stage's ``ErrorPolicy/retry(_:otherwise:)`` policy.
    public var retries: Int
    /// Records sent to dead letters by the stage's policy.
    public var deadLettered: Int
    /// Calls that passed the stage's timeout (``StageTimeoutError``), retried ones included.
    public var timedOut: Int
    /// How long the stage took per batch, from receiving it to asking for the next, less the time it waited for
    /// room downstream; per call for asynchronous stages (`stage`, `mapAsync`), per worker batch for parallel ones.
    /// `nil` for sources, and for stages that saw no record.
    public var latency: LatencySummary? = nil
    /// Batches waiting in the stage's input channel (now, and the most at once); zero for sources.
    public var queueDepth = QueueDepth(now: 0, peak: 0)
}

/// How many batches wait in a channel.
public struct QueueDepth: Sendable, Hashable {
    /// Waiting now (at the end of a run: 0 unless it failed).
    public var now: Int
    /// The most that waited at once: the channel's capacity means the stage was slower than its upstream.
    public var peak: Int

    public init(now: Int, peak: Int) {
        self.now = now
        self.peak = peak
    }
}

/// The outcome of ``RunnablePipeline/run(_:)``: the sink's result and what every stage did.
public struct RunReport<Result: Sendable>: Sendable {
    /// What the sink produced — the collected records for `collect()`, `()` for `forEach`.
    public var result: Result
    /// Every stage, from the sources to the sinks, in the order they were built.
    public var stages: [StageReport]
    /// Wall-clock time from the start of the run to its end.
    public var wallTime: Duration
    /// The most records in flight at once: in channels, or held by a stage that is working on or sending them.
    public var peakRecordsInFlight: Int
    /// The bound the engine guarantees for ``peakRecordsInFlight``: the sum over channels of
    /// `capacity × maxRecords`, plus the batches each stage may hold while working.
    public var recordsInFlightBound: Int
    /// The most bytes of data buffers held at once — decoded input, the lines framed from it, gzip blocks — in
    /// channels or by stages; a buffer several batches share counts once. Records of other types (the user's own)
    /// are bounded by ``recordsInFlightBound`` instead.
    public var peakBytesInFlight: Int
    /// The bound the engine guarantees for ``peakBytesInFlight``, from the run's options alone: every batch that
    /// can be in flight (the same count as ``recordsInFlightBound``, in batches) times the most bytes one batch can
    /// reference — `max(batch.maxBytes + batch.maxRecords + 2 × chunkSize, maxRecordBytes + chunkSize)` for lines
    /// read from files, a gzip block and the line crossing it for gzip output — plus what readers and writers keep
    /// outside batches (compressed input, a decoded chunk, a partial line; a partial block).
    public var bytesInFlightBound: Int
    /// Whether the run ended because of a graceful shutdown: the sources stopped early, and everything they had
    /// read went through.
    public var interrupted: Bool
    /// How late the cooperative pool ran the lag probe's ticks (``RunOptions/lagProbe``); `nil` when it was off or
    /// never ticked.
    public var poolLag: LatencySummary? = nil
    /// Counts of the pipeline's own, by name — an HTTP sink's requests, retries and breaker openings — shown after
    /// the stages in the description and in `--stats-json`. Empty unless the pipeline sets them.
    public var counters: [String: Int] = [:]

    /// The stage with the most busy time: the one to speed up (or parallelise) first.
    public var bottleneck: StageReport? {
        // A stage that mostly waited for input (a source waiting on a socket through the wait API) is not one.
        self.stages.filter { $0.waitingForInput <= $0.busy }.max { $0.busy < $1.busy }
    }

    /// The same report without the result, so reports of runs with different results can be handled alike.
    public var withoutResult: RunReport<Void> {
        RunReport<Void>(
            result: (),
            stages: self.stages,
            wallTime: self.wallTime,
            peakRecordsInFlight: self.peakRecordsInFlight,
            recordsInFlightBound: self.recordsInFlightBound,
            peakBytesInFlight: self.peakBytesInFlight,
            bytesInFlightBound: self.bytesInFlightBound,
            interrupted: self.interrupted,
            poolLag: self.poolLag,
            counters: self.counters
        )
    }

    /// The report of the stage called `name`.
    public subscript(stage name: String) -> StageReport? {
        self.stages.first { $0.name == name }
    }
}

extension RunReport: CustomStringConvertible {
    /// A table of the stages, one line each — records and bytes in and out, and the shares of time busy, waiting for
    /// input and blocked on output — then the wall time and the bottleneck, each stage's latency percentiles and
    /// the peak depth of its input channel, and the cooperative pool's lag when it was probed.
    public var description: String {
        func share(_ part: Duration, of stage: StageReport) -> String {
            let total = stage.busy + stage.waitingForInput + stage.blockedOnOutput
            guard total > .zero else { return "  -" }
            return String(Int((part / total * 100).rounded())).leftPadded(to: 3) + "%"
        }
        let nameWidth = max(5, self.stages.map(\.name.count).max() ?? 0)
        var lines = [
            "stage".padded(to: nameWidth)
                + "  records in  records out      bytes in     bytes out  busy  wait  blocked  skipped  retried"
                + "  dead-lettered  timed out"
        ]
        for stage in self.stages {
            lines.append(
                stage.name.padded(to: nameWidth) + "  "
                    + String(stage.recordsIn).leftPadded(to: 10) + "  "
                    + String(stage.recordsOut).leftPadded(to: 11) + "  "
                    + String(stage.bytesIn).leftPadded(to: 12) + "  "
                    + String(stage.bytesOut).leftPadded(to: 12) + "  "
                    + share(stage.busy, of: stage) + "  "
                    + share(stage.waitingForInput, of: stage) + "     "
                    + share(stage.blockedOnOutput, of: stage) + "  "
                    + String(stage.skipped).leftPadded(to: 7) + "  "
                    + String(stage.retries).leftPadded(to: 7) + "  "
                    + String(stage.deadLettered).leftPadded(to: 13) + "  "
                    + String(stage.timedOut).leftPadded(to: 9)
            )
        }
        lines.append("wall time \(self.wallTime); bottleneck: \(self.bottleneck?.name ?? "none")")
        if self.stages.contains(where: { $0.latency != nil }) {
            lines.append(
                "latency".padded(to: nameWidth) + "       p50       p95       p99       max      count  queue peak"
            )
            for stage in self.stages {
                var line = stage.name.padded(to: nameWidth)
                if let latency = stage.latency {
                    for value in [latency.p50, latency.p95, latency.p99, latency.max] {
                        line += "  " + LatencySummary.format(value).leftPadded(to: 8)
                    }
                    line += "  " + String(latency.count).leftPadded(to: 9)
                } else {
                    line += "         -         -         -         -          -"
                }
                line += "  " + String(stage.queueDepth.peak).leftPadded(to: 10)
                lines.append(line)
            }
        }
        if let lag = self.poolLag {
            lines.append("cooperative pool lag: \(lag)")
        }
        if !self.counters.isEmpty {
            lines.append(
                self.counters.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            )
        }
        if self.bytesInFlightBound > 0 {
            lines.append(
                "bytes in flight: peak \(Self.mebibytes(self.peakBytesInFlight)), bound "
                    + Self.mebibytes(self.bytesInFlightBound)
            )
        }
        return lines.joined(separator: "\n")
    }
}

extension RunReport {
    fileprivate static func mebibytes(_ bytes: Int) -> String {
        let tenths = (bytes * 10 + (1 << 19)) >> 20
        return "\(tenths / 10).\(tenths % 10) MiB"
    }
}

extension String {
    fileprivate func padded(to width: Int) -> String {
        self.count >= width ? self : self + String(repeating: " ", count: width - self.count)
    }

    fileprivate func leftPadded(to width: Int) -> String {
        self.count >= width ? self : String(repeating: " ", count: width - self.count) + self
    }
}
