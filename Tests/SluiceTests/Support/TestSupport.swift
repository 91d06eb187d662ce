import Synchronization

@testable import Sluice

#if canImport(Glibc)
import Glibc
#endif

/// Counts events that hooks report and lets a test await the next one — no sleeps, no timing.
final class EventCounter: Sendable {
    private let count = Atomic<Int>(0)
    private let stream: AsyncStream<Int>
    private let continuation: AsyncStream<Int>.Continuation

    init() {
        (self.stream, self.continuation) = AsyncStream.makeStream(of: Int.self)
    }

    var value: Int { self.count.load(ordering: .sequentiallyConsistent) }

    func signal() {
        let now = self.count.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue
        self.continuation.yield(now)
    }

    /// Returns once the count exceeds `seen`, or the task is cancelled (a test past its time limit).
    ///
    /// - Important: Only one task may wait at a time. A loop around it must stop on `Task.isCancelled`: a cancelled
    ///   wait returns at once.
    func wait(beyond seen: Int) async {
        if self.value > seen { return }
        for await now in self.stream where now > seen {
            return
        }
    }
}

/// A gate a test opens to let a stage go on.
final class Gate: Sendable {
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init() {
        (self.stream, self.continuation) = AsyncStream.makeStream(of: Void.self)
    }

    func open() {
        self.continuation.finish()
    }

    /// Returns when the gate is opened, or when the waiting task is cancelled.
    func wait() async {
        for await _ in self.stream {}
    }
}

/// Counts the stages that are running, so a test can check that none is left behind.
final class LiveCounter: Sendable {
    private let count = Atomic<Int>(0)
    private let started = Atomic<Int>(0)

    var running: Int { self.count.load(ordering: .sequentiallyConsistent) }
    var everStarted: Int { self.started.load(ordering: .sequentiallyConsistent) }

    func track<T>(_ body: () async throws -> T) async rethrows -> T {
        self.count.wrappingAdd(1, ordering: .sequentiallyConsistent)
        self.started.wrappingAdd(1, ordering: .sequentiallyConsistent)
        defer { self.count.wrappingSubtract(1, ordering: .sequentiallyConsistent) }
        return try await body()
    }
}

/// A collection that stages append to from their own tasks.
final class Collector<Value: Sendable>: Sendable {
    private let values = Locked<[Value]>([])

    func append(_ value: Value) {
        self.values.withLock { $0.append(value) }
    }

    func append(contentsOf values: some Sequence<Value>) {
        self.values.withLock { $0.append(contentsOf: values) }
    }

    var all: [Value] { self.values.withLock { $0 } }
}

/// Whether the tests run under ThreadSanitizer (`swift test --sanitize=thread`), which makes them 5 to 20 times
/// slower: the heaviest tests then use smaller inputs, so they stay within their time limits.
let isThreadSanitized: Bool = dlsym(nil, "__tsan_init") != nil

struct TestError: Error, Equatable {
    var id: Int
}
