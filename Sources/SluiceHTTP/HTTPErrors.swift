import NIOHTTP1

/// A service answered with a status other than 2xx.
///
/// 429, 503, 408 and other 5xx are retried (``isRetryable``); other 4xx are not: the request itself is wrong, and
/// the error goes to the stage's error policy with the status and the start of the body, which a dead letter keeps.
public struct HTTPStatusError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The request's URL.
    public var url: String
    /// The status code, e.g. 400.
    public var status: Int
    /// The status's reason phrase, e.g. "Bad Request".
    public var reason: String
    /// The start of the response body (at most 200 bytes, as text).
    public var bodyExcerpt: String
    /// How long the service asked to wait before trying again (`Retry-After`), if it did.
    public var retryAfter: Duration?

    public init(url: String, status: Int, reason: String, bodyExcerpt: String = "", retryAfter: Duration? = nil) {
        self.url = url
        self.status = status
        self.reason = reason
        self.bodyExcerpt = bodyExcerpt
        self.retryAfter = retryAfter
    }

    init(url: String, response: HTTPService.Response) {
        let excerpt = String(decoding: response.body.prefix(200), as: UTF8.self)
        self.init(
            url: url,
            status: Int(response.status.code),
            reason: response.status.reasonPhrase,
            bodyExcerpt: excerpt,
            retryAfter: response.headers.first(name: "retry-after").flatMap(RetryAfter.parse)
        )
    }

    /// A body larger than the service allows (``HTTPService/Settings/maxResponseBytes``).
    static func bodyTooLarge(url: String, status: HTTPResponseStatus, limit: Int) -> HTTPStatusError {
        HTTPStatusError(
            url: url,
            status: Int(status.code),
            reason: status.reasonPhrase,
            bodyExcerpt: "(response body over \(limit) bytes)"
        )
    }

    /// Whether the same request may succeed later: 408, 429 and 5xx.
    public var isRetryable: Bool {
        self.status == 408 || self.status == 429 || self.status >= 500
    }

    public var description: String {
        let body = self.bodyExcerpt.isEmpty ? "" : ": \(self.bodyExcerpt)"
        return "HTTP \(self.status) \(self.reason) from \(self.url)\(body)"
    }
}

/// An attempt took longer than the service's timeout (``HTTPService/Settings/timeout``) and was cancelled.
public struct HTTPTimeoutError: Error, Sendable, Hashable, CustomStringConvertible {
    public var url: String
    public var timeout: Duration

    public var description: String {
        "no response from \(self.url) within \(self.timeout)"
    }
}

/// An attempt could not connect, or lost its connection.
public struct HTTPConnectionError: Error, Sendable, CustomStringConvertible {
    public var url: String
    /// The client's error.
    public var underlying: any Error

    /// Whether the connection was refused or never made, so the service cannot have seen the request.
    public var refused: Bool {
        let text = "\(self.underlying)"
        return text.contains("connectTimeout") || text.contains("onnection refused") || text.contains("ECONNREFUSED")
    }

    public var description: String {
        "cannot reach \(self.url): \(self.underlying)"
    }
}

/// `Retry-After`: delay-seconds, or an HTTP date (RFC 9110, section 10.2.3).
enum RetryAfter {
    static func parse(_ value: String) -> Duration? {
        let text = value.trimmingASCIISpaces
        if let seconds = Int(text), seconds >= 0 { return .seconds(seconds) }
        guard let date = HTTPDate.parse(text) else { return nil }
        return .seconds(max(date - HTTPDate.now, 0))
    }
}

extension String {
    fileprivate var trimmingASCIISpaces: String {
        String(self.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
