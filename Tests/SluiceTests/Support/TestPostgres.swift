import Synchronization

@testable import Sluice

#if canImport(Glibc)
import Glibc
#endif

/// A throwaway PostgreSQL server on loopback for the cluster tests: `initdb` in a temporary directory (as the
/// `postgres` user when the tests run as root), a free port, trust authentication, no fsync. It stops when the
/// test process exits, or on ``stop()``.
///
/// The server's binaries come from Debian's `postgresql` package (`.ci/run` installs it). Without them the cluster
/// tests are skipped — unless `SLUICE_REQUIRE_POSTGRES=1` (set by `.ci/run`), which makes that a failure.
final class TestPostgres: Sendable {
    let directory: String
    let port: Int
    private let binaries: String
    private let prefix: String

    var url: String { "postgres://postgres@127.0.0.1:\(self.port)/postgres" }

    /// The directory of `initdb` and `pg_ctl`, if PostgreSQL is installed.
    static let binaries: String? = {
        for version in (12...20).reversed() {
            let directory = "/usr/lib/postgresql/\(version)/bin"
            if access(directory + "/initdb", X_OK) == 0 && access(directory + "/pg_ctl", X_OK) == 0 {
                return directory
            }
        }
        return nil
    }()

    /// Whether the cluster tests can run here.
    static let isAvailable: Bool = {
        if TestPostgres.binaries != nil && (geteuid() != 0 || getpwnam("postgres") != nil) { return true }
        if getenv("SLUICE_REQUIRE_POSTGRES").map({ String(cString: $0) }) == "1" {
            fatalError("SLUICE_REQUIRE_POSTGRES=1 but PostgreSQL's initdb and pg_ctl are not installed")
        }
        return false
    }()

    /// One server for the tests that do not restart theirs, started once.
    static let shared = SharedServer()

    final class SharedServer: Sendable {
        private let server = Locked<Task<TestPostgres, any Error>?>(nil)

        func get() async throws -> TestPostgres {
            let task = self.server.withLock { server in
                if let server { return server }
                let task = Task { try await TestPostgres.start() }
                server = task
                return task
            }
            return try await task.value
        }
    }

    private init(directory: String, port: Int, binaries: String, prefix: String) {
        self.directory = directory
        self.port = port
        self.binaries = binaries
        self.prefix = prefix
    }

    static func start() async throws -> TestPostgres {
        guard let binaries = Self.binaries else { throw Shell.Failed(command: "find PostgreSQL", status: -1) }
        let asRoot = geteuid() == 0
        let prefix = asRoot ? "runuser -u postgres -- " : ""
        var template = Array("/tmp/sluice-pg-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw Shell.Failed(command: "mkdtemp", status: errno) }
        let directory = String(cString: made)
        if asRoot {
            try await Shell.check("chown postgres '\(directory)'")
        }
        let port = try Self.freePort()
        try await Shell.check(
            "\(prefix)'\(binaries)/initdb' -D '\(directory)/data' -A trust -U postgres -E UTF8 --no-sync "
                + "> '\(directory)/initdb.log' 2>&1"
        )
        let server = TestPostgres(directory: directory, port: port, binaries: binaries, prefix: prefix)
        try await server.startServer()
        Self.stopAtExit(server)
        return server
    }

    private func startServer() async throws {
        try await Shell.check(
            "\(self.prefix)'\(self.binaries)/pg_ctl' -D '\(self.directory)/data' -l '\(self.directory)/server.log' -w "
                + "-o \"-p \(self.port) -k '\(self.directory)' -c listen_addresses=127.0.0.1 -c fsync=off "
                + "-c max_connections=200\" start > /dev/null"
        )
    }

    /// Stops the server (fast shutdown: connections are cut), then starts it again on the same port.
    func restart() async throws {
        try await Shell.check(
            "\(self.prefix)'\(self.binaries)/pg_ctl' -D '\(self.directory)/data' -m fast -w stop > /dev/null"
        )
        try await self.startServer()
    }

    /// A new empty database on this server, and its URL.
    func makeDatabase(_ name: String) async throws -> String {
        let psql = self.binaries + "/psql"
        try await Shell.check(
            "'\(psql)' -h 127.0.0.1 -p \(self.port) -U postgres -q -c 'DROP DATABASE IF EXISTS \(name)' "
                + "-c 'CREATE DATABASE \(name)' postgres > /dev/null"
        )
        return "postgres://postgres@127.0.0.1:\(self.port)/\(name)"
    }

    /// Runs SQL through psql, returning its unaligned output.
    func sql(_ query: String, database: String) async throws -> String {
        let output = self.directory + "/psql-\(UInt32.random(in: 0...UInt32.max)).out"
        try await Shell.check(
            "'\(self.binaries)/psql' -h 127.0.0.1 -p \(self.port) -U postgres -At -c \"\(query)\" \(database) > '\(output)'"
        )
        defer { unlink(output) }
        return String(decoding: try readFile(output), as: UTF8.self)
    }

    private static func freePort() throws -> Int {
        let port = try RefusingPort()
        return port.port  // released when `port` goes: the server takes it at once
    }

    /// Stop commands run when the test process exits.
    private static let stopCommands = Locked<[String]>([])

    private static func stopAtExit(_ server: TestPostgres) {
        let command =
            "\(server.prefix)'\(server.binaries)/pg_ctl' -D '\(server.directory)/data' -m immediate stop "
            + "> /dev/null 2>&1; rm -rf '\(server.directory)'"
        let first = Self.stopCommands.withLock { commands in
            commands.append(command)
            return commands.count == 1
        }
        if first {
            atexit {
                for command in TestPostgres.stopCommands.withLock({ $0 }) {
                    _ = system(command)
                }
            }
        }
    }
}
