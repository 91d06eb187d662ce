/// Counts a buffer's bytes in the run's bytes in flight for as long as the engine holds it: made with the buffer,
/// it adds them; when the last copy of the value that carries it goes away, it takes them off.
final class HeldBytes: Sendable {
    let count: Int
    let gauge: PeakCounter

    init(_ count: Int, in gauge: PeakCounter) {
        self.count = count
        self.gauge = gauge
        gauge.add(count)
    }

    deinit {
        self.gauge.add(-self.count)
    }
}
