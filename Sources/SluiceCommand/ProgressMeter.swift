import Sluice

#if canImport(Glibc)
import Glibc
#endif

/// Draws one progress line on standard error: bytes read of the input, the rate, and the time left.
final class ProgressMeter: Sendable {
    let monitor = RunMonitor()
    private let totalBytes: Int?
    private let start = ContinuousClock.now

    init(totalBytes: Int?) {
        self.totalBytes = totalBytes
    }

    func draw(final: Bool) {
        let read = self.monitor.stages.bytesRead
        let elapsed = ContinuousClock.now - self.start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let rate = seconds > 0 ? Double(read) / seconds : 0
        var line = "\r" + Self.size(read)
        if let total = self.totalBytes, total > 0 {
            let share = min(100, read * 100 / total)
            line += " of \(Self.size(total)) (\(share)%)"
            if !final && rate > 0 {
                line += ", ETA \(Self.time(Double(max(total - read, 0)) / rate))"
            }
        }
        line += ", \(Self.size(Int(rate)))/s" + (final ? "\n" : "   ")
        let bytes = Array(line.utf8)
        _ = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }

    static func size(_ bytes: Int) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : "\(Double(Int(value * 10)) / 10) \(units[unit])"
    }

    static func time(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded())
        return "\(whole / 60):" + (whole % 60 < 10 ? "0" : "") + "\(whole % 60)"
    }
}
