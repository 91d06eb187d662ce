public import AsyncHTTPClient
public import Logging
import NIOCore
public import NIOHTTP1
public import Sluice

/// A service called over HTTP with a run's resilience rules: a timeout on every attempt, retries with jittered
/// backoff (honouring `Retry-After` on 429 and 503), and a ``CircuitBreaker`` that makes calls fail fast while the
/// service is down. Use it in a `mapAsync` stage to enrich records, or through ``Sluice/Pipeline/postNDJSON(to:via:options:onError:encode:)``
/// to deliver them.
///
/// ```swift
/// try await HTTPService.with(HTTPService.Settings()) { service in
///     try await lines
///         .mapAsync(concurrency: 16, onError: .deadLetter(.file("failed.ndjson"))) { line in
///             let response = try await service.send(HTTPClientRequest(url: "http://geo/lookup?ip=\(ip(line))"))
///             return merge(line, response.body)
///         }
///         .write(to: "enriched.ndjson")
///         .run()
/// }
/// ```
///
/// How a response or an error is handled:
/// - 2xx: the call succeeded.
/// - 429 and 503: retried after the `Retry-After` the service asked for (at most ``Settings/maxRetryAfter``), or
///   after the backoff when it gave none.
/// - 408 and other 5xx, attempts that time out, and connection errors: retried with backoff.
/// - Other 4xx: the request itself is wrong; not retried, thrown at once as ``HTTPStatusError`` with the status and
///   the start of the body, for the stage's error policy (a dead letter keeps them).
///
/// Once the retries are used up the last error is thrown. Each call, after its retries, counts towards the breaker
/// (a 4xx does not: the service answered); while the breaker is open calls throw `CircuitOpen` without a request.
public final class HTTPService: Sendable {
    /// How calls are made.
    public struct Settings: Sendable {
        /// The longest one attempt may take — connecting, sending, and reading the response — on ``clock``.
        public var timeout: Duration
        /// How often to try, and how long to wait in between; `maxAttempts` counts the first attempt.
        public var retry: RetryPolicy
        /// The longest wait a `Retry-After` header may ask for; a longer one is cut to this.
        public var maxRetryAfter: Duration
        /// When the breaker opens and how it tries again; `nil`: no breaker.
        public var breaker: CircuitBreaker.Settings?
        /// Headers sent with every request (after the request's own).
        public var headers: [(name: String, value: String)]
        /// The most bytes of a response body kept (a larger body fails the call).
        public var maxResponseBytes: Int
        /// How many connections to the service at most (HTTP/1.1; the client's pool). Default 8.
        public var maxConnections: Int
        /// The clock of timeouts, backoff and the breaker: a run's clock (``RunOptions/clock``) in tests.
        public var clock: any Clock<Duration>
        /// Where retries and breaker changes are logged.
        public var logger: Logger

        public init(
            timeout: Duration = .seconds(5),
            retry: RetryPolicy = .exponential(maxAttempts: 6, initialDelay: .milliseconds(100), maxDelay: .seconds(10)),
            maxRetryAfter: Duration = .seconds(60),
            breaker: CircuitBreaker.Settings? = CircuitBreaker.Settings(),
            headers: [(name: String, value: String)] = [],
            maxResponseBytes: Int = 1 << 20,
            maxConnections: Int = 8,
            clock: any Clock<Duration> = ContinuousClock(),
            logger: Logger = Logger(label: "sluice.http", factory: { _ in SwiftLogNoOpLogHandler() })
        ) {
            self.timeout = timeout
            self.retry = retry
            self.maxRetryAfter = maxRetryAfter
            self.breaker = breaker
            self.headers = headers
            self.maxResponseBytes = maxResponseBytes
            self.maxConnections = maxConnections
            self.clock = clock
            self.logger = logger
        }
    }

    /// A response: its status, headers and body.
    public struct Response: Sendable {
        public var status: HTTPResponseStatus
        public var headers: HTTPHeaders
        public var body: [UInt8]
    }

    public let settings: Settings
    /// The client; shut down by ``with(_:client:_:)`` when it made it.
    public let client: HTTPClient
    /// The breaker around the calls, if ``Settings/breaker`` is set.
    public let breaker: CircuitBreaker?
    private let counts = Counts()
    private let attemptLatency = LatencyRecorder()

    /// A service on `client`, which the caller shuts down; prefer ``with(_:client:_:)``.
    public init(_ settings: Settings, client: HTTPClient) {
        self.settings = settings
        self.client = client
        self.breaker = settings.breaker.map {
            CircuitBreaker(name: "http", settings: $0, clock: settings.clock, logger: settings.logger)
        }
    }

    /// Runs `body` with a service on a client of its own — or on `client`, which stays the caller's — and shuts
    /// the client down when `body` returns or throws, once every request it made has ended.
    public static func with<Result: Sendable>(
        _ settings: Settings,
        client: HTTPClient? = nil,
        _ body: (HTTPService) async throws -> Result
    ) async throws -> Result {
        let owned = client == nil
        let client =
            client
            ?? HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: Self.configuration(settings))
        let service = HTTPService(settings, client: client)
        let result: Swift.Result<Result, any Error>
        do {
            result = .success(try await body(service))
        } catch {
            result = .failure(error)
        }
        if owned { try await client.shutdown() }
        return try result.get()
    }

    /// The client configuration the service's own client gets: connection errors surface at once (the service
    /// retries them on its clock), bodies are not decompressed, redirects are not followed.
    public static func configuration(_ settings: Settings) -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = max(settings.maxConnections, 1)
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout = HTTPClient.Configuration.Timeout(
            connect: .nanoseconds(Self.nanoseconds(settings.timeout))
        )
        configuration.decompression = .disabled
        configuration.redirectConfiguration = .disallow
        return configuration
    }

    /// What the service did so far.
    public var statistics: Statistics {
        var statistics = self.counts.snapshot
        statistics.breakerOpenings = self.breaker?.openings ?? 0
        statistics.rejectedByBreaker = self.breaker?.rejectedCalls ?? 0
        statistics.attemptLatency = self.attemptLatency.summary
        return statistics
    }

    /// Sends `request` (with the service's headers), retrying as the service's rules say.
    ///
    /// - Parameter records: How many records the request carries: counted as possibly delivered twice when an
    ///   attempt that may have reached the service (it timed out, or the connection broke) is retried.
    /// - Returns: The 2xx response.
    /// - Throws: ``HTTPStatusError`` for a 4xx (at once) or the last 5xx, ``HTTPTimeoutError``, the client's
    ///   connection error, `CircuitOpen` while the breaker is open, or `CancellationError`.
    public func send(_ request: HTTPClientRequest, records: Int = 1) async throws -> Response {
        var request = request
        for (name, value) in self.settings.headers {
            request.headers.add(name: name, value: value)
        }
        self.counts.add(\.calls)
        guard let breaker = self.breaker else { return try await self.sendRetrying(request, records: records) }
        return try await breaker.run(countingAsFailure: Self.isServiceFailure) {
            try await self.sendRetrying(request, records: records)
        }
    }

    /// Whether `error` says the service is unwell (not: the request was wrong).
    static func isServiceFailure(_ error: any Error) -> Bool {
        if let error = error as? HTTPStatusError { return error.isRetryable }
        return true
    }

    private func sendRetrying(_ request: HTTPClientRequest, records: Int) async throws -> Response {
        let retry = self.settings.retry
        var attempt = 1
        while true {
            let delay: Duration
            do {
                return try await self.attempt(request)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                guard Self.isRetryable(error), attempt < retry.maxAttempts else { throw error }
                if Self.mayHaveLanded(error) { self.counts.add(\.possibleDuplicates, records) }
                delay = self.delay(after: attempt, error: error)
                self.counts.add(\.retries)
                self.settings.logger.info(
                    "retrying a request",
                    metadata: [
                        "url": "\(request.url)", "attempt": "\(attempt + 1)", "delay": "\(delay)", "error": "\(error)",
                    ]
                )
            }
            try await self.settings.clock.sleep(for: delay)
            attempt += 1
        }
    }

    /// The wait before the next attempt: what a 429 or 503 asked for, or the backoff.
    private func delay(after attempt: Int, error: any Error) -> Duration {
        if let error = error as? HTTPStatusError, let asked = error.retryAfter {
            return min(asked, self.settings.maxRetryAfter)
        }
        return self.settings.retry.delay(after: attempt, random: Double.random(in: 0..<1))
    }

    /// One attempt, within the timeout on the service's clock (the request is cancelled when it passes).
    private func attempt(_ request: HTTPClientRequest) async throws -> Response {
        self.counts.add(\.attempts)
        let start = ContinuousClock.now
        defer {
            let took = ContinuousClock.now - start
            self.attemptLatency.record(nanoseconds: UInt64(max(Self.nanoseconds(took), 0)))
        }
        let (client, clock, timeout, limit) = (
            self.client, self.settings.clock, self.settings.timeout, self.settings.maxResponseBytes
        )
        let response: Response
        do {
            response = try await withThrowingTaskGroup(of: Response.self) { group in
                group.addTask {
                    // The client's own deadline only backs the timeout on the service's clock up.
                    let response = try await client.execute(request, deadline: .now() + .hours(1))
                    var body: [UInt8] = []
                    for try await part in response.body {
                        guard body.count + part.readableBytes <= limit else {
                            throw HTTPStatusError.bodyTooLarge(url: request.url, status: response.status, limit: limit)
                        }
                        body.append(contentsOf: part.readableBytesView)
                    }
                    return Response(status: response.status, headers: response.headers, body: body)
                }
                group.addTask {
                    try await clock.sleep(for: timeout)
                    throw HTTPTimeoutError(url: request.url, timeout: timeout)
                }
                defer { group.cancelAll() }
                guard let first = try await group.next() else { throw CancellationError() }
                return first
            }
        } catch let error as HTTPTimeoutError {
            self.counts.add(\.timeouts)
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch let error as HTTPStatusError {
            throw error
        } catch {
            self.counts.add(\.connectionErrors)
            throw HTTPConnectionError(url: request.url, underlying: error)
        }
        self.counts.record(status: response.status.code)
        switch response.status.code {
        case 200..<300:
            return response
        default:
            throw HTTPStatusError(url: request.url, response: response)
        }
    }

    static func isRetryable(_ error: any Error) -> Bool {
        switch error {
        case let error as HTTPStatusError: error.isRetryable
        case is HTTPTimeoutError, is HTTPConnectionError: true
        default: false
        }
    }

    /// Whether the service may have received the request and acted on it, though the attempt failed.
    static func mayHaveLanded(_ error: any Error) -> Bool {
        switch error {
        case is HTTPTimeoutError: true
        case let error as HTTPConnectionError: !error.refused
        default: false
        }
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }

    /// What an ``HTTPService`` did: calls and attempts, statuses, retries, timeouts, the breaker.
    public struct Statistics: Sendable, Hashable {
        /// Calls made with ``send(_:records:)`` (each may take several attempts).
        public var calls = 0
        /// Requests sent, retries included.
        public var attempts = 0
        public var retries = 0
        /// Attempts that passed the timeout.
        public var timeouts = 0
        /// Attempts that failed to connect, or lost the connection.
        public var connectionErrors = 0
        /// Responses by status class: `2xx`, `4xx`, `5xx` (and `1xx`, `3xx`).
        public var responses: [String: Int] = [:]
        /// Records sent again after an attempt that may have reached the service: duplicates there are possible.
        public var possibleDuplicates = 0
        /// How many times the breaker opened, and how many calls it refused.
        public var breakerOpenings = 0
        public var rejectedByBreaker = 0
        /// How long each attempt took (real time).
        public var attemptLatency: LatencySummary?

        /// The counts by name, for ``RunReport/counters``.
        public var counters: [String: Int] {
            var counters = [
                "http_calls": self.calls, "http_requests": self.attempts, "http_retries": self.retries,
                "http_timeouts": self.timeouts, "http_connection_errors": self.connectionErrors,
                "http_possible_duplicates": self.possibleDuplicates, "breaker_openings": self.breakerOpenings,
                "breaker_rejected_calls": self.rejectedByBreaker,
            ]
            for (statusClass, count) in self.responses {
                counters["http_responses_\(statusClass)"] = count
            }
            return counters
        }
    }

    /// The service's counters, updated from many calls at once.
    private final class Counts: Sendable {
        private let state = Locked(Statistics())

        func add(_ field: WritableKeyPath<Statistics, Int>, _ count: Int = 1) {
            self.state.withLock { $0[keyPath: field] += count }
        }

        func record(status: UInt) {
            self.state.withLock { $0.responses["\(status / 100)xx", default: 0] += 1 }
        }

        var snapshot: Statistics { self.state.withLock { $0 } }
    }
}
