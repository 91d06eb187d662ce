import AsyncHTTPClient
import Logging
import Testing

@testable import Sluice
@testable import SluiceHTTP

/// `postNDJSON` and `HTTPService` against a local server the test scripts. Which records arrived is read on the
/// server's side: every record is delivered or handed to the error policy, none is lost, and a record arrives twice
/// only where an attempt timed out (and is counted). Backoff, `Retry-After`, timeouts and the breaker run on a
/// manual clock.
@Suite("HTTP: posting NDJSON", .timeLimit(.minutes(1)))
struct HTTPPostTests {
    static func records(_ ids: Range<Int>) -> [String] { ids.map { "{\"id\":\($0)}" } }

    /// Settings on `clock`: backoff of exactly `backoff`, a long timeout, no breaker unless given.
    static func settings(
        _ clock: ManualClock,
        attempts: Int = 4,
        backoff: Duration = .seconds(1),
        timeout: Duration = .seconds(60),
        breaker: CircuitBreaker.Settings? = nil,
        logger: Logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
    ) -> HTTPService.Settings {
        HTTPService.Settings(
            timeout: timeout,
            retry: .exponential(maxAttempts: attempts, initialDelay: backoff, multiplier: 1, jitter: 0),
            maxRetryAfter: .seconds(30),
            breaker: breaker,
            clock: clock,
            logger: logger
        )
    }

    /// Advances `clock` by every sleep that starts with a duration `pick` chooses (a backoff, not a timeout).
    static func drive(_ clock: ManualClock, _ pick: @escaping @Sendable (Duration) -> Bool) -> Task<Void, Never> {
        Task {
            var handled = 0
            while !Task.isCancelled {
                let signals = clock.sleepStarted.value
                let requested = clock.requested
                for duration in requested[handled...] where pick(duration) {
                    clock.advance(by: duration)
                }
                handled = requested.count
                await clock.sleepStarted.wait(beyond: signals)
            }
        }
    }

    static func post(
        _ lines: [String],
        to url: String,
        settings: HTTPService.Settings,
        options: HTTPPostOptions = HTTPPostOptions(),
        onError policy: ErrorPolicy = .stop,
        runOptions: RunOptions = RunOptions()
    ) async throws -> (delivered: Int, statistics: HTTPService.Statistics) {
        try await HTTPService.with(settings) { service in
            let report = try await Pipeline.from(lines)
                .postNDJSON(to: url, via: service, options: options, onError: policy)
                .run(runOptions)
            return (report.result, service.statistics)
        }
    }

    @Test func postsEveryRecordOnce_inRequestsWithinTheLimits() async throws {
        let server = try await ScriptedHTTPServer { _ in .status(200) }
        let lines = Self.records(0..<1_000)
        let (delivered, statistics) = try await Self.post(
            lines,
            to: server.url,
            settings: HTTPService.Settings(),
            options: HTTPPostOptions(concurrency: 4, maxRecordsPerRequest: 100, maxBytesPerRequest: 600),
            runOptions: RunOptions(batch: BatchLimits(maxRecords: 256))
        )
        #expect(delivered == 1_000)
        #expect(server.lines.sorted() == lines.sorted())
        for request in server.requests {
            #expect(request.method == "POST")
            #expect(request.header("content-type") == "application/x-ndjson")
            #expect(request.body.count <= 600)
            #expect(request.body.last == UInt8(ascii: "\n"))
        }
        #expect(statistics.calls == server.requests.count)
        #expect(statistics.responses == ["2xx": server.requests.count])
        #expect(statistics.retries == 0)
        try await server.stop()
    }

    @Test func serverErrors_areRetriedWithBackoff_thenDelivered() async throws {
        let clock = ManualClock()
        let server = try await ScriptedHTTPServer { request in request.index < 2 ? .status(500) : .status(200) }
        let driver = Self.drive(clock) { $0 == .seconds(1) }
        let lines = Self.records(0..<10)
        let (delivered, statistics) = try await Self.post(lines, to: server.url, settings: Self.settings(clock))
        driver.cancel()
        #expect(delivered == 10)
        #expect(server.requests.count == 3)
        #expect(server.lines == lines + lines + lines)  // the same body, sent again after each 500
        #expect(statistics.attempts == 3 && statistics.retries == 2 && statistics.calls == 1)
        #expect(statistics.responses == ["5xx": 2, "2xx": 1])
        #expect(statistics.possibleDuplicates == 0)  // a 500 is an answer: the service did not take the records
        try await server.stop()
    }

    @Test func retryAfter_isHonoured_upToItsLimit() async throws {
        let clock = ManualClock()
        let server = try await ScriptedHTTPServer { request in
            switch request.index {
            case 0: .status(429, headers: [("Retry-After", "7")])
            case 1: .status(503, headers: [("Retry-After", "3600")])  // more than maxRetryAfter (30 s)
            default: .status(200)
            }
        }
        let driver = Self.drive(clock) { $0 == .seconds(7) || $0 == .seconds(30) }
        let (delivered, statistics) = try await Self.post(
            Self.records(0..<3),
            to: server.url,
            settings: Self.settings(clock)
        )
        driver.cancel()
        #expect(delivered == 3)
        #expect(clock.requested.filter { $0 < .seconds(60) } == [.seconds(7), .seconds(30)])  // not the 1 s backoff
        #expect(statistics.retries == 2)
        try await server.stop()
    }

    @Test func aTimedOutAttempt_isCancelledAndRetried_andCountedAsAPossibleDuplicate() async throws {
        let clock = ManualClock()
        let server = try await ScriptedHTTPServer { request in request.index == 0 ? .hang : .status(200) }
        let lines = Self.records(0..<10)
        let run = Task {
            try await Self.post(lines, to: server.url, settings: Self.settings(clock, timeout: .seconds(2)))
        }
        await clock.sleepStarted.wait(beyond: 0)  // the first attempt's timeout…
        await server.received.wait(beyond: 0)  // …and its request, which the server keeps and never answers
        clock.advance(by: .seconds(2))
        await clock.sleepStarted.wait(beyond: 1)
        #expect(clock.requested == [.seconds(2), .seconds(1)])  // then the backoff
        clock.advance(by: .seconds(1))
        let (delivered, statistics) = try await run.value
        #expect(delivered == 10)
        #expect(server.lines == lines + lines)  // it did land twice…
        #expect(statistics.possibleDuplicates == 10)  // …and the records are counted as possible duplicates
        #expect(statistics.timeouts == 1 && statistics.retries == 1)
        try await server.stop()
    }

    @Test func aRefusedConnection_isRetried_thenEachRecordGoesToThePolicy() async throws {
        let clock = ManualClock()
        let port = try RefusingPort()
        let letters = DeadLetters.memory()
        let driver = Self.drive(clock) { $0 == .seconds(1) }
        let lines = Self.records(0..<10)
        let (delivered, statistics) = try await Self.post(
            lines,
            to: port.url,
            settings: Self.settings(clock, attempts: 3),
            options: HTTPPostOptions(maxRecordsPerRequest: 5),
            onError: .deadLetter(letters)
        )
        driver.cancel()
        #expect(delivered == 0)
        #expect(letters.letters.map { String(decoding: $0.record, as: UTF8.self) }.sorted() == lines.sorted())
        #expect(letters.letters.allSatisfy { $0.error.contains("cannot reach") && $0.stage == "deliver" })
        #expect(statistics.connectionErrors == 6 && statistics.retries == 4)
        #expect(statistics.possibleDuplicates == 0)  // refused: the service never saw them
        withExtendedLifetime(port) {}  // the port refuses until here
    }

    @Test func aClientError_isNotRetried_andItsRecordsAreDeadLetteredWithTheStatusAndBody() async throws {
        let server = try await ScriptedHTTPServer { request in
            String(decoding: request.body, as: UTF8.self).contains("{\"id\":7}")
                ? .status(400, body: "record 7 is invalid") : .status(200)
        }
        let letters = DeadLetters.memory()
        let lines = Self.records(0..<20)
        let (delivered, statistics) = try await Self.post(
            lines,
            to: server.url,
            settings: HTTPService.Settings(),
            options: HTTPPostOptions(concurrency: 2, maxRecordsPerRequest: 5),
            onError: .deadLetter(letters),
            runOptions: RunOptions(batch: BatchLimits(maxRecords: 5))
        )
        #expect(delivered == 15)
        #expect(Set(letters.letters.map { String(decoding: $0.record, as: UTF8.self) }) == Set(Self.records(5..<10)))
        for letter in letters.letters {
            #expect(letter.error.contains("HTTP 400 Bad Request") && letter.error.contains("record 7 is invalid"))
        }
        #expect(server.lines.sorted() == lines.sorted())  // each once: the 400 was not retried
        #expect(statistics.retries == 0 && statistics.responses == ["2xx": 3, "4xx": 1])
        try await server.stop()
    }

    @Test func aClientError_underStop_failsTheRun_namingTheStatus() async throws {
        let server = try await ScriptedHTTPServer { _ in .status(422, body: "no") }
        let error = await #expect(throws: PipelineError.self) {
            _ = try await Self.post(Self.records(0..<3), to: server.url, settings: HTTPService.Settings())
        }
        #expect(error?.stage == "deliver")
        #expect(error?.underlying(as: HTTPStatusError.self)?.status == 422)
        try await server.stop()
    }

    @Test func aServiceThatGoesDownAndComesBack_opensTheBreaker_failsFast_thenCloses() async throws {
        let clock = ManualClock()
        let up = Locked(false)
        let server = try await ScriptedHTTPServer { _ in up.withLock { $0 } ? .status(200) : .status(500) }
        let logs = LogCapture()
        let letters = DeadLetters.memory()
        let breaker = CircuitBreaker.Settings(window: 4, minimumCalls: 4, failureRate: 0.5, openFor: .seconds(30))
        let settings = Self.settings(clock, attempts: 1, breaker: breaker, logger: logs.logger())
        var runOptions = RunOptions(batch: BatchLimits(maxRecords: 1))
        runOptions.logger = logs.logger()
        let options = runOptions
        let (lines, feed) = AsyncStream.makeStream(of: String.self)
        let ids = Self.records(0..<10)
        let (report, statistics) = try await HTTPService.with(settings) { service in
            let run = Task {
                try await Pipeline.from(lines)
                    .postNDJSON(
                        to: server.url,
                        via: service,
                        options: HTTPPostOptions(concurrency: 1),
                        onError: .deadLetter(letters)
                    )
                    .run(options)
            }
            for id in 0..<4 { feed.yield(ids[id]) }  // four 500s: the breaker opens
            await logs.wait(for: .warning, containing: "circuit breaker opened")
            for id in 4..<6 { feed.yield(ids[id]) }  // refused without a request
            await Self.wait(for: 6, of: "record sent to dead letters", in: logs)
            #expect(server.requests.count == 4)
            up.withLock { $0 = true }
            clock.advance(by: .seconds(30))  // half-open: the next call is a probe
            feed.yield(ids[6])
            await logs.wait(for: .notice, containing: "circuit breaker closed")
            for id in 7..<10 { feed.yield(ids[id]) }
            feed.finish()
            return (try await run.value, service.statistics)
        }
        #expect(report.result == 4)
        #expect(Set(letters.letters.map { String(decoding: $0.record, as: UTF8.self) }) == Set(ids[0..<6]))
        #expect(letters.letters.filter { $0.error.contains("is open") }.count == 2)
        #expect(server.requests.count == 8)
        #expect(statistics.breakerOpenings == 1 && statistics.rejectedByBreaker == 2)
        try await server.stop()
    }

    static func wait(for count: Int, of message: String, in logs: LogCapture) async {
        while true {
            let seen = logs.appended.value
            if logs.all.filter({ $0.message.contains(message) }).count >= count { return }
            await logs.appended.wait(beyond: seen)
        }
    }

    @Test func gzipBodies_decodeToTheRecords() async throws {
        let directory = TemporaryDirectory()
        let server = try await ScriptedHTTPServer { _ in .status(200) }
        let lines = Self.records(0..<300)
        let (delivered, _) = try await Self.post(
            lines,
            to: server.url,
            settings: HTTPService.Settings(),
            options: HTTPPostOptions(maxRecordsPerRequest: 100, gzipLevel: 6)
        )
        #expect(delivered == 300)
        var received: [String] = []
        for request in server.requests {
            #expect(request.header("content-encoding") == "gzip")
            let path = directory.file("body-\(request.index).gz")
            try writeFile(path, request.body)
            received += try await Pipeline.lines(from: [path]).map { $0.string }.collect().run().result
        }
        #expect(received.sorted() == lines.sorted())
        try await server.stop()
    }

    @Test func anEnrichmentStage_callsTheServicePerRecord_inOrder() async throws {
        let server = try await ScriptedHTTPServer { request in
            let id = request.uri.split(separator: "=").last.map(String.init) ?? "?"
            return id == "13" ? .status(404, body: "unknown") : .status(200, body: "geo-\(id)")
        }
        let letters = DeadLetters.memory()
        let report = try await HTTPService.with(HTTPService.Settings()) { service in
            try await Pipeline.from(0..<40)
                .mapAsync(name: "geo", concurrency: 4, onError: .deadLetter(letters)) { (id: Int) -> String in
                    let response = try await service.send(HTTPClientRequest(url: server.url + "?id=\(id)"))
                    return String(decoding: response.body, as: UTF8.self)
                }
                .collect()
                .run()
        }
        #expect(report.result == (0..<40).filter { $0 != 13 }.map { "geo-\($0)" })
        #expect(letters.letters.map(\.error) == ["HTTP 404 Not Found from \(server.url)?id=13: unknown"])
        #expect(server.requests.allSatisfy { $0.method == "GET" })
        #expect(report[stage: "geo"]?.latency?.count == 40)
        try await server.stop()
    }

    @Test func retryAfter_readsSecondsAndHTTPDates() {
        #expect(RetryAfter.parse("120") == .seconds(120))
        #expect(RetryAfter.parse(" 5 ") == .seconds(5))
        #expect(RetryAfter.parse("soon") == nil)
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777)
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 PST") == nil)
        #expect(RetryAfter.parse("Sun, 06 Nov 1994 08:49:37 GMT") == .zero)  // in the past: at once
    }
}
