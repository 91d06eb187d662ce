public import ArgumentParser
import AsyncHTTPClient
import Logging
public import Pipelines
public import Sluice
import SluiceHTTP

/// `sluice run http-post --url URL INPUTS…`: posts NDJSON lines to an HTTP endpoint, many per request, with
/// bounded concurrency, timeouts, retries (honouring `Retry-After`), a circuit breaker and the error policy for
/// what cannot be delivered.
public enum HTTPPost: ReadyPipeline {
    public struct Options: ParsableArguments, Sendable {
        @Option(help: "Where to post (http:// or https://).")
        public var url: String

        @Option(help: "Requests in flight at once.")
        public var concurrency = 8

        @Option(help: "The longest one attempt may take (e.g. 500ms, 5s).")
        public var timeout = DurationArgument(.seconds(5))

        @Option(help: "Attempts after the first for a 5xx, 429, timeout or connection error.")
        public var retries = 5

        @Option(
            name: .customLong("header"),
            help: ArgumentHelp("A header for every request, 'Name: value' (repeatable).", valueName: "header")
        )
        public var headers: [String] = []

        @Option(help: "The most body bytes in one request (records per request: --batch-size).")
        public var maxRequestBytes = 1 << 20

        @Option(help: "Compress request bodies with gzip at this level (1-12).")
        public var gzipRequests: Int?

        @Flag(inversion: .prefixedNo, help: "Open a circuit breaker while the endpoint keeps failing.")
        public var breaker = true

        public init() {}

        public mutating func validate() throws {
            guard self.url.hasPrefix("http://") || self.url.hasPrefix("https://") else {
                throw ValidationError("--url must start with http:// or https://")
            }
            guard self.concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
            guard self.retries >= 0 else { throw ValidationError("--retries must be at least 0") }
            guard self.maxRequestBytes >= 1 else { throw ValidationError("--max-request-bytes must be at least 1") }
            if let level = self.gzipRequests, !(1...12).contains(level) {
                throw ValidationError("--gzip-requests must be 1 to 12")
            }
            _ = try self.parsedHeaders()
        }

        func parsedHeaders() throws -> [(name: String, value: String)] {
            try self.headers.map { header in
                guard let colon = header.firstIndex(of: ":"), colon != header.startIndex else {
                    throw ValidationError("--header must be 'Name: value', not '\(header)'")
                }
                let value = header[header.index(after: colon)...].drop { $0 == " " }
                return (String(header[..<colon]), String(value))
            }
        }
    }

    public static let name = "http-post"
    public static let summary = "post NDJSON lines to --url, --batch-size lines per request, --concurrency at once"
    public static let stages = "read -> lines -> validate -> batch -> [compress] -> post -> outcome -> deliver"
    /// Each unit of a distributed run posts its own lines: there is nothing to merge.
    public static let resultMerge = ResultMerge.nothing

    public static func run(_ invocation: Invocation, options: Options) async throws -> RunReport<Void> {
        let runOptions = invocation.runOptions
        let settings = HTTPService.Settings(
            timeout: options.timeout.duration,
            retry: .exponential(
                maxAttempts: options.retries + 1,
                initialDelay: .milliseconds(100),
                maxDelay: .seconds(10)
            ),
            breaker: options.breaker ? CircuitBreaker.Settings() : nil,
            headers: try options.parsedHeaders(),
            maxConnections: options.concurrency,
            clock: runOptions.clock,
            logger: runOptions.logger
        )
        let postOptions = HTTPPostOptions(
            concurrency: options.concurrency,
            maxRecordsPerRequest: runOptions.batch.maxRecords,
            maxBytesPerRequest: options.maxRequestBytes,
            gzipLevel: options.gzipRequests
        )
        let policy = invocation.errorPolicy
        return try await HTTPService.with(settings) { service in
            var report: RunReport<Void>
            do {
                report = try await invocation.lines
                    .parallelMap(name: "validate", onError: policy) { (line: Line) throws -> Line in
                        do throws(JSONValidator.Invalid) {
                            try JSONValidator.validate(line.bytes)
                        } catch {
                            throw MalformedRecord(line, reason: error.description)
                        }
                        return line
                    }
                    .postNDJSON(to: options.url, via: service, options: postOptions, onError: policy)
                    .run(runOptions)
                    .withoutResult
            } catch {
                // The statistics of a failed run go to the log: the error is what the command reports.
                runOptions.logger.notice(
                    "http-post statistics",
                    metadata: service.statistics.counters.mapValues { Logger.MetadataValue.string("\($0)") }
                )
                throw error
            }
            report.counters = service.statistics.counters
            return report
        }
    }
}
