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
package final class Locked<Value>: @unchecked Sendable {
    private let mutex = PthreadMutex()
    private var value: Value

    package init(_ value: Value) {
        self.value = value
    }

    /// Runs `body` with the lock held. `body` must not block, suspend, or take this lock again.
    package func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        self.mutex.lock()
        defer { self.mutex.unlock() }
        return try body(&self.value)
    }
}

/// A pthread mutex at a stable address (what `pthread_mutex_*` and `pthread_cond_wait` need), freed with its owner.
final class PthreadMutex {
    let pointer: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        self.pointer = .allocate(capacity: 1)
        self.pointer.initialize(to: pthread_mutex_t())
        precondition(pthread_mutex_init(self.pointer, nil) == 0, "pthread_mutex_init failed")
    }

    deinit {
        pthread_mutex_destroy(self.pointer)
        self.pointer.deallocate()
    }

    func lock() {
        pthread_mutex_lock(self.pointer)
    }

    func unlock() {
        pthread_mutex_unlock(self.pointer)
    }
}
