public import Logging
public import PostgresNIO

/// The PostgreSQL database that coordinates a distributed run: a connection pool (postgres-nio's
/// `PostgresClient`) running for as long as ``with(url:logger:_:)``'s body.
public struct ClusterDatabase: Sendable {
    public let client: PostgresClient
    let logger: Logger

    /// Runs `body` with a client for the database at `url` — `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`,
    /// with `?sslmode=require` for TLS — and stops the client's connections when `body` returns or throws.
    public static func with<Result: Sendable>(
        url: String,
        logger: Logger = Logger(label: "sluice.cluster", factory: { _ in SwiftLogNoOpLogHandler() }),
        _ body: (ClusterDatabase) async throws -> Result
    ) async throws -> Result {
        let client = PostgresClient(configuration: try Self.configuration(url: url), backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(ClusterDatabase(client: client, logger: logger))
        }
    }

    /// The client configuration for a `postgres://` URL.
    static func configuration(url: String) throws(ClusterError) -> PostgresClient.Configuration {
        let invalid = ClusterError.invalidDatabaseURL(url)
        var rest = Substring(url)
        guard let scheme = rest.range(of: "://"),
            ["postgres", "postgresql"].contains(rest[..<scheme.lowerBound])
        else { throw invalid }
        rest = rest[scheme.upperBound...]
        var query: [String: String] = [:]
        if let mark = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: mark)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                query[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            }
            rest = rest[..<mark]
        }
        guard let at = rest.lastIndex(of: "@") else { throw invalid }
        let credentials = rest[..<at]
        let location = rest[rest.index(after: at)...]
        let user = credentials.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard let slash = location.firstIndex(of: "/"), !user[0].isEmpty else { throw invalid }
        let hostPort = location[..<slash]
        let database = String(location[location.index(after: slash)...])
        var host = String(hostPort)
        var port = 5432
        if let colon = hostPort.lastIndex(of: ":") {
            guard let parsed = Int(hostPort[hostPort.index(after: colon)...]) else { throw invalid }
            host = String(hostPort[..<colon])
            port = parsed
        }
        guard !host.isEmpty, !database.isEmpty else { throw invalid }
        let tls: PostgresClient.Configuration.TLS =
            query["sslmode"] == "require" ? .require(.makeClientConfiguration()) : .disable
        var configuration = PostgresClient.Configuration(
            host: host,
            port: port,
            username: Self.percentDecoded(user[0]),
            password: user.count > 1 ? Self.percentDecoded(user[1]) : nil,
            database: Self.percentDecoded(Substring(database)),
            tls: tls
        )
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.maximumConnections = 4
        return configuration
    }

    private static func percentDecoded(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var index = text.utf8.startIndex
        let utf8 = text.utf8
        while index < utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%"), let end = utf8.index(index, offsetBy: 3, limitedBy: utf8.endIndex),
                let value = UInt8(String(decoding: utf8[utf8.index(after: index)..<end], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
                index = end
            } else {
                bytes.append(byte)
                index = utf8.index(after: index)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// What goes wrong in a distributed run, said plainly.
public enum ClusterError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidDatabaseURL(String)
    /// The job exists with another pipeline, other arguments, another output directory or other inputs.
    case jobMismatch(job: String, differences: [String])
    case unknownJob(String)
    case unknownPipeline(String)
    /// The unit's lease moved on to a newer attempt (or the unit ended): this worker may no longer finish it.
    case leaseLost(job: String, position: Int)
    /// `merge` needs every unit done.
    case notFinished(job: String, pending: Int, running: Int, failed: Int)
    case cannotMerge(String)
    case schemaNewerThanThisVersion(found: Int, known: Int)

    public var description: String {
        switch self {
        case .invalidDatabaseURL(let url):
            "not a database URL: '\(url)' (expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE)"
        case .jobMismatch(let job, let differences):
            "job '\(job)' exists with other settings (\(differences.joined(separator: "; "))): submit it under another "
                + "name, or with the same settings"
        case .unknownJob(let job): "no job named '\(job)'"
        case .unknownPipeline(let name): "no pipeline named '\(name)'"
        case .leaseLost(let job, let position):
            "job '\(job)', unit \(position): the lease moved on to a newer attempt; this attempt's result is discarded"
        case .notFinished(let job, let pending, let running, let failed):
            "job '\(job)' is not finished: \(pending) pending, \(running) running, \(failed) failed "
                + "(see `sluice job status`); merge needs every unit done"
        case .cannotMerge(let reason): reason
        case .schemaNewerThanThisVersion(let found, let known):
            "the database's sluice schema is at version \(found); this sluice knows versions up to \(known)"
        }
    }
}
