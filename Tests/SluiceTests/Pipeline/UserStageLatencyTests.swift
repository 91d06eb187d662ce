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
}
