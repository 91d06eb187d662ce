import Synchronization

@testable import Sluice

#if canImport(Glibc)
import Glibc
#endif

/// A throwaway PostgreSQL server on loopback for the cluster tests: `initdb` in a temporary directory (as the
/// `postgres` user when the tests run as root), a free port, trust authentication, no fsync. The server is a child
/// of the test process with a parent-death signal, so it never outlives the tests, however they end; data
/// directories left by earlier runs are removed.
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

    /// The running server process, and how many times it was started (each start logs to a file of its own).
    private let process = Locked<(server: SpawnedProcess?, starts: Int)>((nil, 0))

    private init(directory: String, port: Int, binaries: String, prefix: String) {
        self.directory = directory
        self.port = port
        self.binaries = binaries
        self.prefix = prefix
    }

    static func start() async throws -> TestPostgres {
        guard let binaries = Self.binaries else { throw Shell.Failed(command: "find PostgreSQL", status: -1) }
        _ = Self.leftoversRemoved
        let asRoot = geteuid() == 0
        var template = Array("/tmp/sluice-pg-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw Shell.Failed(command: "mkdtemp", status: errno) }
        let directory = String(cString: made)
        try writeFile(directory + "/owner.pid", Array(String(getpid()).utf8))
        if asRoot {
            try await Shell.check("chown postgres '\(directory)'")
        }
        let port = try Self.freePort()
        // Runs as postgres (when root), and dies with the test process whatever ends it (a parent-death signal):
        // no server outlives the tests.
        let prefix =
            asRoot
            ? "setpriv --reuid=postgres --regid=postgres --init-groups --pdeathsig KILL" : "setpriv --pdeathsig KILL"
        try await Shell.check(
            "cd '\(directory)' && \(asRoot ? "runuser -u postgres -- " : "")'\(binaries)/initdb' "
                + "-D '\(directory)/data' -A trust -U postgres -E UTF8 --no-sync > '\(directory)/initdb.log' 2>&1"
        )
        let server = TestPostgres(directory: directory, port: port, binaries: binaries, prefix: prefix)
        try await server.startServer()
        return server
    }

    /// Starts the postmaster as a child of the test process, and returns once it accepts connections.
    private func startServer() async throws {
        let starts = self.process.withLock { process in
            process.starts += 1
            return process.starts
        }
        let log = "\(self.directory)/server-\(starts).log"
        // Spawned from a thread of BlockingThreads, which lives as long as the process: the parent-death signal
        // follows the spawning *thread*, and a cooperative-pool thread may end when idle.
        let (prefix, binaries, directory, port) = (self.prefix, self.binaries, self.directory, self.port)
        let server = try await BlockingThreads.run {
            try SpawnedProcess([
                // Only its standard streams: a server that outlives other tests must not hold their pipes open (their
                // readers would never see the end).
                "/bin/bash", "-c",
                "for fd in /proc/$$/fd/*; do fd=${fd##*/}; [ \"$fd\" -gt 2 ] && eval \"exec $fd>&-\"; done 2>/dev/null; "
                    // In a directory of its own: the test process's may be a test's temporary one, gone meanwhile.
                    + "cd '\(directory)' && exec \(prefix) '\(binaries)/postgres' -D '\(directory)/data' -p \(port) "
                    + "-k '\(directory)' -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 "
                    + "-c logging_collector=off 2> '\(log)'",
            ])
        }
        self.process.withLock { $0.server = server }
        try await waitUntil(log, contains: "database system is ready to accept connections")
    }

    /// Stops the server (fast shutdown: connections are cut), then starts it again on the same port.
    func restart() async throws {
        guard let server = self.process.withLock({ $0.server }) else { return }
        kill(server.pid, SIGINT)  // fast shutdown
        _ = await server.wait()
        server.closeInput()
        try await self.startServer()
    }

    /// Done once, before this process makes a directory of its own.
    private static let leftoversRemoved: Void = TestPostgres.removeLeftovers()

    /// Removes the data directories of servers whose test process is gone (each directory names its process).
    private static func removeLeftovers() {
        var found = glob_t()
        defer { globfree(&found) }
        guard glob("/tmp/sluice-pg-*", 0, nil, &found) == 0 else { return }
        for index in 0..<Int(found.gl_pathc) {
            guard let pointer = found.gl_pathv[index] else { continue }
            let directory = String(cString: pointer)
            let owner = (try? readFile(directory + "/owner.pid")).flatMap { pid_t(String(decoding: $0, as: UTF8.self)) }
            if let owner, kill(owner, 0) == 0 { continue }  // a test process that still runs (this one, too)
            _ = system("rm -rf '\(directory)'")
        }
    }

    /// A new empty database on this server, and its URL.
    func makeDatabase(_ name: String) async throws -> String {
        try await Shell.check(
            self.psql + "-q -c 'DROP DATABASE IF EXISTS \(name)' -c 'CREATE DATABASE \(name)' postgres > /dev/null"
        )
        return "postgres://postgres@127.0.0.1:\(self.port)/\(name)"
    }

    /// The start of a psql command line for this server. It runs in the server's directory: psql fails ("could not
    /// find own program executable") in a current directory that is gone — the test process's may be a test's
    /// temporary one (README examples `chdir`), removed while psql starts.
    private var psql: String {
        "cd '\(self.directory)' && '\(self.binaries)/psql' -h 127.0.0.1 -p \(self.port) -U postgres "
    }

    /// Runs SQL through psql, returning its unaligned output.
    func sql(_ query: String, database: String) async throws -> String {
        let output = self.directory + "/psql-\(UInt32.random(in: 0...UInt32.max)).out"
        try await Shell.check(self.psql + "-At -c \"\(query)\" \(database) > '\(output)'")
        defer { unlink(output) }
        return String(decoding: try readFile(output), as: UTF8.self)
    }

    private static func freePort() throws -> Int {
        let port = try RefusingPort()
        return port.port  // released when `port` goes: the server takes it at once
    }
}
