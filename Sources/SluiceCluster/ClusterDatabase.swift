public import Logging
import NIOSSL
import PostgresNIO
internal import Sluice

/// The PostgreSQL database that coordinates a distributed run, reached through a connection per lane (the
/// worker's loop, its lease renewals) that is opened on first use and opened again after any error — so a
/// database that restarts, or a connection that dies, costs one failed operation, which the caller retries.
///
/// Every operation has a deadline (``operationTimeout``): one that hangs on a half-dead connection is cancelled
/// and its connection dropped, rather than holding a worker forever.
public final class ClusterDatabase: Sendable {
    /// Who uses a connection: each lane has its own, used by one operation at a time.
    public enum Lane: Sendable {
        case main
        case renewal
    }

    let configuration: PostgresConnection.Configuration
    let logger: Logger
    /// The longest one operation (a query, or a transaction) may take.
    let operationTimeout: Duration
    private let main = Slot()
    private let renewal = Slot()

    init(configuration: PostgresConnection.Configuration, logger: Logger, operationTimeout: Duration) {
        self.configuration = configuration
        self.logger = logger
        self.operationTimeout = operationTimeout
    }

    /// Runs `body` with the database at `url` — `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`, with
    /// `?sslmode=require` for TLS — and closes its connections when `body` returns or throws.
    public static func with<Result: Sendable>(
        url: String,
        logger: Logger = Logger(label: "sluice.cluster", factory: { _ in SwiftLogNoOpLogHandler() }),
        operationTimeout: Duration = .seconds(10),
        _ body: (ClusterDatabase) async throws -> Result
    ) async throws -> Result {
        let database = ClusterDatabase(
            configuration: try Self.configuration(url: url),
            logger: logger,
            operationTimeout: operationTimeout
        )
        let result: Swift.Result<Result, any Error>
        do {
            result = .success(try await body(database))
        } catch {
            result = .failure(error)
        }
        await database.main.close()
        await database.renewal.close()
        return try result.get()
    }

    /// Runs `body` on the lane's connection, alone; opens it first if needed, and drops it after an error.
    func withConnection<Result: Sendable>(
        _ lane: Lane = .main,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let slot = lane == .main ? self.main : self.renewal
        await slot.lock.lock()
        defer { slot.lock.unlock() }
        let (configuration, logger, timeout) = (self.configuration, self.logger, self.operationTimeout)
        do {
            return try await Self.withDeadline(timeout) {
                let connection = try await slot.connection(configuration: configuration, logger: logger)
                return try await body(connection)
            }
        } catch let error as ClusterError where error.isAboutTheJob {
            throw error  // an answer from the database: the connection is fine
        } catch {
            await slot.close()
            throw error
        }
    }

    /// Listens on `channel`, on a connection of its own, until the calling task is cancelled: calls `listening(true)`
    /// each time LISTEN takes effect (after a reconnect too), `received` with each notification's payload, and
    /// `listening(false)` when the connection is lost — then connects again after a backoff (0.2 s, doubling up to
    /// 10 s) on `clock`.
    func listen(
        on channel: String,
        clock: any Clock<Duration>,
        listening: @escaping @Sendable (Bool) -> Void,
        received: @escaping @Sendable (String) -> Void
    ) async {
        let (configuration, logger, timeout) = (self.configuration, self.logger, self.operationTimeout)
        var delay = Duration.milliseconds(200)
        while !Task.isCancelled {
            var connection: PostgresConnection?
            do {
                let opened = try await Self.withDeadline(timeout) {
                    try await PostgresConnection.connect(
                        configuration: configuration,
                        id: Int.random(in: 0..<Int.max),
                        logger: logger
                    )
                }
                connection = opened
                try await opened.listen(on: channel) { notifications in
                    listening(true)
                    delay = .milliseconds(200)
                    for try await notification in notifications {
                        received(notification.payload)
                    }
                }
            } catch {
                if !Task.isCancelled {
                    logger.debug("cannot listen for unit changes", metadata: ["error": "\(Self.describe(error))"])
                }
            }
            listening(false)
            try? await connection?.close()
            guard (try? await clock.sleep(for: delay)) != nil else { return }
            delay = min(delay * 2, .seconds(10))
        }
    }

    /// What went wrong, said in full: postgres-nio's errors describe themselves only as "Generic description to
    /// prevent accidental leakage of sensitive data". The server's message and SQLSTATE, or why the connection
    /// failed; otherwise the error's reflection.
    public static func describe(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let server = error.serverInfo, let message = server[.message] {
            return "the database answered: \(message)" + (server[.sqlState].map { " (SQLSTATE \($0))" } ?? "")
        }
        if error.code == .connectionError, let underlying = error.underlying {
            return "cannot connect to the database: \(underlying)"
        }
        return String(reflecting: error)
    }

    /// The result of `operation`, or ``ClusterError/databaseTimeout(_:)`` once `timeout` passes. The operation runs
    /// in a task of its own, cancelled and left behind at the deadline: a connect or a read that ignores
    /// cancellation cannot hold the worker (a task group would wait for it).
    static func withDeadline<Result: Sendable>(
        _ timeout: Duration,
        _ operation: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        let outcome = Locked<CheckedContinuation<Result, any Error>?>(nil)
        let worker = Locked<Task<Void, Never>?>(nil)
        let timer = Locked<Task<Void, Never>?>(nil)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Result, any Error>) in
                outcome.withLock { $0 = continuation }
                let finish: @Sendable (Swift.Result<Result, any Error>) -> Void = { result in
                    guard
                        let continuation = outcome.withLock({ current in
                            defer { current = nil }
                            return current
                        })
                    else { return }
                    continuation.resume(with: result)
                    worker.withLock { $0 }?.cancel()
                    timer.withLock { $0 }?.cancel()
                }
                // The timer first: a finish — even the operation's, at once — finds it and cancels it.
                timer.withLock {
                    $0 = Task {
                        guard (try? await Task.sleep(for: timeout)) != nil else { return }
                        finish(.failure(ClusterError.databaseTimeout(timeout)))
                    }
                }
                worker.withLock {
                    $0 = Task {
                        do {
                            finish(.success(try await operation()))
                        } catch {
                            finish(.failure(error))
                        }
                    }
                }
            }
        } onCancel: {
            let continuation = outcome.withLock { current in
                defer { current = nil }
                return current
            }
            continuation?.resume(throwing: CancellationError())
            worker.withLock { $0 }?.cancel()
            timer.withLock { $0 }?.cancel()
        }
    }

    /// A connection of a lane, and the lock that gives it to one operation at a time.
    final class Slot: Sendable {
        let lock = AsyncLock()
        private let current = Locked<PostgresConnection?>(nil)

        func connection(
            configuration: PostgresConnection.Configuration,
            logger: Logger
        ) async throws -> PostgresConnection {
            if let connection = self.current.withLock({ $0 }), !connection.isClosed { return connection }
            let connection = try await PostgresConnection.connect(
                configuration: configuration,
                id: Int.random(in: 0..<Int.max),
                logger: logger
            )
            self.current.withLock { $0 = connection }
            return connection
        }

        func close() async {
            let connection = self.current.withLock { current -> PostgresConnection? in
                defer { current = nil }
                return current
            }
            try? await connection?.close()
        }
    }

    /// The client configuration for a `postgres://` URL.
    static func configuration(url: String) throws(ClusterError) -> PostgresConnection.Configuration {
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
        var tls = PostgresConnection.Configuration.TLS.disable
        if query["sslmode"] == "require" {
            do {
                tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            } catch {
                throw ClusterError.invalidDatabaseURL(url)
            }
        }
        var configuration = PostgresConnection.Configuration(
            host: host,
            port: port,
            username: Self.percentDecoded(user[0]),
            password: user.count > 1 ? Self.percentDecoded(user[1]) : nil,
            database: Self.percentDecoded(Substring(database)),
            tls: tls
        )
        configuration.options.connectTimeout = .seconds(5)
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
    /// A done unit's result file is empty or does not start as gzip (damaged on its storage after the worker wrote it).
    case corruptResult(String)
    case schemaNewerThanThisVersion(found: Int, known: Int)
    /// An operation on the database took longer than its deadline; its connection was dropped.
    case databaseTimeout(Duration)

    /// Whether the database answered (the job's state says no), as opposed to not answering in time.
    var isAboutTheJob: Bool {
        if case .databaseTimeout = self { return false }
        return true
    }

    var isLeaseLost: Bool {
        if case .leaseLost = self { return true }
        return false
    }

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
        case .corruptResult(let path): "\(path): a unit's result is empty or not gzip (damaged after it was written)"
        case .databaseTimeout(let timeout):
            "the database did not answer within \(timeout)"
        case .schemaNewerThanThisVersion(let found, let known):
            "the database's sluice schema is at version \(found); this sluice knows versions up to \(known)"
        }
    }
}
