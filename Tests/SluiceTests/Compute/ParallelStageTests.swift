import Dispatch
import Synchronization
import Testing

@testable import Sluice

@Suite("Parallel stages", .timeLimit(.minutes(1)))
struct ParallelStageTests {
    /// Uneven work: most records are cheap, a few cost thousands of times more.
    @Sendable static func unevenCost(_ value: Int) -> Int {
        var accumulator = value
        let rounds = value % 997 == 0 ? 20_000 : 1
        for round in 0..<rounds {
            accumulator = accumulator &* 31 &+ round
        }
        return value &* 2 &+ (accumulator & 0)
    }

    @Test func orderedParallelMap_ofOneMillionRecords_withUnevenCost_keepsInputOrder() async throws {
        let report = try await Pipeline.from(0..<1_000_000)
            .parallelMap(concurrency: 2, ordered: true) { Self.unevenCost($0) }
            .collect()
            .run(RunOptions(computeThreads: 2))
        #expect(report.result == (0..<1_000_000).map { $0 * 2 })
    }

    @Test func unorderedParallelMap_yieldsTheSameMultiset() async throws {
        let report = try await Pipeline.from(0..<200_000)
            .parallelMap(concurrency: 3, ordered: false) { Self.unevenCost($0) }
            .collect()
            .run(RunOptions(batch: BatchLimits(maxRecords: 500), computeThreads: 3))
        #expect(report.result.count == 200_000)
        #expect(report.result.sorted() == (0..<200_000).map { $0 * 2 })
    }

    @Test func reorderWindow_boundsWhatASlowFirstBatchLetsPileUp() async throws {
        // The first batch blocks its worker; the other worker keeps going, but only until `window` batches are
        // out. The dispatcher then has to wait, and nothing was sent on: the slow batch comes first.
        let window = 4
        let batchSize = 10
        let release = DispatchSemaphore(value: 0)
        let transformed = EventCounter()
        let windowFull = EventCounter()
        let received = Collector<Int>()
        var options = RunOptions(channelCapacity: 1, batch: BatchLimits(maxRecords: batchSize), computeThreads: 2)
        options.hooks.onReorderWindowFull = { _ in windowFull.signal() }
        let run = Task {
            try await Pipeline.from(0..<1_000)
                .parallelMap(concurrency: 2, ordered: true, reorderWindow: window) { (value: Int) -> Int in
                    if value == 0 { release.wait() }
                    transformed.signal()
                    return value
                }
                .forEach { received.append($0) }
                .run(options)
        }
        await windowFull.wait(beyond: 0)
        // Held back by batch 0: only `window` batches were handed out, so the free worker can transform at most the
        // other `window - 1` of them — and it does, while nothing is sent on.
        await transformed.wait(beyond: (window - 1) * batchSize - 1)
        #expect(transformed.value == (window - 1) * batchSize)
        #expect(received.all.isEmpty)
        release.signal()
        let report = try await run.value
        #expect(received.all == Array(0..<1_000))
        #expect(report.peakRecordsInFlight <= report.recordsInFlightBound)
    }

    @Test func errorInAWorker_failsTheRun_withStageAndPosition_andThePoolIsGoneAfterwards() async throws {
        let pools = Collector<ComputePool>()
        var options = RunOptions(batch: BatchLimits(maxRecords: 100), computeThreads: 2)
        options.hooks.onComputePoolCreated = { pools.append($0) }
        let error = await #expect(throws: PipelineError.self) {
            try await Pipeline.from(0..<100_000)
                .parallelMap(name: "parse", concurrency: 2) { (value: Int) throws -> Int in
                    if value == 54_321 { throw TestError(id: 8) }
                    return value
                }
                .drain()
                .run(options)
        }
        #expect(error?.stage == "parse")
        #expect(error?.recordIndex == 54_321)
        #expect(error?.underlying as? TestError == TestError(id: 8))
        let pool = try #require(pools.all.first)
        #expect(pool.liveThreads == 0)
        await #expect(throws: ComputePoolError.self) { try await pool.run { 0 } }
    }

    @Test func cancellingRun_whileWorkersAreBusy_returnsOnceInFlightJobsEnd() async throws {
        let pools = Collector<ComputePool>()
        var options = RunOptions(batch: BatchLimits(maxRecords: 10), computeThreads: 2)
        options.hooks.onComputePoolCreated = { pools.append($0) }
        let busy = EventCounter()
        let release = DispatchSemaphore(value: 0)
        let run = Task {
            try await Pipeline.from(0..<1_000_000)
                .parallelMap(concurrency: 2) { (value: Int) -> Int in
                    if value == 0 {
                        busy.signal()
                        release.wait()
                    }
                    return value
                }
                .drain()
                .run(options)
        }
        await busy.wait(beyond: 0)
        run.cancel()
        release.signal()  // the in-flight job ends; nothing new starts
        await #expect(throws: CancellationError.self) { try await run.value }
        #expect(pools.all.first?.liveThreads == 0)
    }

    @Test func parallelReduce_countsWordsLikeASequentialFold() async throws {
        let words = (0..<100_000).map { "w\($0 % 1_000)" }
        var expected: [String: Int] = [:]
        for word in words { expected[word, default: 0] += 1 }
        for workers in [1, 2, 3] {
            let report = try await Pipeline.from(words)
                .parallelReduce(into: [String: Int](), concurrency: workers) { counts, word in
                    counts[word, default: 0] += 1
                } merge: { total, part in
                    total.merge(part, uniquingKeysWith: +)
                }
                .run(RunOptions(batch: BatchLimits(maxRecords: 256), computeThreads: 2))
            #expect(report.result == expected, "with \(workers) workers")
        }
    }

    @Test func parallelReduce_errorCarriesThePosition() async throws {
        let error = await #expect(throws: PipelineError.self) {
            try await Pipeline.from(0..<10_000)
                .parallelReduce(into: 0, name: "sum", concurrency: 2) { (sum: inout Int, value: Int) throws in
                    if value == 7_777 { throw TestError(id: 2) }
                    sum += value
                } merge: {
                    $0 += $1
                }
                .run(RunOptions(batch: BatchLimits(maxRecords: 100), computeThreads: 2))
        }
        #expect(error?.stage == "sum")
        #expect(error?.recordIndex == 7_777)
    }

    @Test func parallelReduce_ofEmptyInput_isTheInitialValue() async throws {
        let report = try await Pipeline.from([Int]())
            .parallelReduce(into: 5, concurrency: 2) {
                $0 += $1
            } merge: {
                $0 += $1 - 5
            }
            .run(RunOptions(computeThreads: 2))
        #expect(report.result == 5)
    }

    @Test func mapOnCompute_runsTheStageOnTheRunsPool() async throws {
        let pool = try ComputePool(threads: 2)
        let report = try await Pipeline.from(0..<5_000)
            .map(on: .compute) { _ in pool.containsCurrentThread }
            .map { _ in pool.containsCurrentThread }
            .collect()
            .run(RunOptions(computePool: pool))
        // The first map ran on the pool; the second, on the cooperative pool.
        #expect(report.result.allSatisfy { !$0 })
        let onPool = try await Pipeline.from(0..<5_000)
            .map(on: .pool(pool)) { _ in pool.containsCurrentThread }
            .collect()
            .run()
        #expect(onPool.result.allSatisfy { $0 })
        // A caller's pool outlives the run.
        #expect(pool.liveThreads == 2)
        await pool.shutdown()
    }

    @Test(arguments: [0, -2])
    func badParallelSettings_throwConfigurationError(value: Int) async throws {
        await #expect(throws: ConfigurationError.self) {
            try await Pipeline.from(0..<10).parallelMap(concurrency: value) { $0 }.drain().run()
        }
        await #expect(throws: ConfigurationError.self) {
            try await Pipeline.from(0..<10).parallelMap(reorderWindow: value) { $0 }.drain().run()
        }
        await #expect(throws: ConfigurationError.self) {
            try await Pipeline.from(0..<10).parallelReduce(into: 0, concurrency: value) {
                $0 += $1
            } merge: {
                $0 += $1
            }
            .run()
        }
    }

    @Test func report_ofAParallelStage_countsWorkerTime() async throws {
        let report = try await Pipeline.from(0..<200_000)
            .parallelMap(concurrency: 2) { Self.unevenCost($0) }
            .drain()
            .run(RunOptions(computeThreads: 2))
        let stage = try #require(report[stage: "parallelMap"])
        #expect(stage.recordsIn == 200_000)
        #expect(stage.recordsOut == 200_000)
        #expect(stage.busy > .zero)
    }

    @Test func parallelMap_skipAndDeadLetterPolicies_keepTheRunGoing() async throws {
        let skipped = try await Pipeline.from(0..<10_000)
            .parallelMap(name: "parse", concurrency: 2, onError: .skip) { (value: Int) throws -> Int in
                if value % 100 == 0 { throw TestError(id: value) }
                return value
            }
            .collect()
            .run(RunOptions(batch: BatchLimits(maxRecords: 128), computeThreads: 2))
        #expect(skipped.result == (0..<10_000).filter { $0 % 100 != 0 })
        #expect(skipped[stage: "parse"]?.skipped == 100)

        let rejects = DeadLetters.memory()
        let lettered = try await Pipeline.from(["1", "two", "3"])
            .parallelMap(concurrency: 2, onError: .deadLetter(rejects)) { (text: String) throws -> Int in
                guard let value = Int(text) else { throw TestError(id: 0) }
                return value
            }
            .collect()
            .run(RunOptions(computeThreads: 2))
        #expect(lettered.result == [1, 3])
        #expect(rejects.letters.map(\.record) == [Array("two".utf8)])
    }
}
