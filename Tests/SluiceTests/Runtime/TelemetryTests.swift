import Synchronization
import Testing

@testable import Sluice

#if canImport(Glibc)
import Glibc
#endif

/// Latency percentiles per stage, queue depths, and the cooperative-pool lag probe.
@Suite("Telemetry", .timeLimit(.minutes(1)))
struct TelemetryTests {
    @Test func latencyPercentiles_comeFromTheHistogram_withinOnePercent() throws {
        let recorder = LatencyRecorder()
        #expect(recorder.summary == nil)
        for millisecond in 1...1_000 {
            recorder.record(nanoseconds: UInt64(millisecond) * 1_000_000)
        }
        let summary = try #require(recorder.summary)
        #expect(summary.count == 1_000)
        func within(_ value: Duration, _ expected: Duration) -> Bool {
            abs((value - expected) / expected) <= 0.01
        }
        #expect(within(summary.p50, .milliseconds(500)), "\(summary.p50)")
        #expect(within(summary.p95, .milliseconds(950)), "\(summary.p95)")
        #expect(within(summary.p99, .milliseconds(990)), "\(summary.p99)")
        #expect(within(summary.max, .milliseconds(1_000)), "\(summary.max)")
        // Longer than the histogram's range: counted at its top, not lost.
        recorder.record(nanoseconds: .max)
        #expect(recorder.summary?.count == 1_001)
        #expect(LatencySummary.format(.microseconds(870)) == "870µs")
        #expect(LatencySummary.format(.microseconds(12_345)) == "12.3ms")
        #expect(LatencySummary.format(.milliseconds(4_560)) == "4.6s")
    }

    @Test func everyStage_reportsLatency_perBatch_perWorkerBatch_orPerCall() async throws {
        let report = try await Pipeline.from(0..<1_000)
            .map(name: "double") { $0 * 2 }
            .parallelMap(name: "square", concurrency: 2) { $0 * $0 }
            .mapAsync(name: "lookup", concurrency: 4) { $0 + 1 }
            .stage("enrich") { $0 - 1 }
            .drain(name: "sink")
            .run(RunOptions(batch: BatchLimits(maxRecords: 100)))
        #expect(report[stage: "source"]?.latency == nil)  // a source has no input to time
        #expect(report[stage: "double"]?.latency?.count == 10)  // per batch
        #expect(report[stage: "square"]?.latency?.count == 10)  // per worker batch
        #expect(report[stage: "lookup"]?.latency?.count == 1_000)  // per call
        #expect(report[stage: "enrich"]?.latency?.count == 1_000)  // per call
        #expect((report[stage: "sink"]?.latency?.count ?? 0) >= 10)  // per batch it received
        for stage in report.stages {
            guard let latency = stage.latency else { continue }
            #expect(latency.p50 <= latency.p95 && latency.p95 <= latency.p99 && latency.p99 <= latency.max)
        }
        #expect(report.description.contains("latency"))
        #expect(report.description.contains("queue peak"))
    }

    @Test func queueDepth_peaksAtTheChannelsCapacity_whenTheStageFallsBehind() async throws {
        let sinkHolds = Gate()
        let sinkStarted = EventCounter()
        let sourceParked = EventCounter()
        var options = RunOptions(channelCapacity: 3, batch: BatchLimits(maxRecords: 1))
        options.hooks.onSendSuspended = { stage in
            if stage == "source" { sourceParked.signal() }
        }
        let run = Task {
            try await Pipeline.from(0..<20)
                .forEach(name: "slow") { (value: Int) async in
                    if value == 0 {
                        sinkStarted.signal()
                        await sinkHolds.wait()
                    }
                }
                .run(options)
        }
        await sinkStarted.wait(beyond: 0)
        await sourceParked.wait(beyond: 0)  // the sink's channel is full
        sinkHolds.open()
        let report = try await run.value
        #expect(report[stage: "slow"]?.queueDepth == QueueDepth(now: 0, peak: 3))
        #expect(report[stage: "source"]?.queueDepth == QueueDepth(now: 0, peak: 0))
    }

    @Test func theLagProbe_ticksOnTheRunsClock_andStaysQuietWhenOnTime() async throws {
        let clock = ManualClock()
        let logs = LogCapture()
        let ticks = EventCounter()
        let (values, continuation) = AsyncStream.makeStream(of: Int.self)
        var options = RunOptions()
        options.clock = clock
        options.logger = logs.logger()
        options.lagProbe = LagProbe(interval: .milliseconds(100), warningThreshold: .milliseconds(50))
        options.hooks.onLagProbeTick = { _ in ticks.signal() }
        let run = Task { try await Pipeline.from(values).drain().run(options) }
        for tick in 0..<5 {
            await clock.sleepStarted.wait(beyond: tick)  // the probe waits for its next tick
            clock.advance(by: .milliseconds(100))
            await ticks.wait(beyond: tick)
        }
        continuation.finish()
        let report = try await run.value
        #expect(report.poolLag?.count == 5)
        #expect(report.poolLag?.max == .zero)  // the manual clock does not move while the probe runs
        #expect(!logs.all.contains { $0.message.contains("cooperative pool lag") })
    }

    /// A stage that holds every thread of the cooperative pool (a CPU-bound loop in an async stage) for 300 ms of
    /// real time: the probe's next tick, due within 10 ms, waits for a thread until the stage lets go. This test
    /// measures real scheduling delay, so it runs on the real clock and asserts only a lower bound (a slower
    /// machine makes the lag longer, never shorter).
    @Test func theLagProbe_catchesAStageThatBlocksTheCooperativePool() async throws {
        let threads = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))  // the width of Swift's cooperative pool on Linux
        let logs = LogCapture()
        let ticked = EventCounter()
        let probeTicked = Gate()
        var options = RunOptions()
        options.logger = logs.logger()
        options.lagProbe = LagProbe(interval: .milliseconds(10), warningThreshold: .milliseconds(100))
        options.hooks.onLagProbeTick = { _ in ticked.signal() }
        let run = Task {
            try await Pipeline.from(0..<threads)
                .mapAsync(name: "hog", concurrency: threads) { (value: Int) async -> Int in
                    await probeTicked.wait()
                    let clock = ContinuousClock()
                    let end = clock.now.advanced(by: .milliseconds(300))
                    while clock.now < end {}  // holds its thread: every thread, with the others
                    return value
                }
                .drain()
                .run(options)
        }
        await ticked.wait(beyond: 0)  // the probe runs: its next tick is due in 10 ms
        probeTicked.open()
        let report = try await run.value
        let lag = try #require(report.poolLag)
        #expect(lag.max >= .milliseconds(200), "\(lag)")
        #expect(logs.all.contains { $0.level == .warning && $0.message.contains("cooperative pool lag") })
    }

    @Test func aLagProbeIntervalOfZero_isAConfigurationError() async throws {
        var options = RunOptions()
        options.lagProbe = LagProbe(interval: .zero)
        let error = await #expect(throws: ConfigurationError.self) {
            try await Pipeline.from(0..<3).drain().run(options)
        }
        #expect(error?.setting == "lagProbe.interval")
    }
}
