internal import Histogram

/// Latencies recorded from any task into an HdrHistogram, read as percentiles at any time.
///
/// Microsecond resolution up to an hour, two significant digits (every percentile within 1% of the true value), in
/// about 27 KiB: one per stage, recorded once per batch (or per call for asynchronous stages), never per record.
package final class LatencyRecorder: Sendable {
    /// The longest latency told apart; longer ones count as this.
    static let highest: UInt64 = 3_600 * 1_000_000_000

    private let histogram = Locked(
        Histogram<UInt64>(
            lowestDiscernibleValue: 1_000,
            highestTrackableValue: highest,
            numberOfSignificantValueDigits: .two
        )
    )

    package init() {}

    package func record(nanoseconds: UInt64) {
        let value = min(nanoseconds, Self.highest)
        self.histogram.withLock { _ = $0.record(value) }
    }

    /// The percentiles so far, or `nil` before anything was recorded.
    package var summary: LatencySummary? {
        self.histogram.withLock { histogram in
            guard histogram.totalCount > 0 else { return nil }
            func duration(_ value: UInt64) -> Duration { .nanoseconds(Int64(value)) }
            return LatencySummary(
                count: Int(histogram.totalCount),
                p50: duration(histogram.valueAtPercentile(50)),
                p95: duration(histogram.valueAtPercentile(95)),
                p99: duration(histogram.valueAtPercentile(99)),
                max: duration(histogram.max)
            )
        }
    }
}

/// Percentiles of a latency distribution: how long a stage took per batch (per call for asynchronous stages), or
/// how late the run's pool-lag probe ran.
///
/// Values come from an HdrHistogram with two significant digits: each is within 1% of the exact one.
public struct LatencySummary: Sendable, Hashable, CustomStringConvertible {
    /// How many latencies were recorded.
    public var count: Int
    public var p50: Duration
    public var p95: Duration
    public var p99: Duration
    /// The largest recorded (to within 1%).
    public var max: Duration

    public init(count: Int, p50: Duration, p95: Duration, p99: Duration, max: Duration) {
        self.count = count
        self.p50 = p50
        self.p95 = p95
        self.p99 = p99
        self.max = max
    }

    public var description: String {
        "p50 \(Self.format(self.p50)), p95 \(Self.format(self.p95)), p99 \(Self.format(self.p99)), "
            + "max \(Self.format(self.max)) (\(self.count))"
    }

    /// A duration in the unit that suits it: `870µs`, `12.3ms`, `4.56s`.
    static func format(_ duration: Duration) -> String {
        let nanoseconds = Double(duration.components.seconds) * 1e9 + Double(duration.components.attoseconds) / 1e9
        func rounded(_ value: Double) -> String {
            value >= 100 ? String(Int(value.rounded())) : String((value * 10).rounded() / 10)
        }
        if nanoseconds < 1e6 { return rounded(nanoseconds / 1e3) + "µs" }
        if nanoseconds < 1e9 { return rounded(nanoseconds / 1e6) + "ms" }
        return rounded(nanoseconds / 1e9) + "s"
    }
}
