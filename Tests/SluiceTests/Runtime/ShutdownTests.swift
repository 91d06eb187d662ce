import CGlibcExtras
import Logging
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

@testable import Sluice

#if canImport(Glibc)
import Glibc
#endif

@Suite("Graceful shutdown", .timeLimit(.minutes(1)))
struct ShutdownTests {
    @Test func shutdownWhileRecordsAreInFlight_writesEveryRecordReadBefore_noneAfter_andAValidGzip() async throws {
        let directory = TemporaryDirectory()
        let (lines, continuation) = AsyncStream.makeStream(of: Line.self)
        let shutdown = ShutdownSignal()
        let passed = EventCounter()
        var options = RunOptions(computeThreads: 2)
        options.shutdown = shutdown
        let run = Task {
            try await Pipeline.from(lines)
                .map { line -> Line in
                    passed.signal()
                    return line
                }
                .write(to: directory.file("out.gz"))
                .run(options)
        }
        for index in 0..<5_000 {
            continuation.yield(Line("record \(index)"))
        }
        await passed.wait(beyond: 4_999)
        shutdown.requestShutdown()
        for index in 5_000..<5_100 {
            continuation.yield(Line("record \(index)"))  // after the request: must not be written
        }
        let report = try await run.value
        continuation.finish()
        #expect(report.interrupted)
        try await Shell.check("gzip -t '\(directory.file("out.gz"))'")
        try await Shell.check("gzip -dc '\(directory.file("out.gz"))' > '\(directory.file("out.txt"))'")
        let written = splitLines(try readFile(directory.file("out.txt"))).map { String(decoding: $0, as: UTF8.self) }
        #expect(written.count == 5_000)
        #expect(written.elementsEqual((0..<5_000).map { "record \($0)" }))
    }

    @Test func shutdownWhileTheSourceIsBlockedOnASilentPipe_returnsWithWhatWasRead() async throws {
        var ends: [Int32] = [0, 0]
        #expect(pipe2(&ends, O_CLOEXEC) == 0)
        defer {
            close(ends[0])
            close(ends[1])
        }
        // Two whole lines, then the start of a third that never ends: not a record.
        let greeting = Array("first\nsecond\nthird, cut sh".utf8)
        _ = greeting.withUnsafeBytes { write(ends[1], $0.baseAddress, $0.count) }
        // The writer stays open and silent: without the shutdown, the read would wait forever.
        let shutdown = ShutdownSignal()
        let received = Collector<String>()
        let arrived = EventCounter()
        var options = RunOptions(computeThreads: 2)
        options.shutdown = shutdown
        let path = "/dev/fd/\(ends[0])"
        let run = Task {
            try await Pipeline.lines(from: [path])
                .forEach {
                    received.append($0.string)
                    arrived.signal()
                }
                .run(options)
        }
        await arrived.wait(beyond: 1)
        shutdown.requestShutdown()
        let report = try await run.value
        #expect(report.interrupted)
        #expect(received.all == ["first", "second"])
    }

    @Test func sequenceSource_stopsOnShutdown_withoutLosingARecord() async throws {
        let shutdown = ShutdownSignal()
        var options = RunOptions(batch: BatchLimits(maxRecords: 100))
        options.shutdown = shutdown
        let report = try await Pipeline.from(0...)
            .map { value -> Int in
                if value == 10_000 { shutdown.requestShutdown() }
                return value
            }
            .collect()
            .run(options)
        #expect(report.interrupted)
        #expect(report.result.count > 10_000)
        #expect(report.result.elementsEqual(0..<report.result.count))
    }

    @Test func shutdownThenCancellation_cancellationWinsAtOnce() async throws {
        let (values, continuation) = AsyncStream.makeStream(of: Int.self)
        let shutdown = ShutdownSignal()
        let stuck = Gate()
        let sinkStarted = EventCounter()
        var options = RunOptions()
        options.shutdown = shutdown
        options.drainDeadline = nil
        let run = Task {
            try await Pipeline.from(values)
                .forEach { (_: Int) async in
                    sinkStarted.signal()
                    await stuck.wait()  // never opened: the drain cannot finish
                }
                .run(options)
        }
        continuation.yield(1)
        await sinkStarted.wait(beyond: 0)
        shutdown.requestShutdown()
        run.cancel()
        await #expect(throws: CancellationError.self) { try await run.value }
        continuation.finish()
    }

    @Test func drainDeadline_cancelsTheRun_andNamesTheStagesStillBusy() async throws {
        let clock = ManualClock()
        let (values, continuation) = AsyncStream.makeStream(of: Int.self)
        let shutdown = ShutdownSignal()
        let stuck = Gate()
        let sinkStarted = EventCounter()
        var options = RunOptions()
        options.clock = clock
        options.shutdown = shutdown
        options.drainDeadline = .seconds(5)
        let sourceEnded = EventCounter()
        options.hooks.onStageEnded = { stage in
            if stage == "source" { sourceEnded.signal() }
        }
        let run = Task {
            try await Pipeline.from(values)
                .forEach(name: "stuck-sink") { (_: Int) async in
                    sinkStarted.signal()
                    await stuck.wait()
                }
                .run(options)
        }
        continuation.yield(1)
        await sinkStarted.wait(beyond: 0)
        shutdown.requestShutdown()
        await clock.sleepStarted.wait(beyond: 0)
        await sourceEnded.wait(beyond: 0)  // the source stopped; the sink is what holds the drain up
        #expect(clock.requested == [.seconds(5)])
        clock.advance(by: .seconds(5))
        let error = await #expect(throws: PipelineError.self) { try await run.value }
        let deadline = try #require(error?.underlying as? DrainDeadlineExceeded)
        #expect(deadline.busyStages == ["stuck-sink"])
        #expect(error?.stage == "stuck-sink")
        continuation.finish()
    }

    @Test func finitePipelineAsAService_endsItsGroupWithSuccess() async throws {
        let reports = Collector<Int>()
        let service = Pipeline.from(0..<1_000).drain().service { reports.append($0.result) }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
                logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
            )
        )
        try await group.run()
        #expect(reports.all == [1_000])
    }

    @Test func failingPipelineAsAService_endsItsGroupWithItsError() async throws {
        let service = Pipeline.from(0..<10).map { (value: Int) throws -> Int in
            if value == 5 { throw TestError(id: 5) }
            return value
        }.drain().service()
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
                logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
            )
        )
        let error = await #expect(throws: PipelineError.self) { try await group.run() }
        #expect(error?.underlying as? TestError == TestError(id: 5))
    }

    @Test func gracefulShutdownOfTheServiceGroup_drainsTheRun() async throws {
        let (values, continuation) = AsyncStream.makeStream(of: Int.self)
        let received = Collector<Int>()
        let arrived = EventCounter()
        try await testGracefulShutdown { trigger in
            let run = Task {
                try await Pipeline.from(values).forEach {
                    received.append($0)
                    arrived.signal()
                }
                .run()
            }
            for value in 0..<100 { continuation.yield(value) }
            await arrived.wait(beyond: 99)
            trigger.triggerGracefulShutdown()
            let report = try await run.value
            #expect(report.interrupted)
        }
        #expect(received.all == Array(0..<100))
        continuation.finish()
    }
}

/// Sources and stages of the user's own under a graceful shutdown: they stop in time, and only stages at work are
/// named when the drain overruns its deadline.
@Suite("Shutdown of user stages", .timeLimit(.minutes(1)))
struct UserStageShutdownTests {
    /// A source that never looks at the shutdown: it asks for one after record 20, then goes on emitting.
    struct Stubborn: Source {
        let shutdown: ShutdownSignal
        func run(into output: StageOutput<Int>) async throws {
            for value in 0..<60 {
                try await output.emit(value)
                if value == 20 { self.shutdown.requestShutdown() }
            }
        }
    }

    @Test func aSourceThatIgnoresTheShutdown_endsAtItsNextEmit_andWhatItEmittedDrains() async throws {
        let shutdown = ShutdownSignal()
        var options = RunOptions(batch: BatchLimits(maxRecords: 4))
        options.shutdown = shutdown
        let report = try await Pipeline.from(Stubborn(shutdown: shutdown)).collect().run(options)
        #expect(report.interrupted)
        #expect(report.result == Array(0...20))
    }

    @Test func theSameSource_withoutAShutdown_emitsEverything() async throws {
        let report = try await Pipeline.from(Stubborn(shutdown: ShutdownSignal())).collect()
            .run(RunOptions(batch: BatchLimits(maxRecords: 4)))
        #expect(!report.interrupted)
        #expect(report.result == Array(0..<60))
    }

    @Test func theDrainDeadline_namesOnlyTheStagesAtWork() async throws {
        let clock = ManualClock()
        let (values, continuation) = AsyncStream.makeStream(of: Int.self)
        let shutdown = ShutdownSignal()
        let stuck = Gate()
        let sinkStarted = EventCounter()
        let parked = EventCounter()
        var options = RunOptions(channelCapacity: 1, batch: BatchLimits(maxRecords: 1))
        options.clock = clock
        options.shutdown = shutdown
        options.drainDeadline = .seconds(5)
        let sourceParked = EventCounter()
        options.hooks.onSendSuspended = { stage in
            if stage == "between" { parked.signal() }
            if stage == "source" { sourceParked.signal() }
        }
        let run = Task {
            try await Pipeline.from(values)
                .map(name: "between") { $0 }
                .forEach(name: "stuck-sink") { (_: Int) async in
                    sinkStarted.signal()
                    await stuck.wait()
                }
                .run(options)
        }
        for value in 0..<5 { continuation.yield(value) }
        await sinkStarted.wait(beyond: 0)
        await parked.wait(beyond: 0)  // "between" waits for room: the sink's channel is full
        // …and so does the source, with the last value: not at work either (under a sanitizer it may still be on
        // its way there when the deadline passes, and be named).
        await sourceParked.wait(beyond: 0)
        shutdown.requestShutdown()
        await clock.sleepStarted.wait(beyond: 0)
        clock.advance(by: .seconds(5))
        let error = await #expect(throws: PipelineError.self) { try await run.value }
        let deadline = try #require(error?.underlying(as: DrainDeadlineExceeded.self))
        #expect(deadline.busyStages == ["stuck-sink"])
        continuation.finish()
    }
}
