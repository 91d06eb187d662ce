internal import Sluice

/// What a waiting worker learns from the database's notifications (``ClusterStore/changesChannel``): that a unit of
/// its job became pending, done or failed — so it looks for work, or sees the job end, at once rather than at its
/// next poll.
///
/// Level-triggered: each change bumps a generation, and a waiter waits for the generation to pass the one it read
/// before it last looked at the units, so a change between the look and the wait is not missed. Notifications are
/// lost while the listening connection is down; (re)connecting counts as a change, and a worker not listening falls
/// back to polling.
final class UnitChanges: Sendable {
    private struct State {
        var generation = 0
        var listening = false
        var started = false
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
    }

    /// The job whose units matter (`nil`: every job's).
    let job: String?
    private let state = Locked(State())

    init(job: String?) {
        self.job = job
    }

    /// Changes seen so far.
    var generation: Int { self.state.withLock { $0.generation } }

    /// Whether LISTEN is in effect: notifications arrive.
    var isListening: Bool { self.state.withLock { $0.listening } }

    /// Marks the listener started; `false` when it already was.
    func markStarted() -> Bool {
        self.state.withLock { state in
            defer { state.started = true }
            return !state.started
        }
    }

    /// A notification arrived with `payload` (a job's name).
    func received(_ payload: String) {
        if let job = self.job, payload != job { return }
        self.changed()
    }

    /// LISTEN took effect (after a connect or a reconnect), or its connection was lost: either way, what happened
    /// meanwhile is unknown, so it counts as a change.
    func setListening(_ listening: Bool) {
        self.state.withLock { $0.listening = listening }
        self.changed()
    }

    /// Returns once the generation passes `generation`, or when the calling task is cancelled.
    func wait(past generation: Int) async {
        let id = self.state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = self.state.withLock { state -> Bool in
                    if state.generation > generation || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            self.state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    private func changed() {
        let waiters = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.generation += 1
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }
}
