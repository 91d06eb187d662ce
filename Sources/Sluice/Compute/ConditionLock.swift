#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A mutex with a condition variable, guarding `State`: what the pool's threads sleep on while there is no work.
///
/// ``Locked`` has no condition variable, and a thread that must block (not suspend) needs one.
/// This is a lock box: `State` is only touched with the mutex held, hence `@unchecked Sendable`.
final class ConditionLock<State>: @unchecked Sendable {
    private let mutex = PthreadMutex()
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var state: State

    init(_ state: State) {
        self.state = state
        self.condition = .allocate(capacity: 1)
        self.condition.initialize(to: pthread_cond_t())
        precondition(pthread_cond_init(self.condition, nil) == 0, "pthread_cond_init failed")
    }

    deinit {
        pthread_cond_destroy(self.condition)
        self.condition.deallocate()
    }

    /// Runs `body` with the lock held.
    func withLock<Result>(_ body: (inout State) throws -> Result) rethrows -> Result {
        self.mutex.lock()
        defer { self.mutex.unlock() }
        return try body(&self.state)
    }

    /// Blocks the calling thread while `shouldWait` holds, then runs `body`, all with the lock held.
    ///
    /// `onWait` and `onWake` run (locked) around each sleep, e.g. to count idle threads.
    @available(*, noasync, message: "blocks the calling thread")
    func withLock<Result>(
        waitingWhile shouldWait: (State) -> Bool,
        onWait: (inout State) -> Void = { _ in },
        onWake: (inout State) -> Void = { _ in },
        then body: (inout State) -> Result
    ) -> Result {
        self.mutex.lock()
        defer { self.mutex.unlock() }
        while shouldWait(self.state) {
            onWait(&self.state)
            pthread_cond_wait(self.condition, self.mutex.pointer)
            onWake(&self.state)
        }
        return body(&self.state)
    }

    /// Wakes one blocked thread.
    func signal() {
        pthread_cond_signal(self.condition)
    }

    /// Wakes every blocked thread.
    func broadcast() {
        pthread_cond_broadcast(self.condition)
    }
}
