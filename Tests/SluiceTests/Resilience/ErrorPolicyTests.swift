import Synchronization
import Testing

@testable import Sluice

/// Fails for the first `failures` calls per record value, then succeeds; counts every call.
final class Flaky: Sendable {
    let failures: Int
    private let calls = Locked<[Int: Int]>([:])

    init(failures: Int) {
        self.failures = failures
    }

    func call(_ value: Int) throws -> Int {
        let count = self.calls.withLock { calls in
            calls[value, default: 0] += 1
            return calls[value]!
        }
        if count <= self.failures { throw TestError(id: value) }
        return value
    }

    func attempts(for value: Int) -> Int {
        self.calls.withLock { $0[value, default: 0] }
    }
}

@Suite("Error policies and timeouts", .timeLimit(.minutes(1)))
struct ErrorPolicyTests {
    @Test func skip_dropsFailingRecords_andCountsThem() async throws {
        let report = try await Pipeline.from(0..<1_000)
            .map(name: "picky", onError: .skip) { (value: Int) throws -> Int in
                if value % 10 == 3 { throw TestError(id: value) }
                return value
            }
            .collect()
            .run()
        #expect(report.result == (0..<1_000).filter { $0 % 10 != 3 })
        #expect(report[stage: "picky"]?.skipped == 100)
    }

    @Test func skip_worksForFilterCompactMapAndFlatMapToo() async throws {
        let failOnOdd: @Sendable (Int) throws -> Void = { if $0 % 2 == 1 { throw TestError(id: $0) } }
        let filtered = try await Pipeline.from(0..<10).filter(onError: .skip) {
            try failOnOdd($0)
            return true
        }
        .collect().run()
        #expect(filtered.result == [0, 2, 4, 6, 8])
        let compacted = try await Pipeline.from(0..<10).compactMap(onError: .skip) {
            try failOnOdd($0)
            return $0
        }
        .collect().run()
        #expect(compacted.result == [0, 2, 4, 6, 8])
        let flattened = try await Pipeline.from(0..<4).flatMap(onError: .skip) {
            try failOnOdd($0)
            return [$0, $0]
        }
        .collect().run()
        #expect(flattened.result == [0, 0, 2, 2])
    }

    @Test func retry_makesTheConfiguredAttempts_withTheConfiguredDelays_andSucceedsOnAttemptK() async throws {
        let clock = ManualClock()
        let flaky = Flaky(failures: 3)  // succeeds on attempt 4
        let retry = RetryPolicy.exponential(
            maxAttempts: 5,
            initialDelay: .seconds(1),
            multiplier: 3,
            maxDelay: .seconds(5),
            jitter: 0
        )
        var options = RunOptions()
        options.clock = clock
        let run = Task {
            try await Pipeline.from([7])
                .stage("flaky", onError: .retry(retry)) { try flaky.call($0) }
                .collect()
                .run(options)
        }
        for sleep in 0..<3 {
            await clock.sleepStarted.wait(beyond: sleep)
            clock.advance(by: clock.requested[sleep])
        }
        let report = try await run.value
        #expect(report.result == [7])
        #expect(flaky.attempts(for: 7) == 4)
        #expect(clock.requested == [.seconds(1), .seconds(3), .seconds(5)])  // 1, 3, 9 capped at 5
        #expect(report[stage: "flaky"]?.retries == 3)
    }

    @Test func retryJitter_staysWithinItsBounds() async throws {
        let clock = ManualClock()
        let flaky = Flaky(failures: 4)
        let retry = RetryPolicy.exponential(maxAttempts: 5, initialDelay: .seconds(2), multiplier: 2, jitter: 0.5)
        var options = RunOptions()
        options.clock = clock
        let run = Task {
            try await Pipeline.from([1]).stage("jittery", onError: .retry(retry)) { try flaky.call($0) }.drain()
                .run(options)
        }
        for sleep in 0..<4 {
            await clock.sleepStarted.wait(beyond: sleep)
            clock.advance(by: clock.requested[sleep])
        }
        _ = try await run.value
        let bases: [Duration] = [.seconds(2), .seconds(4), .seconds(8), .seconds(10)]
        for (delay, base) in zip(clock.requested, bases) {
            #expect(delay <= base && delay >= base * 0.5, "\(delay) not within [\(base * 0.5), \(base)]")
        }
    }

    @Test func exhaustedRetries_fallBackToStop_withTheRecordsPosition() async throws {
        let clock = ManualClock()
        let flaky = Flaky(failures: 10)
        var options = RunOptions()
        options.clock = clock
        let run = Task {
            try await Pipeline.from([1, 2, 3])
                .stage("doomed", onError: .retry(.exponential(maxAttempts: 2, initialDelay: .seconds(1)))) {
                    $0 == 2 ? try flaky.call($0) : $0
                }
                .drain()
                .run(options)
        }
        await clock.sleepStarted.wait(beyond: 0)
        clock.advance(by: .seconds(1))
        let error = await #expect(throws: PipelineError.self) { try await run.value }
        #expect(error?.stage == "doomed")
        #expect(error?.recordIndex == 1)
        #expect(error?.underlying as? TestError == TestError(id: 2))
        #expect(flaky.attempts(for: 2) == 2)
    }

    @Test func exhaustedRetries_fallBackToDeadLetters() async throws {
        let clock = ManualClock()
        let flaky = Flaky(failures: 10)
        let rejects = DeadLetters.memory()
        var options = RunOptions()
        options.clock = clock
        let run = Task {
            try await Pipeline.from(["a", "b"])
                .stage("lookup", onError: .retry(.exponential(maxAttempts: 2), otherwise: .deadLetter(rejects))) {
                    (value: String) throws -> String in
                    if value == "b" { _ = try flaky.call(2) }
                    return value
                }
                .collect()
                .run(options)
        }
        await clock.sleepStarted.wait(beyond: 0)
        clock.advance(by: clock.requested[0])
        let report = try await run.value
        #expect(report.result == ["a"])
        #expect(rejects.letters.count == 1)
        #expect(rejects.letters.first?.record == Array("b".utf8))
        #expect(rejects.letters.first?.stage == "lookup")
        #expect(report[stage: "lookup"]?.deadLettered == 1)
    }

    /// A run over `lines` whose "parse" stage sends each line containing "bad" to `letters`.
    static func runRejecting(_ lines: [String], to letters: DeadLetters) async throws -> RunReport<[String]> {
        try await Pipeline.from(lines)
            .map(name: "parse", onError: .deadLetter(letters)) { (line: String) throws -> String in
                if line.contains("bad") { throw TestError(id: 1) }
                return line
            }
            .collect()
            .run(RunOptions(computeThreads: 1))
    }

    @Test func deadLetterFile_isEmptiedWhenARunStarts_unlessAppending() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("rejects.ndjson")
        try writeFile(path, Array("{\"stale\":\"a letter of the run before\"}\n".utf8))
        // A clean run leaves an empty file, not the last run's letters.
        _ = try await Self.runRejecting(["good"], to: .file(path))
        #expect(try readFile(path).isEmpty)
        // Appending keeps what is there; each run adds its own.
        let appending = DeadLetters.file(path, append: true)
        _ = try await Self.runRejecting(["bad 1", "good"], to: appending)
        _ = try await Self.runRejecting(["bad 2"], to: appending)
        let written = splitLines(try readFile(path)).map { String(decoding: $0, as: UTF8.self) }
        #expect(written.count == 2)
        #expect(written.first?.contains("bad 1") == true && written.last?.contains("bad 2") == true)
        #expect(appending.count == 2)
    }

    @Test func deadLetterFile_thatCannotBeOpened_failsTheRunBeforeItStarts() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("missing/rejects.ndjson")
        let seen = Collector<String>()
        await #expect {
            try await Pipeline.from(["good"])
                .map(name: "parse", onError: .deadLetter(.file(path))) { (line: String) -> String in line }
                .forEach { seen.append($0) }
                .run(RunOptions(computeThreads: 1))
        } throws: { error in
            let file = (error as? PipelineError)?.underlying(as: FileError.self)
            return file?.code == .notFound && file?.path == path
        }
        #expect(seen.all.isEmpty)
    }

    @Test func deadLetterFile_isNDJSON_withOriginalBytes_sourceAndLine() async throws {
        let directory = TemporaryDirectory()
        let input: [UInt8] =
            Array("good\n".utf8) + [0x62, 0x61, 0x64, 0xff, 0x0a] + Array("bad \"quoted\"\ngood again\n".utf8)
        try writeFile(directory.file("in.txt"), input)
        let letters = directory.file("rejects.ndjson")
        let report = try await Pipeline.lines(from: [directory.file("in.txt")])
            .map(name: "parse", onError: .deadLetter(.file(letters))) { (line: Line) throws -> Line in
                if line.contains("bad".utf8) { throw TestError(id: 1) }
                return line
            }
            .map { $0.string }
            .collect()
            .run(RunOptions(computeThreads: 1))
        #expect(report.result == ["good", "good again"])
        #expect(report[stage: "parse"]?.deadLettered == 2)
        let written = splitLines(try readFile(letters)).map { String(decoding: $0, as: UTF8.self) }
        #expect(written.count == 2)
        // Invalid UTF-8 is kept exactly, in base64 ("bad\xff" is YmFk/w==).
        #expect(written[0].contains("\"record_base64\":\"YmFk/w==\""))
        #expect(written[0].contains("\"source\":\"\(directory.file("in.txt"))\""))
        #expect(written[0].contains("\"line\":2"))
        #expect(written[0].contains("\"stage\":\"parse\""))
        #expect(written[0].contains("\"error\":\"TestError(id: 1)\""))
        #expect(written[1].contains("\"record\":\"bad \\\"quoted\\\"\""))
        #expect(written[1].contains("\"line\":3"))
    }

    @Test func timeout_firesUnderTheTestClock_andNamesItsStage() async throws {
        let clock = ManualClock()
        var options = RunOptions()
        options.clock = clock
        let never = Gate()
        let run = Task {
            try await Pipeline.from([1])
                .stage("slow", timeout: .seconds(5)) { (value: Int) async -> Int in
                    await never.wait()
                    return value
                }
                .drain()
                .run(options)
        }
        await clock.sleepStarted.wait(beyond: 0)
        #expect(clock.requested == [.seconds(5)])
        clock.advance(by: .seconds(5))
        let error = await #expect(throws: PipelineError.self) { try await run.value }
        #expect(error?.stage == "slow")
        #expect(error?.underlying as? StageTimeoutError == StageTimeoutError(stage: "slow", timeout: .seconds(5)))
        #expect("\(error!)".contains("timed out"))
    }

    @Test func timeout_thenFollowsTheStagesPolicy() async throws {
        let clock = ManualClock()
        var options = RunOptions()
        options.clock = clock
        let never = Gate()
        let run = Task {
            try await Pipeline.from([1, 2, 3])
                .stage("sometimes-slow", timeout: .seconds(1), onError: .skip) { (value: Int) async -> Int in
                    if value == 2 { await never.wait() }
                    return value
                }
                .collect()
                .run(options)
        }
        // Records 1 and 3 finish on their own; record 2 waits for the clock.
        var seen = 0
        while !Task.isCancelled {  // a cancelled wait returns at once: looping on it would spin
            await clock.sleepStarted.wait(beyond: seen)
            seen = clock.sleepStarted.value
            if seen >= 2 { break }
        }
        clock.advance(by: .seconds(1))
        let report = try await run.value
        #expect(report.result == [1, 3])
        #expect(report[stage: "sometimes-slow"]?.skipped == 1)
        #expect(report[stage: "sometimes-slow"]?.timedOut == 1)
    }

    @Test func stopPolicy_inARecordwiseStage_reportsThePosition() async throws {
        let error = await #expect(throws: PipelineError.self) {
            try await Pipeline.from(0..<100)
                .stage("check") { (value: Int) async throws -> Int in
                    if value == 42 { throw TestError(id: 42) }
                    return value
                }
                .drain()
                .run()
        }
        #expect(error?.recordIndex == 42)
        #expect(error?.stage == "check")
    }
}
