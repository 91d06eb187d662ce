import Synchronization

/// Wakes a stage that holds records back (a partial gzip block) when they are due, while it waits for input.
///
/// One task per such stage, for the whole run, sleeping on the run's clock until the due time the stage set
/// last — not a timer per wait: under load a stage goes idle for a moment once per batch, and a timer armed and
/// cancelled each time would cost more than the work. Due times only move forward (the oldest record held back
/// is always younger than the one before it), so the task never has to cut a sleep short: when it wakes it looks
/// at the current due time and either wakes the stage or sleeps again.
final class FlushTimer: Sendable {
    private struct State {
        /// When the stage's held records are due, on the run's clock; `nil` when nothing is held back.
        var due: Duration?
        /// The timer task, waiting for a due time to be set.
        var idle: CheckedContinuation<Void, Never>?
    }

    private let state = Locked(State())

    /// Sets (or with `nil`, clears) when the held records are due.
    func setDue(_ due: Duration?) {
        let idle = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.due = due
            guard due != nil else { return nil }
            defer { state.idle = nil }
            return state.idle
        }
        idle?.resume()
    }

    /// The timer task: until it is cancelled, calls `wake` each time a due time passes on `clock`.
    func run(clock: RunClock, wake: @Sendable () -> Void) async {
        while !Task.isCancelled {
            guard let due = self.state.withLock({ $0.due }) else {
                await self.waitForDue()
                continue
            }
            do {
                try await clock.sleepUntil(due)
            } catch {
                return  // cancelled: the stage is done
            }
            let fire = self.state.withLock { state -> Bool in
                guard let due = state.due, due <= clock.elapsed() else { return false }
                state.due = nil
                return true
            }
            if fire { wake() }
        }
    }

    /// Returns once a due time is set, or the task is cancelled.
    private func waitForDue() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = self.state.withLock { state -> Bool in
                    guard state.due == nil, !Task.isCancelled else { return true }
                    state.idle = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            self.state.withLock { state in
                defer { state.idle = nil }
                return state.idle
            }?.resume()
        }
    }
}
