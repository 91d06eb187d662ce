import Synchronization

/// Counts the records in flight during a run — in a channel, or held by a stage working on them or sending
/// them — and remembers the peak. The backpressure tests check the peak against the bound the engine promises.
///
/// Updated once per batch, never per record.
final class FlightCounter: Sendable {
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
