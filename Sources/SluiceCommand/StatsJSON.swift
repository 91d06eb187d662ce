import Sluice

/// The run report as JSON, for `--stats-json FILE`.
enum StatsJSON {
    static func encode(_ report: RunReport<Void>) -> String {
        func seconds(_ duration: Duration) -> String {
            let (whole, fraction) = duration.components
            return String(Double(whole) + Double(fraction) / 1e18)
        }
        func quote(_ text: String) -> String { JSON.quote(text) }
        func latency(_ summary: LatencySummary?) -> String {
            guard let summary else { return "null" }
            return "{\"count\":\(summary.count),\"p50_seconds\":\(seconds(summary.p50)),"
                + "\"p95_seconds\":\(seconds(summary.p95)),\"p99_seconds\":\(seconds(summary.p99)),"
                + "\"max_seconds\":\(seconds(summary.max))}"
        }
        let stages = report.stages.map { stage in
            let fields: [(String, String)] = [
                ("name", quote(stage.name)), ("kind", quote(stage.kind)),
                ("records_in", "\(stage.recordsIn)"), ("records_out", "\(stage.recordsOut)"),
                ("batches_in", "\(stage.batchesIn)"), ("batches_out", "\(stage.batchesOut)"),
                ("bytes_in", "\(stage.bytesIn)"), ("bytes_out", "\(stage.bytesOut)"),
                ("busy_seconds", seconds(stage.busy)), ("waiting_seconds", seconds(stage.waitingForInput)),
                ("blocked_seconds", seconds(stage.blockedOnOutput)), ("blocked_sends", "\(stage.blockedSends)"),
                ("skipped", "\(stage.skipped)"), ("retries", "\(stage.retries)"),
                ("dead_lettered", "\(stage.deadLettered)"), ("timed_out", "\(stage.timedOut)"),
                ("latency", latency(stage.latency)),
                ("queue_depth", "\(stage.queueDepth.now)"), ("queue_depth_peak", "\(stage.queueDepth.peak)"),
            ]
            return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
        }
        let top: [(String, String)] = [
            ("wall_time_seconds", seconds(report.wallTime)),
            ("interrupted", "\(report.interrupted)"),
            ("bottleneck", report.bottleneck.map { quote($0.name) } ?? "null"),
            ("peak_records_in_flight", "\(report.peakRecordsInFlight)"),
            ("records_in_flight_bound", "\(report.recordsInFlightBound)"),
            ("peak_bytes_in_flight", "\(report.peakBytesInFlight)"),
            ("bytes_in_flight_bound", "\(report.bytesInFlightBound)"),
            ("pool_lag", latency(report.poolLag)),
            (
                "counters",
                "{"
                    + report.counters.sorted { $0.key < $1.key }.map { "\(quote($0.key)):\($0.value)" }
                    .joined(separator: ",") + "}"
            ),
            ("stages", "[" + stages.joined(separator: ",") + "]"),
        ]
        return "{" + top.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}\n"
    }

    /// Writes the report to `path` through Sluice's own file writer, so a full disk or an I/O error fails the command
    /// with the path named, as it does for the output.
    static func write(_ report: RunReport<Void>, to path: String) async throws {
        var text = self.encode(report)
        text.removeLast()  // the writer ends the line
        try await Pipeline.from([text]).write(to: path).run(RunOptions(computeThreads: 1))
    }
}
