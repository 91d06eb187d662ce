import DequeModule

/// Mutual exclusion that suspends a task instead of blocking its thread, in arrival order.
///
/// A user's source and its flush task take turns with it: each sends the source's gathered records only while it
/// holds the lock, so batches leave in order and the output's state is touched by one task at a time. Held across
/// awaits (a send into a full channel); `unlock()` hands the lock straight to the next waiter.
package final class AsyncLock: Sendable {
    package init() {}

    private struct State {
        var locked = false
        var waiters: Deque<CheckedContinuation<Void, Never>> = []
    }

    private let state = Locked(State())

    /// Takes the lock, waiting for it if another task holds it.
    package func lock() async {
        let free = self.state.withLock { state -> Bool in
            guard !state.locked else { return false }
            state.locked = true
            return true
        }
        if free { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let acquired = self.state.withLock { state -> Bool in
                guard state.locked else {
                    state.locked = true
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if acquired { continuation.resume() }
        }
    }

    /// Lets the lock go: to the longest waiter, if any.
    package func unlock() {
        let next = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiters.isEmpty else {
                state.locked = false
                return nil
            }
            return state.waiters.removeFirst()  // still locked: it passes to this waiter
        }
        next?.resume()
    }
}
