import Synchronization
import UnixSignals

/// The first signal the run received, which sets the exit status after a graceful drain.
final class CaughtSignal: Sendable {
    /// The first signal's number, 0 before any.
    private let first = Atomic<Int32>(0)

    func record(_ signal: UnixSignal) {
        _ = self.first.compareExchange(expected: 0, desired: signal.rawValue, ordering: .acquiringAndReleasing)
    }

    /// 143 after SIGTERM, 130 after SIGINT (or no signal: a second signal cut the run short).
    var exitStatus: Int32 {
        self.first.load(ordering: .acquiring) == UnixSignal.sigterm.rawValue ? 143 : 130
    }
}
