#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A value guarded by a pthread mutex.
///
/// Like `Synchronization.Mutex`, but a lock ThreadSanitizer sees: on Linux `Mutex` is built on a futex TSan does
/// not intercept, so every access inside `withLock` is reported as a race and a real race cannot be told apart.
/// swift-nio's `NIOLock` and swift-async-algorithms' `Lock` wrap pthread mutexes for the same reason.
///
/// A lock box: the value is only touched with the mutex held, hence `@unchecked Sendable`.
final class Locked<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    init(_ value: Value) {
        self.value = value
        self.mutex = .allocate(capacity: 1)
        self.mutex.initialize(to: pthread_mutex_t())
        precondition(pthread_mutex_init(self.mutex, nil) == 0, "pthread_mutex_init failed")
    }

    deinit {
        pthread_mutex_destroy(self.mutex)
        self.mutex.deallocate()
    }

    /// Runs `body` with the lock held. `body` must not block, suspend, or take this lock again.
    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(self.mutex)
        defer { pthread_mutex_unlock(self.mutex) }
        return try body(&self.value)
    }
}
