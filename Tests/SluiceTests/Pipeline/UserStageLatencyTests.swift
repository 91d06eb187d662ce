import Testing

@testable import Sluice

/// A user's source or stage that emits and never calls `flush()` still moves each record on while the input is
/// live: a record must reach the sink before the next one is even produced. A record held back would hang the test
/// (its time limit fails it).
@Suite("User stages hold nothing back", .timeLimit(.minutes(1)))
struct UserStageLatencyTests {
    /// Passes each record on with `emit`, and never flushes.
    struct Relay: Stage {
        func run(input: StageInput<Int>, output: StageOutput<Int>) async throws {
            for try await batch in input {
                for value in batch { try await output.emit(value * 10) }
            }
        }
    }

    @Test func aStageThatOnlyEmits_passesEachRecordOn_whileItsInputIsLive() async throws {
        let (values, continuation) = AsyncStream.makeStream(of: Int.self)
        let arrived = EventCounter()
        let received = Collector<Int>()
        let run = Task {
            try await Pipeline.from(values)
                .stage(Relay())
                .forEach {
                    received.append($0)
                    arrived.signal()
                }
                .run()
        }
        for value in 1...3 {
            continuation.yield(value)
            await arrived.wait(beyond: value - 1)  // through the stage before the next record exists
        }
        continuation.finish()
        _ = try await run.value
        #expect(received.all == [10, 20, 30])
    }

    @Test func aSourceThatOnlyEmits_sendsEachRecord_whileItsConsumerWaits() async throws {
        let gates = [Gate(), Gate()]
        let arrived = EventCounter()
        let received = Collector<Int>()
        /// Emits a record, then waits for the test (not through the wait API), and never flushes.
        struct Stepped: Source {
            let gates: [Gate]
            func run(into output: StageOutput<Int>) async throws {
                for value in 1...3 {
                    try await output.emit(value)
                    if value < 3 { await self.gates[value - 1].wait() }
                }
            }
        }
        let run = Task {
            try await Pipeline.from(Stepped(gates: gates))
                .forEach {
                    received.append($0)
                    arrived.signal()
                }
                .run()
        }
        await arrived.wait(beyond: 0)  // record 1, while the source waits on its gate
        gates[0].open()
        await arrived.wait(beyond: 1)
        gates[1].open()
        _ = try await run.value
        #expect(received.all == [1, 2, 3])
    }

    /// Emits a record, then two more while its consumer is busy with the first, then waits on its own (not through
    /// the wait API) without flushing: the two held back go on when they have waited maxDelay on the run's clock.
    @Test func aSourceThatSleepsAfterEmitting_stillDeliversWithinMaxDelay() async throws {
        struct Burst: Source {
            let consumerHasFirst: Gate
            let emitted: EventCounter
            let sleep: Gate
            func run(into output: StageOutput<Int>) async throws {
                try await output.emit(1)
                await self.consumerHasFirst.wait()
                try await output.emit(2)
                try await output.emit(3)
                self.emitted.signal()
                await self.sleep.wait()
            }
        }
        let clock = ManualClock()
        var options = RunOptions()
        options.clock = clock
        options.maxDelay = .seconds(1)
        let consumerHasFirst = Gate()
        let emitted = EventCounter()
        let sourceSleep = Gate()
        let consumerBusy = Gate()
        let arrived = EventCounter()
        let received = Collector<Int>()
        let run = Task {
            try await Pipeline.from(Burst(consumerHasFirst: consumerHasFirst, emitted: emitted, sleep: sourceSleep))
                .forEach { (value: Int) async in
                    received.append(value)
                    arrived.signal()
                    if value == 1 {
                        consumerHasFirst.open()
                        await consumerBusy.wait()  // busy while the source emits the rest
                    }
                }
                .run(options)
        }
        // Records 2 and 3 are held back from time zero; the flush timer may already sleep until they are due, or
        // start to once the time has passed: either way advancing the clock makes them due.
        await emitted.wait(beyond: 0)
        #expect(received.all == [1])
        consumerBusy.open()
        clock.advance(by: .seconds(1))
        await arrived.wait(beyond: 2)  // all three, while the source still sleeps
        #expect(received.all == [1, 2, 3])
        sourceSleep.open()
        _ = try await run.value
    }

    @Test func aUserSourceThatFails_stillDeliversWhatItEmittedBefore() async throws {
        struct Failing: Source {
            func run(into output: StageOutput<Int>) async throws {
                for value in 1...10 { try await output.emit(value) }
                throw TestError(id: 4)
            }
        }
        let received = Collector<Int>()
        let error = await #expect(throws: PipelineError.self) {
            try await Pipeline.from(Failing())
                .forEach { (value: Int) async in received.append(value) }
                .run(RunOptions(channelCapacity: 1, batch: BatchLimits(maxRecords: 3)))
        }
        #expect(error?.underlying(as: TestError.self) == TestError(id: 4))
        #expect(received.all == Array(1...10))
    }

    @Test func anEndlessUserSource_stopsWhenItsSinkEndsEarly() async throws {
        let report = try await Pipeline.from(Endless()).to(FirstRecords(count: 5)).run(
            RunOptions(batch: BatchLimits(maxRecords: 3))
        )
        #expect(report.result == [0, 1, 2, 3, 4])
    }

    @Test func cancellingTheRun_whileAUserSourceSleeps_endsItAtOnce() async throws {
        struct Sleeper: Source {
            let started: EventCounter
            func run(into output: StageOutput<Int>) async throws {
                try await output.emit(1)
                self.started.signal()
                await Gate().wait()  // returns when the task is cancelled
                try Task.checkCancellation()
            }
        }
        let started = EventCounter()
        let run = Task { try await Pipeline.from(Sleeper(started: started)).collect().run() }
        await started.wait(beyond: 0)
        run.cancel()
        await #expect(throws: CancellationError.self) { try await run.value }
    }
}

@Suite("AsyncLock")
struct AsyncLockTests {
    @Test func holdersNeverOverlap_evenAcrossSuspensions() async {
        let lock = AsyncLock()
        let trace = Collector<String>()
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for _ in 0..<50 {
                        await lock.lock()
                        trace.append("in \(task)")
                        await Task.yield()  // another task runs, and must wait for the lock
                        trace.append("out \(task)")
                        lock.unlock()
                    }
                }
            }
        }
        let events = trace.all
        #expect(events.count == 8 * 50 * 2)
        for pair in stride(from: 0, to: events.count, by: 2) {
            #expect(events[pair].dropFirst(3) == events[pair + 1].dropFirst(4), "overlap at \(pair)")
        }
    }
}
