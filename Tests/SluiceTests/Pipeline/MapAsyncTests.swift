import Synchronization
import Testing

@testable import Sluice

/// `mapAsync`: bounded concurrent calls, in order or as they complete, under the error policies, timeouts on the
/// run's clock, backpressure, cancellation and graceful shutdown. Calls are held by gates the test opens; nothing
/// depends on timing.
@Suite("mapAsync", .timeLimit(.minutes(1)))
struct MapAsyncTests {
    /// A service whose calls wait for the test: each call reports that it started, then waits for its record's gate.
    final class HeldService: Sendable {
        let started = EventCounter()
        private let gates: [Int: Gate]
        private let active = Atomic<Int>(0)
        private let peak = Atomic<Int>(0)
        private let calls = Collector<Int>()

        init(holding records: some Sequence<Int>) {
            self.gates = Dictionary(uniqueKeysWithValues: records.map { ($0, Gate()) })
        }

        /// The most calls that were in flight at once.
        var peakConcurrency: Int { self.peak.load(ordering: .sequentiallyConsistent) }
        var called: [Int] { self.calls.all }

        func release(_ record: Int) { self.gates[record]?.open() }
        func releaseAll() { self.gates.values.forEach { $0.open() } }

        func call(_ record: Int) async throws -> Int {
            let now = self.active.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue
            defer { self.active.wrappingSubtract(1, ordering: .sequentiallyConsistent) }
            self.peak.max(now, ordering: .sequentiallyConsistent)
            self.calls.append(record)
            self.started.signal()
            await self.gates[record]?.wait()
            try Task.checkCancellation()
            return record * 10
        }
    }

    @Test func keepsTheInputsOrder_withManyCallsInFlight() async throws {
        let service = HeldService(holding: [])
        let report = try await Pipeline.from(0..<500)
            .mapAsync(concurrency: 8) { try await service.call($0) }
            .collect()
            .run(RunOptions(batch: BatchLimits(maxRecords: 16)))
        #expect(report.result == (0..<500).map { $0 * 10 })
        #expect(service.peakConcurrency <= 8)
        #expect(report[stage: "mapAsync"]?.recordsOut == 500)
    }

    @Test func runsConcurrencyCallsAtOnce_andNoMore() async throws {
        let service = HeldService(holding: 0..<20)
        let run = Task {
            try await Pipeline.from(0..<20)
                .mapAsync(concurrency: 4) { try await service.call($0) }
                .collect()
                .run()
        }
        await service.started.wait(beyond: 3)  // four calls in flight, all held
        #expect(service.peakConcurrency == 4)
        #expect(Set(service.called) == [0, 1, 2, 3])
        service.releaseAll()
        let report = try await run.value
        #expect(report.result == (0..<20).map { $0 * 10 })
        #expect(service.peakConcurrency == 4)
    }

    @Test func ordered_holdsLaterResults_untilTheSlowCallIsDone() async throws {
        let service = HeldService(holding: [0])
        let received = Collector<Int>()
        let arrived = EventCounter()
        let run = Task {
            try await Pipeline.from(0..<6)
                .mapAsync(concurrency: 3) { try await service.call($0) }
                .forEach {
                    received.append($0)
                    arrived.signal()
                }
                .run()
        }
        await service.started.wait(beyond: 5)  // 1…5 finished behind the held record 0 (the window is 12)
        #expect(received.all.isEmpty)
        service.release(0)
        _ = try await run.value
        #expect(received.all == [0, 10, 20, 30, 40, 50])
    }

    @Test func unordered_sendsResultsOn_asCallsComplete() async throws {
        let service = HeldService(holding: [0])
        let received = Collector<Int>()
        let arrived = EventCounter()
        let run = Task {
            try await Pipeline.from(0..<6)
                .mapAsync(concurrency: 3, ordered: false) { try await service.call($0) }
                .forEach {
                    received.append($0)
                    arrived.signal()
                }
                .run()
        }
        await arrived.wait(beyond: 4)  // 1…5 went on while record 0's call is still held
        #expect(Set(received.all) == [10, 20, 30, 40, 50])
        service.release(0)
        _ = try await run.value
        #expect(received.all.last == 0)
    }

    @Test func aLiveInput_getsEachResult_beforeTheNextRecordExists() async throws {
        let (values, continuation) = AsyncStream.makeStream(of: Int.self)
        let arrived = EventCounter()
        let received = Collector<Int>()
        let run = Task {
            try await Pipeline.from(values)
                .mapAsync(concurrency: 4) { $0 + 1 }
                .forEach {
                    received.append($0)
                    arrived.signal()
                }
                .run()
        }
        for value in 0..<5 {
            continuation.yield(value)
            await arrived.wait(beyond: value)
        }
        continuation.finish()
        _ = try await run.value
        #expect(received.all == [1, 2, 3, 4, 5])
    }

    @Test func aSlowService_slowsTheSource() async throws {
        let service = HeldService(holding: 0..<10_000)
        let produced = Atomic<Int>(0)
        let sourceParked = EventCounter()
        var options = RunOptions(channelCapacity: 1, batch: BatchLimits(maxRecords: 4))
        options.hooks.onSendSuspended = { stage in
            if stage == "count" { sourceParked.signal() }
        }
        let run = Task {
            try await Pipeline.from(0..<10_000)
                .map(name: "count") { (value: Int) -> Int in
                    produced.wrappingAdd(1, ordering: .sequentiallyConsistent)
                    return value
                }
                .mapAsync(concurrency: 2) { try await service.call($0) }
                .drain()
                .run(options)
        }
        await service.started.wait(beyond: 1)
        await sourceParked.wait(beyond: 0)  // the stage reads no more: the count stage waits for room
        // Two calls in flight, a batch being read, one in the channel, one being sent: far from 10,000.
        #expect(produced.load(ordering: .sequentiallyConsistent) <= 4 * 4)
        #expect(service.peakConcurrency == 2)
        run.cancel()
        await #expect(throws: (any Error).self) { try await run.value }
    }

    @Test func aFailingCall_failsTheRun_withTheRecordsPosition_andCancelsTheOthers() async throws {
        let service = HeldService(holding: 2..<100)
        let error = await #expect(throws: PipelineError.self) {
            try await Pipeline.from(0..<100)
                .mapAsync(name: "lookup", concurrency: 4) { (value: Int) async throws -> Int in
                    if value == 4 {
                        await service.started.wait(beyond: 4)  // 0 and 1 are done, 2, 3 and 5 held in their calls
                        throw TestError(id: value)
                    }
                    return try await service.call(value)
                }
                .drain()
                .run()
        }
        #expect(error?.stage == "lookup")
        #expect(error?.recordIndex == 4)
        #expect(error?.underlying(as: TestError.self) == TestError(id: 4))
        #expect(Set(service.called) == [0, 1, 2, 3, 5])
    }

    @Test func aTimedOutCall_isCancelled_andGoesToThePolicy() async throws {
        let clock = ManualClock()
        let cancelled = EventCounter()
        var options = RunOptions()
        options.clock = clock
        let run = Task {
            try await Pipeline.from(0..<4)
                .mapAsync(name: "slow", concurrency: 4, timeout: .seconds(2), onError: .skip) {
                    (value: Int) async throws -> Int in
                    if value == 2 {
                        await Gate().wait()  // never answers; returns when cancelled
                        cancelled.signal()
                        throw CancellationError()
                    }
                    return value
                }
                .collect()
                .run(options)
        }
        await clock.sleepStarted.wait(beyond: 3)  // each call's timeout is armed
        clock.advance(by: .seconds(2))
        let report = try await run.value
        #expect(report.result == [0, 1, 3])
        #expect(cancelled.value == 1)
        #expect(report[stage: "slow"]?.timedOut == 1)
        #expect(report[stage: "slow"]?.skipped == 1)
    }

    @Test func retries_waitOnTheRunsClock_withoutHoldingUpTheOtherCalls() async throws {
        let clock = ManualClock()
        let attempts = Locked([Int: Int]())
        let letters = DeadLetters.memory()
        var options = RunOptions()
        options.clock = clock
        let received = Collector<Int>()
        let arrived = EventCounter()
        let run = Task {
            try await Pipeline.from(0..<6)
                .mapAsync(
                    name: "flaky",
                    concurrency: 3,
                    ordered: false,
                    onError: .retry(
                        .exponential(maxAttempts: 2, initialDelay: .seconds(1)),
                        otherwise: .deadLetter(letters)
                    )
                ) { (value: Int) async throws -> Int in
                    let attempt = attempts.withLock { counts in
                        counts[value, default: 0] += 1
                        return counts[value]!
                    }
                    if value == 1 || (value == 3 && attempt == 1) { throw TestError(id: value) }
                    return value
                }
                .forEach {
                    received.append($0)
                    arrived.signal()
                }
                .run(options)
        }
        await clock.sleepStarted.wait(beyond: 1)  // records 1 and 3 wait to retry, each holding its call's place…
        await arrived.wait(beyond: 3)  // …while 0, 2, 4 and 5 went on through the third
        #expect(Set(received.all) == [0, 2, 4, 5])
        clock.advance(by: .seconds(1))
        _ = try await run.value
        #expect(Set(received.all) == [0, 2, 3, 4, 5])
        #expect(letters.letters.map(\.error) == ["\(TestError(id: 1))"])
        #expect(attempts.withLock { $0 } == [0: 1, 1: 2, 2: 1, 3: 2, 4: 1, 5: 1])
    }

    @Test func anOpenBreaker_failsFast_throughThePolicy() async throws {
        let clock = ManualClock()
        let breaker = CircuitBreaker(
            name: "svc",
            settings: CircuitBreaker.Settings(window: 4, minimumCalls: 4, failureRate: 0.5, openFor: .seconds(30)),
            clock: clock
        )
        let serviceCalls = Atomic<Int>(0)
        let letters = DeadLetters.memory()
        var options = RunOptions()
        options.clock = clock
        let report = try await Pipeline.from(0..<50)
            .mapAsync(concurrency: 1, onError: .deadLetter(letters)) { (value: Int) async throws -> Int in
                try await breaker.run {
                    serviceCalls.wrappingAdd(1, ordering: .sequentiallyConsistent)
                    throw TestError(id: value)
                }
            }
            .drain()
            .run(options)
        #expect(report[stage: "mapAsync"]?.deadLettered == 50)
        #expect(serviceCalls.load(ordering: .sequentiallyConsistent) == 4)
        #expect(breaker.rejectedCalls == 46)
        #expect(letters.letters.filter { $0.error.contains("open") }.count == 46)
    }

    @Test func cancellingTheRun_cancelsTheCallsInFlight() async throws {
        let service = HeldService(holding: 0..<10)
        let run = Task {
            try await Pipeline.from(0..<10)
                .mapAsync(concurrency: 3) { try await service.call($0) }
                .drain()
                .run()
        }
        await service.started.wait(beyond: 2)
        run.cancel()
        await #expect(throws: (any Error).self) { try await run.value }
        #expect(service.called.count == 3)
    }

    @Test func aGracefulShutdown_letsTheCallsInFlightFinish_andLosesNoRecord() async throws {
        let (values, continuation) = AsyncStream.makeStream(of: Int.self)
        let service = HeldService(holding: 0..<3)
        let shutdown = ShutdownSignal()
        var options = RunOptions()
        options.shutdown = shutdown
        let run = Task {
            try await Pipeline.from(values)
                .mapAsync(concurrency: 3) { try await service.call($0) }
                .collect()
                .run(options)
        }
        for value in 0..<3 { continuation.yield(value) }
        await service.started.wait(beyond: 2)  // three calls held
        shutdown.requestShutdown()
        service.releaseAll()
        let report = try await run.value
        #expect(report.result == [0, 10, 20])
        continuation.finish()
    }

    @Test func aConcurrencyBelowOne_orAWindowBelowIt_isAConfigurationError() async throws {
        let zero = await #expect(throws: ConfigurationError.self) {
            try await Pipeline.from(0..<3).mapAsync(concurrency: 0) { $0 }.drain().run()
        }
        #expect(zero?.setting == "mapAsync.concurrency")
        let narrow = await #expect(throws: ConfigurationError.self) {
            try await Pipeline.from(0..<3).mapAsync(concurrency: 4, reorderWindow: 2) { $0 }.drain().run()
        }
        #expect(narrow?.setting == "mapAsync.reorderWindow")
    }
}
