import Synchronization

/// A count that goes up and down during a run, with its peak: the records in flight (in a channel, or held by a
/// stage working on them or sending them), and the bytes of data buffers in flight. The backpressure and memory
/// tests check the peaks against the bounds the engine promises.
///
/// Updated once per batch or per buffer, never per record.
final class PeakCounter: Sendable {
    private let current = Atomic<Int>(0)
    private let peakValue = Atomic<Int>(0)

    var value: Int { self.current.load(ordering: .relaxed) }
    var peak: Int { self.peakValue.load(ordering: .relaxed) }

    func add(_ delta: Int) {
        guard delta != 0 else { return }
        let now = self.current.wrappingAdd(delta, ordering: .relaxed).newValue
        guard delta > 0 else { return }
        var peak = self.peakValue.load(ordering: .relaxed)
        while now > peak {
            let (exchanged, original) = self.peakValue.compareExchange(
                expected: peak,
                desired: now,
                ordering: .relaxed
            )
            if exchanged { break }
            peak = original
        }
    }
}
