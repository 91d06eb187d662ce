import AsyncHTTPClient
import NIOCore
public import Sluice

/// How ``Sluice/Pipeline/postNDJSON(to:via:options:onError:encode:)`` cuts records into requests.
public struct HTTPPostOptions: Sendable, Hashable {
    /// Requests in flight at once. Default 8.
    public var concurrency: Int
    /// The most records one request carries. Default 500.
    public var maxRecordsPerRequest: Int
    /// The most body bytes one request carries (before compression; a single larger record goes alone). Default
    /// 1 MiB.
    public var maxBytesPerRequest: Int
    /// Compress request bodies with gzip at this level (1–12, on the run's compute pool) and send
    /// `Content-Encoding: gzip`; `nil` (the default): plain bodies.
    public var gzipLevel: Int?
    /// The bodies' content type. Default `application/x-ndjson`.
    public var contentType: String

    public init(
        concurrency: Int = 8,
        maxRecordsPerRequest: Int = 500,
        maxBytesPerRequest: Int = 1 << 20,
        gzipLevel: Int? = nil,
        contentType: String = "application/x-ndjson"
    ) {
        self.concurrency = concurrency
        self.maxRecordsPerRequest = maxRecordsPerRequest
        self.maxBytesPerRequest = maxBytesPerRequest
        self.gzipLevel = gzipLevel
        self.contentType = contentType
    }
}

extension Pipeline {
    /// Ends the pipeline by posting the records to `url` as NDJSON — one record per line, many per request — with
    /// up to ``HTTPPostOptions/concurrency`` requests in flight, under `service`'s retries, timeouts and breaker.
    /// The run's result is the number of records delivered (answered with a 2xx).
    ///
    /// ```swift
    /// try await HTTPService.with(HTTPService.Settings(timeout: .seconds(5))) { service in
    ///     try await Pipeline.lines(from: ["events.ndjson"])
    ///         .postNDJSON(to: "http://collector:8080/ingest", via: service, onError: .deadLetter(.file("failed.ndjson")))
    ///         .run()
    /// }
    /// ```
    ///
    /// A request that fails for good — a 4xx, or a 5xx, timeout or connection error once the retries are used up,
    /// or refused by the open breaker — hands each of its records to `policy` with that error: `.stop` fails the
    /// run, `.skip` counts them, `.deadLetter` keeps each record with the status and the start of the response
    /// body (or the error). None is lost silently: the records delivered, skipped and dead-lettered add up to the
    /// input. A record sent again after an attempt that timed out may reach the service twice; the service's
    /// ``HTTPService/Statistics/possibleDuplicates`` counts them.
    ///
    /// Stages: `batch` (records into request bodies, a request per input batch at most), `compress` (with
    /// ``HTTPPostOptions/gzipLevel``), `post` (the requests, a `mapAsync`), `outcome` and `deliver` (each failed
    /// record through `policy`), and the `delivered` count.
    ///
    /// - Parameters:
    ///   - url: Where to post.
    ///   - service: The service the requests go through (its client, rules and statistics).
    ///   - options: Requests in flight, records and bytes per request, compression.
    ///   - policy: What happens to the records of a request that failed for good.
    ///   - encode: Appends one record's JSON text to a body, without the newline (the sink adds it).
    public func postNDJSON(
        to url: String,
        via service: HTTPService,
        options: HTTPPostOptions = HTTPPostOptions(),
        onError policy: ErrorPolicy = .stop,
        encode: @escaping @Sendable (Output, inout [UInt8]) -> Void
    ) -> RunnablePipeline<Int> {
        var bodies = self.stage(
            RequestBodies(
                maxRecords: max(options.maxRecordsPerRequest, 1),
                maxBytes: max(options.maxBytesPerRequest, 1),
                encode: encode
            ),
            name: "batch"
        )
        if let level = options.gzipLevel {
            bodies = bodies.parallelMap(name: "compress") { try $0.gzipped(level: level) }
        }
        let contentType = options.contentType
        return
            bodies
            .mapAsync(name: "post", concurrency: options.concurrency, ordered: false) { body in
                var request = HTTPClientRequest(url: url)
                request.method = .POST
                request.headers.add(name: "Content-Type", value: contentType)
                if body.gzipped { request.headers.add(name: "Content-Encoding", value: "gzip") }
                request.body = .bytes(body.bytes)
                do {
                    _ = try await service.send(request, records: body.records.count)
                    return Delivery(records: body.records, error: nil, encode: encode)
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    return Delivery(records: body.records, error: error, encode: encode)
                }
            }
            .flatMap(name: "outcome") { $0.outcomes }
            .map(name: "deliver", onError: policy) { (outcome: DeliveryOutcome<Output>) throws -> Int in
                switch outcome.state {
                case .delivered(let count): return count
                case .failed(_, let error): throw error
                }
            }
            .reduce(into: 0, name: "delivered") { $0 += $1 }
    }
}

extension Pipeline where Output == Line {
    /// Posts lines — each one JSON value — as NDJSON (see ``postNDJSON(to:via:options:onError:encode:)``).
    public func postNDJSON(
        to url: String,
        via service: HTTPService,
        options: HTTPPostOptions = HTTPPostOptions(),
        onError policy: ErrorPolicy = .stop
    ) -> RunnablePipeline<Int> {
        self.postNDJSON(to: url, via: service, options: options, onError: policy) { line, body in
            line.bytes.withUnsafeBufferPointer { body.append(contentsOf: $0) }
        }
    }
}

/// Records and the request body that carries them.
struct RequestBody<Record: Sendable>: Sendable {
    var records: [Record]
    var bytes: [UInt8]
    var gzipped = false

    func gzipped(level: Int) throws -> RequestBody {
        let compressor = try LibdeflateCompressor(level: Int32(level))
        return RequestBody(records: self.records, bytes: try compressor.member(of: self.bytes), gzipped: true)
    }
}

/// Cuts each input batch into request bodies of at most `maxRecords` records and `maxBytes` bytes: a request never
/// waits for the next batch, so on a live input records go out as they come.
struct RequestBodies<Record: Sendable>: Stage {
    let maxRecords: Int
    let maxBytes: Int
    let encode: @Sendable (Record, inout [UInt8]) -> Void

    var kind: String { "batch" }

    func run(input: StageInput<Record>, output: StageOutput<RequestBody<Record>>) async throws {
        for try await batch in input {
            var records: [Record] = []
            var bytes: [UInt8] = []
            for record in batch {
                let start = bytes.count
                self.encode(record, &bytes)
                bytes.append(0x0A)
                if bytes.count > self.maxBytes && !records.isEmpty {
                    // This record would take the body over the limit: what came before goes alone.
                    let tail = Array(bytes[start...])
                    bytes.removeSubrange(start...)
                    try await output.emit(RequestBody(records: records, bytes: bytes))
                    (records, bytes) = ([], tail)
                }
                records.append(record)
                if records.count >= self.maxRecords || bytes.count >= self.maxBytes {
                    try await output.emit(RequestBody(records: records, bytes: bytes))
                    (records, bytes) = ([], [])
                }
            }
            if !records.isEmpty {
                try await output.emit(RequestBody(records: records, bytes: bytes))
            }
        }
    }
}

/// How one request went: its records, and its error if it failed for good.
struct Delivery<Record: Sendable>: Sendable {
    let records: [Record]
    let error: (any Error)?
    let encode: @Sendable (Record, inout [UInt8]) -> Void

    /// One outcome for a delivered request; one per record for a failed one, so the error policy sees each.
    var outcomes: [DeliveryOutcome<Record>] {
        guard let error = self.error else { return [DeliveryOutcome(state: .delivered(self.records.count))] }
        return self.records.map { DeliveryOutcome(state: .failed($0, error), encode: self.encode) }
    }
}

/// A delivered request's record count, or one record of a failed request with the error: what the `deliver` stage
/// hands to the error policy (a dead letter keeps the record's own JSON text and origin).
struct DeliveryOutcome<Record: Sendable>: Sendable, DeadLetterRepresentable, LocatedRecord {
    enum State: Sendable {
        case delivered(Int)
        case failed(Record, any Error)
    }

    let state: State
    var encode: (@Sendable (Record, inout [UInt8]) -> Void)?

    var deadLetterBytes: [UInt8] {
        guard case .failed(let record, _) = self.state, let encode = self.encode else { return [] }
        var bytes: [UInt8] = []
        encode(record, &bytes)
        return bytes
    }

    var sourcePath: String? {
        guard case .failed(let record, _) = self.state else { return nil }
        return (record as? any LocatedRecord)?.sourcePath
    }

    var lineNumber: Int? {
        guard case .failed(let record, _) = self.state else { return nil }
        return (record as? any LocatedRecord)?.lineNumber
    }
}

extension Pipeline where Output == String {
    /// Posts strings — each one JSON value — as NDJSON (see ``postNDJSON(to:via:options:onError:encode:)``).
    public func postNDJSON(
        to url: String,
        via service: HTTPService,
        options: HTTPPostOptions = HTTPPostOptions(),
        onError policy: ErrorPolicy = .stop
    ) -> RunnablePipeline<Int> {
        self.postNDJSON(to: url, via: service, options: options, onError: policy) { text, body in
            body.append(contentsOf: text.utf8)
        }
    }
}
