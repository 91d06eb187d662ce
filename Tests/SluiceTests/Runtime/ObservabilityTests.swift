import Logging
import MetricsTestKit
import Synchronization
import Testing

@testable import Sluice

/// Keeps every log message, with its level and metadata.
final class LogCapture: Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata
    }

    private let entries = Locked<[Entry]>([])
    /// Signalled after each message is kept, so a test can wait for one.
    let appended = EventCounter()

    var all: [Entry] { self.entries.withLock { $0 } }

    /// Returns once a message at `level` whose text contains `text` was logged, or the task is cancelled (a test
    /// past its time limit: a cancelled wait returns at once, so looping on it would spin).
    func wait(for level: Logger.Level, containing text: String) async {
        while !Task.isCancelled {
            let seen = self.appended.value
            if self.all.contains(where: { $0.level == level && $0.message.contains(text) }) { return }
            await self.appended.wait(beyond: seen)
        }
    }

    func logger() -> Logger {
        Logger(label: "test") { _ in Handler(capture: self) }
    }

    func append(_ entry: Entry) {
        self.entries.withLock { $0.append(entry) }
        self.appended.signal()
    }

    func first(_ message: String) -> Entry? {
        self.all.first { $0.message.hasPrefix(message) }
    }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { self.metadata[key] }
            set { self.metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            self.capture.append(
                Entry(
                    level: event.level,
                    message: "\(event.message)",
                    metadata: self.metadata.merging(event.metadata ?? [:]) { $1 }
                )
            )
        }
    }
}

@Suite("Logs and metrics", .timeLimit(.minutes(1)))
struct ObservabilityTests {
    @Test func lifecycleEvents_areLogged_withPipelineAndStageMetadata() async throws {
        let clock = ManualClock()
        let logs = LogCapture()
        let rejects = DeadLetters.memory()
        let flaky = Flaky(failures: 1)
        var options = RunOptions()
        options.name = "orders"
        options.logger = logs.logger()
        options.clock = clock
        let run = Task {
            try await Pipeline.from([1, 2])
                .stage("retrying", onError: .retry(.exponential(maxAttempts: 2, initialDelay: .seconds(1)))) {
                    try flaky.call($0)
                }
                .map(name: "rejecting", onError: .deadLetter(rejects)) { (value: Int) throws -> Int in
                    if value == 2 { throw TestError(id: 2) }
                    return value
                }
                .drain()
                .run(options)
        }
        await clock.sleepStarted.wait(beyond: 0)
        clock.advance(by: clock.requested[0])
        await clock.sleepStarted.wait(beyond: 1)
        clock.advance(by: clock.requested[1])
        _ = try await run.value

        let started = try #require(logs.first("pipeline started"))
        #expect(started.metadata["pipeline"] == "orders")
        #expect(started.metadata["stages"] == "source -> retrying -> rejecting -> drain")
        let retry = try #require(logs.first("retrying a record"))
        #expect(retry.metadata["stage"] == "retrying")
        #expect(retry.metadata["attempt"] == "2")
        let letter = try #require(logs.first("record sent to dead letters"))
        #expect(letter.level == .warning)
        #expect(letter.metadata["stage"] == "rejecting")
        #expect(logs.first("pipeline finished") != nil)
    }

    @Test func shutdownAndFailure_areLogged() async throws {
        let logs = LogCapture()
        let shutdown = ShutdownSignal()
        var options = RunOptions()
        options.logger = logs.logger()
        options.shutdown = shutdown
        _ = try await Pipeline.from(0...)
            .map { value -> Int in
                if value == 5_000 { shutdown.requestShutdown() }
                return value
            }
            .drain()
            .run(options)
        #expect(logs.first("shutdown requested") != nil)
        #expect(logs.first("pipeline drained after a shutdown request") != nil)

        var failing = RunOptions()
        failing.logger = logs.logger()
        await #expect(throws: PipelineError.self) {
            try await Pipeline.from([1]).map(name: "boom") { (_: Int) throws -> Int in throw TestError(id: 1) }
                .drain().run(failing)
        }
        let failure = try #require(logs.first("pipeline failed"))
        #expect(failure.level == .error)
        #expect(failure.metadata["stage"] == "boom")
    }

    @Test func perStageMetrics_countRecordsErrorsRetriesAndDeadLetters() async throws {
        let metrics = TestMetrics()
        let clock = ManualClock()
        let flaky = Flaky(failures: 1)
        var options = RunOptions(batch: BatchLimits(maxRecords: 10))
        options.name = "metered"
        options.metricsFactory = metrics
        options.clock = clock
        let runOptions = options
        let run = Task {
            try await Pipeline.from(0..<100)
                .stage("flaky", onError: .retry(.exponential(maxAttempts: 2))) { $0 == 7 ? try flaky.call($0) : $0 }
                .map(name: "odd", onError: .skip) { (value: Int) throws -> Int in
                    if value % 2 == 1 { throw TestError(id: value) }
                    return value
                }
                .filter(name: "keep", onError: .deadLetter(.memory())) { (value: Int) throws -> Bool in
                    if value == 50 { throw TestError(id: 50) }
                    return true
                }
                .drain()
                .run(runOptions)
        }
        await clock.sleepStarted.wait(beyond: 0)
        clock.advance(by: clock.requested[0])
        _ = try await run.value

        func total(_ label: String, _ stage: String) -> Int64 {
            metrics.counterTotal(label: label, dimensions: [("pipeline", "metered"), ("stage", stage)])
        }
        #expect(total("sluice_stage_records_out", "source") == 100)
        #expect(total("sluice_stage_records_in", "odd") == 100)
        #expect(total("sluice_stage_records_out", "odd") == 50)
        #expect(total("sluice_stage_skipped", "odd") == 50)
        #expect(total("sluice_stage_retries", "flaky") == 1)
        #expect(total("sluice_stage_dead_letters", "keep") == 1)
        #expect(total("sluice_stage_records_in", "drain") == 49)
        let depth = try metrics.expectGauge("sluice_stage_channel_depth", [("pipeline", "metered"), ("stage", "odd")])
        #expect(depth.lastValue != nil)

        var failing = options
        failing.name = "failing"
        await #expect(throws: PipelineError.self) {
            try await Pipeline.from([1]).map(name: "boom") { (_: Int) throws -> Int in throw TestError(id: 1) }
                .drain().run(failing)
        }
        #expect(
            metrics.counterTotal(
                label: "sluice_stage_errors",
                dimensions: [("pipeline", "failing"), ("stage", "boom")]
            ) == 1
        )
    }

    @Test func twoStagesFailingAtTheSameMoment_reportOneRootCause_theFirstToReachTheRunner() async throws {
        // Both branches fail on their first record, at once. Which one reaches the runner first is not fixed;
        // what is: exactly one of the two root causes is reported, never a cancellation they caused.
        for _ in 0..<20 {
            let error = await #expect(throws: PipelineError.self) {
                try await Pipeline.from([1])
                    .tee { $0.map(name: "left") { (_: Int) throws -> Int in throw TestError(id: 1) }.drain() }
                    .map(name: "right") { (_: Int) throws -> Int in throw TestError(id: 2) }
                    .drain()
                    .run()
            }
            let cause = try #require(error?.underlying as? TestError)
            #expect((error?.stage == "left" && cause.id == 1) || (error?.stage == "right" && cause.id == 2))
        }
    }
}
