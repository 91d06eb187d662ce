import Testing

@testable import Sluice

@Suite("PipelineRunner", .timeLimit(.minutes(1)))
struct PipelineRunnerTests {
    @Test func errorInStageThreeOfFive_throwsPipelineErrorNamingIt_withTheRootCause_andEndsEveryStage() async throws {
        let live = LiveCounter()
        let pipeline = Pipeline.from(TrackedSource(live: live, count: 1_000_000))
            .stage(TrackedPassThrough(live: live), name: "two")
            .map(name: "three") { (value: Int) throws -> Int in
                if value == 5_000 { throw TestError(id: 3) }
                return value
            }
            .stage(TrackedPassThrough(live: live), name: "four")
            .to(TrackedDrain(live: live))
        let error = await #expect(throws: PipelineError.self) {
            try await pipeline.run(RunOptions(channelCapacity: 2, batch: BatchLimits(maxRecords: 100)))
        }
        #expect(error?.stage == "three")
        #expect(error?.underlying as? TestError == TestError(id: 3))
        #expect(error?.code == .stageFailed)
        #expect(live.everStarted == 4)
        #expect(live.running == 0)
    }

    @Test func errorInTheSource_isReported_notTheCancellationsDownstream() async throws {
        let error = await #expect(throws: PipelineError.self) {
            try await Pipeline.from(FailingSource(after: 2_500)).map { $0 }.filter { _ in true }.drain().run()
        }
        #expect(error?.stage == "failing")
        #expect(error?.underlying as? TestError == TestError(id: 1))
    }

    @Test func errorInTheSink_isReported_andTheUpstreamStops() async throws {
        let live = LiveCounter()
        let error = await #expect(throws: PipelineError.self) {
            try await Pipeline.from(TrackedSource(live: live, count: nil))
                .forEach(name: "picky") { if $0 == 10_000 { throw TestError(id: 9) } }
                .run()
        }
        #expect(error?.stage == "picky")
        #expect(error?.underlying as? TestError == TestError(id: 9))
        #expect(live.running == 0)
    }

    @Test func cancellingRun_endsEveryStage_andThrowsCancellationError() async throws {
        let live = LiveCounter()
        let sinkStarted = EventCounter()
        let gate = Gate()
        let run = Task {
            try await Pipeline.from(TrackedSource(live: live, count: nil))
                .map { $0 + 1 }
                .forEach { (_: Int) async in
                    sinkStarted.signal()
                    await gate.wait()  // blocks until cancelled: the source fills every channel and suspends
                }
                .run()
        }
        await sinkStarted.wait(beyond: 0)
        run.cancel()
        await #expect(throws: CancellationError.self) { try await run.value }
        #expect(live.running == 0)
    }

    @Test func cancellingRun_whileTheSourceIsSuspendedOnAFullChannel_endsPromptly() async throws {
        let live = LiveCounter()
        let sourceSuspended = EventCounter()
        var options = RunOptions(channelCapacity: 1, batch: BatchLimits(maxRecords: 8))
        options.hooks.onSendSuspended = { stage in
            if stage == "tracked" { sourceSuspended.signal() }
        }
        let gate = Gate()
        let run = Task {
            try await Pipeline.from(TrackedSource(live: live, count: nil))
                .to(GatedSink(gate: gate))
                .run(options)
        }
        await sourceSuspended.wait(beyond: 0)
        run.cancel()
        await #expect(throws: CancellationError.self) { try await run.value }
        #expect(live.running == 0)
    }

    @Test func backpressure_boundsRecordsInFlight_forTenMillionRecords() async throws {
        // The sink stops every 1,000 batches until the source has had to wait: the pipeline is then full, and the
        // engine's count of records in flight must still be within the bound it promises.
        let sourceSuspended = EventCounter()
        var options = RunOptions(channelCapacity: 4, batch: BatchLimits(maxRecords: 1024))
        options.hooks.onSendSuspended = { stage in
            if stage == "source" { sourceSuspended.signal() }
        }
        let (total, stallEvery) = isThreadSanitized ? (1_000_000, 100) : (10_000_000, 1_000)
        let report = try await Pipeline.from(0..<total)
            .map { $0 &* 2 }
            .filter { _ in true }
            .to(StallingSink(everyBatches: stallEvery, sourceSuspended: sourceSuspended))
            .run(options)
        #expect(report.result.records == total)
        #expect(report.result.stalls >= total / 1_024 / stallEvery)
        // Three channels of 4 × 1024, plus one batch for each of the four stages.
        #expect(report.recordsInFlightBound == 3 * 4 * 1024 + 4 * 1024)
        #expect(report.peakRecordsInFlight <= report.recordsInFlightBound)
        // The pipeline really filled up: more than one channel's worth was in flight at the peak.
        #expect(report.peakRecordsInFlight > 4 * 1024)
        #expect((report[stage: "source"]?.blockedSends ?? 0) >= report.result.stalls)
    }

    @Test(arguments: [
        RunOptions(channelCapacity: 0),
        RunOptions(channelCapacity: -3),
        RunOptions(batch: BatchLimits(maxRecords: 0)),
        RunOptions(batch: BatchLimits(maxRecords: -1)),
        RunOptions(batch: BatchLimits(maxBytes: 0)),
    ])
    func badConfiguration_throwsConfigurationError_beforeAnythingRuns(options: RunOptions) async throws {
        let live = LiveCounter()
        await #expect(throws: ConfigurationError.self) {
            try await Pipeline.from(TrackedSource(live: live, count: 10)).drain().run(options)
        }
        #expect(live.everStarted == 0)
    }

    @Test func configurationError_namesTheSettingAndTheValue() async throws {
        let error = await #expect(throws: ConfigurationError.self) {
            try await Pipeline.from(0..<10).drain().run(RunOptions(channelCapacity: 0))
        }
        #expect(error?.setting == "channelCapacity")
        #expect(error.map { "\($0)" } == "invalid configuration: channelCapacity = 0 must be at least 1")
    }

    @Test func report_countsRecordsAndBatchesPerStage_andNamesABottleneck() async throws {
        let report = try await Pipeline.from(0..<10_000)
            .filter { $0 % 2 == 0 }
            .map(name: "square") { $0 * $0 }
            .drain()
            .run(RunOptions(batch: BatchLimits(maxRecords: 1000)))
        #expect(report.stages.map(\.name) == ["source", "filter", "square", "drain"])
        let filter = try #require(report[stage: "filter"])
        #expect(filter.recordsIn == 10_000)
        #expect(filter.recordsOut == 5_000)
        #expect(filter.batchesIn == 10)
        #expect(report[stage: "source"]?.recordsOut == 10_000)
        #expect(report[stage: "drain"]?.recordsIn == 5_000)
        #expect(report.peakRecordsInFlight <= report.recordsInFlightBound)
    }

    @Test func bottleneck_isTheStageBusiestLongest_andTheTableNamesIt() {
        func stage(_ name: String, busy: Duration, waiting: Duration) -> StageReport {
            StageReport(
                name: name,
                kind: "map",
                recordsIn: 10,
                recordsOut: 10,
                batchesIn: 1,
                batchesOut: 1,
                busy: busy,
                waitingForInput: waiting,
                blockedOnOutput: .zero,
                blockedSends: 0,
                bytesIn: 0,
                bytesOut: 0,
                skipped: 0,
                retries: 0,
                deadLettered: 1,
                timedOut: 2
            )
        }
        let report = RunReport<Void>(
            result: (),
            stages: [
                stage("source", busy: .milliseconds(20), waiting: .zero),
                // Busier than "parse", but it waited for input (a socket, through the wait API) even longer.
                stage("socket", busy: .milliseconds(950), waiting: .milliseconds(1_000)),
                stage("parse", busy: .milliseconds(900), waiting: .milliseconds(10)),
                stage("write", busy: .milliseconds(50), waiting: .milliseconds(850)),
            ],
            wallTime: .seconds(1),
            peakRecordsInFlight: 0,
            recordsInFlightBound: 0,
            peakBytesInFlight: 0,
            bytesInFlightBound: 0,
            interrupted: false
        )
        #expect(report.bottleneck?.name == "parse")
        #expect(report.description.contains("bottleneck: parse"))
        // The error policies' counts, per stage: skipped, retried, dead-lettered, timed out.
        #expect(report.description.contains("skipped  retried  dead-lettered  timed out"))
        #expect(report.description.split(separator: "\n")[3].hasSuffix("0        0              1          2"))
        let idle = RunReport<Void>(
            result: (),
            stages: [],
            wallTime: .zero,
            peakRecordsInFlight: 0,
            recordsInFlightBound: 0,
            peakBytesInFlight: 0,
            bytesInFlightBound: 0,
            interrupted: false
        )
        #expect(idle.bottleneck == nil)
        #expect(idle.description.contains("bottleneck: none"))
    }

    @Test func runMonitor_showsTheStagesLive_andAgreesWithTheReport() async throws {
        let monitor = RunMonitor()
        #expect(monitor.stages.isEmpty)
        let seenWhileRunning = Collector<Int>()
        var options = RunOptions(batch: BatchLimits(maxRecords: 100))
        options.monitor = monitor
        let report = try await Pipeline.from(0..<10_000)
            .map(name: "double") { $0 * 2 }
            .forEach { value in
                if value == 10_000 { seenWhileRunning.append(monitor.stages.count) }
            }
            .run(options)
        #expect(seenWhileRunning.all == [3])
        #expect(monitor.stages.map(\.name) == report.stages.map(\.name))
        #expect(monitor.stages.map(\.recordsOut) == report.stages.map(\.recordsOut))
    }

    @Test func duplicateStageNames_areMadeUnique() async throws {
        let report = try await Pipeline.from(0..<10).map { $0 }.map { $0 }.map(name: "x") { $0 }.map(name: "x") { $0 }
            .drain().run()
        #expect(report.stages.map(\.name) == ["source", "map", "map#2", "x", "x#2", "drain"])
    }
}

// MARK: - Stages that report when they run

/// Emits 0, 1, 2, … (`count` records, or without end), counted by `live` while it runs.
struct TrackedSource: Source {
    let live: LiveCounter
    let count: Int?
    var kind: String { "tracked" }

    func run(into output: StageOutput<Int>) async throws {
        try await self.live.track {
            var value = 0
            while self.count.map({ value < $0 }) ?? true {
                try await output.emit(value)
                value += 1
            }
        }
    }
}

struct TrackedPassThrough: Stage {
    let live: LiveCounter

    func run(input: StageInput<Int>, output: StageOutput<Int>) async throws {
        try await self.live.track {
            for try await batch in input { try await output.send(batch) }
        }
    }
}

struct TrackedDrain: Sink {
    let live: LiveCounter

    func run(input: StageInput<Int>) async throws {
        try await self.live.track {
            for try await _ in input {}
        }
    }
}

struct FailingSource: Source {
    let after: Int
    var kind: String { "failing" }

    func run(into output: StageOutput<Int>) async throws {
        for value in 0..<self.after { try await output.emit(value) }
        throw TestError(id: 1)
    }
}

/// Waits at its first batch until the gate opens (or the run is cancelled).
struct GatedSink: Sink {
    let gate: Gate

    func run(input: StageInput<Int>) async throws {
        for try await _ in input {
            await self.gate.wait()
            try Task.checkCancellation()
        }
    }
}

/// Every `everyBatches` batches, stops consuming until the source has had to wait for room.
struct StallingSink: Sink {
    let everyBatches: Int
    let sourceSuspended: EventCounter

    func run(input: StageInput<Int>) async throws -> (records: Int, stalls: Int) {
        var records = 0
        var batches = 0
        var stalls = 0
        for try await batch in input {
            records += batch.count
            batches += 1
            if batches % self.everyBatches == 0 {
                await self.sourceSuspended.wait(beyond: self.sourceSuspended.value)
                stalls += 1
            }
        }
        return (records, stalls)
    }
}
