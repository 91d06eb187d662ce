import Testing

@testable import Sluice
@testable import SluiceCluster

#if canImport(Glibc)
import Glibc
#endif

/// The coordinator's operations against a real PostgreSQL, on time the test sets: claims, leases that expire,
/// fencing, retries with backoff, failures for good, release, idempotent submission.
@Suite("Cluster: the coordinator's store", .enabled(if: TestPostgres.isAvailable), .timeLimit(.minutes(1)))
struct ClusterStoreTests {
    /// A store on a fresh database of the shared server, at a time the test moves.
    final class Fixture: Sendable {
        let time = Locked(1_000_000.0)

        func advance(_ seconds: Double) { self.time.withLock { $0 += seconds } }
    }

    static func withStore(
        _ name: String,
        _ body: (ClusterStore, Fixture) async throws -> Void
    ) async throws {
        let server = try await TestPostgres.shared.get()
        let url = try await server.makeDatabase(name)
        let fixture = Fixture()
        try await ClusterDatabase.with(url: url) { database in
            let store = ClusterStore(database: database, now: { fixture.time.withLock { $0 } })
            try await store.migrate()
            try await body(store, fixture)
        }
    }

    static func job(
        _ name: String = "logs",
        inputs: Int = 3,
        arguments: [String] = ["--pattern", "x"]
    ) -> ClusterStore.Job {
        ClusterStore.Job(
            name: name,
            pipeline: "grep",
            arguments: arguments,
            outputDirectory: "/out",
            inputs: (0..<inputs).map { "/in/\($0).gz" }
        )
    }

    @Test func submit_createsOneUnitPerInput_andAgainChangesNothing_butOtherSettingsAreAnError() async throws {
        try await Self.withStore("submit") { store, _ in
            #expect(try await store.submit(Self.job(inputs: 5)))
            #expect(try await store.submit(Self.job(inputs: 5)) == false)
            let units = try await store.units(of: "logs")
            #expect(units.map(\.input) == (0..<5).map { "/in/\($0).gz" })
            #expect(units.allSatisfy { $0.state == "pending" })
            let error = await #expect(throws: ClusterError.self) {
                try await store.submit(Self.job(inputs: 5, arguments: ["--pattern", "y"]))
            }
            #expect("\(error!)".contains("arguments [\"--pattern\", \"x\"], not [\"--pattern\", \"y\"]"))
            try await store.migrate()  // again: nothing to do
        }
    }

    @Test func migrate_onAnUpToDateSchema_takesNoLock_butANewerSchemaIsAnError() async throws {
        let server = try await TestPostgres.shared.get()
        let url = try await server.makeDatabase("migrate")
        try await ClusterDatabase.with(url: url) { database in
            let store = ClusterStore(database: database)
            try await store.migrate()  // creates the schema
            try await ClusterDatabase.with(url: url) { other in
                // Another session holds the migration lock (a worker of a newer version migrating, say): an
                // up-to-date worker does not wait for it. Were it to, the suite's time limit would end the test.
                try await other.withConnection { connection in
                    _ = try await connection.query("SELECT pg_advisory_lock(7269736, 1)", logger: database.logger)
                }
                try await store.migrate()
            }
            try await database.withConnection { connection in
                let version = ClusterStore.migrations.count + 1
                _ = try await connection.query(
                    "INSERT INTO sluice.schema_migrations (version) VALUES (\(version))",
                    logger: database.logger
                )
            }
            await #expect(
                throws: ClusterError.schemaNewerThanThisVersion(
                    found: ClusterStore.migrations.count + 1,
                    known: ClusterStore.migrations.count
                )
            ) {
                try await store.migrate()
            }
        }
    }

    @Test func claims_takeUnitsInOrder_eachOnce() async throws {
        try await Self.withStore("claims") { store, _ in
            try await store.submit(Self.job(inputs: 3))
            var positions: [Int] = []
            for worker in ["a", "b", "c"] {
                let claim = try #require(
                    try await store.claim(job: "logs", worker: worker, lease: .seconds(30), maxAttempts: 3)
                )
                #expect(claim.token == 1 && claim.attempts == 0)
                positions.append(claim.position)
            }
            #expect(positions == [0, 1, 2])
            #expect(try await store.claim(job: "logs", worker: "d", lease: .seconds(30), maxAttempts: 3) == nil)
            #expect(try await store.hasWork(job: "logs"))
        }
    }

    @Test func anExpiredLease_isClaimedAgain_andTheOldTokenCanNeitherRenewNorFinish() async throws {
        try await Self.withStore("fencing") { store, time in
            try await store.submit(Self.job(inputs: 1))
            let first = try #require(
                try await store.claim(job: "logs", worker: "a", lease: .seconds(30), maxAttempts: 3)
            )
            time.advance(20)
            try await store.renew(first, worker: "a", lease: .seconds(30))  // good until t+50
            time.advance(29)
            #expect(try await store.claim(job: "logs", worker: "b", lease: .seconds(30), maxAttempts: 3) == nil)
            time.advance(2)  // t+51: expired
            let second = try #require(
                try await store.claim(job: "logs", worker: "b", lease: .seconds(30), maxAttempts: 3)
            )
            #expect(second.position == first.position && second.token == first.token + 1 && second.attempts == 1)

            await #expect(throws: ClusterError.leaseLost(job: "logs", position: 0)) {
                try await store.renew(first, worker: "a", lease: .seconds(30))
            }
            let placed = Locked<[String]>([])
            await #expect(throws: ClusterError.leaseLost(job: "logs", position: 0)) {
                try await store.complete(first, worker: "a", output: "/out/a") { placed.withLock { $0.append("a") } }
            }
            await #expect(throws: ClusterError.leaseLost(job: "logs", position: 0)) {
                try await store.fail(first, error: "late", maxAttempts: 3, backoff: .seconds(1))
            }
            try await store.complete(second, worker: "b", output: "/out/b") { placed.withLock { $0.append("b") } }
            #expect(placed.withLock { $0 } == ["b"])  // only the current attempt put its file in place
            let units = try await store.units(of: "logs")
            #expect(
                units == [ClusterStore.UnitOutcome(position: 0, input: "/in/0.gz", state: "done", output: "/out/b")]
            )
            // Done is done: the first worker's late completion cannot undo it either.
            await #expect(throws: ClusterError.self) {
                try await store.complete(first, worker: "a", output: "/out/a") {}
            }
            #expect(try await store.hasWork(job: "logs") == false)
        }
    }

    @Test func aFailedAttempt_waitsForItsBackoff_thenFailsForGoodAfterMaxAttempts() async throws {
        try await Self.withStore("retries") { store, time in
            try await store.submit(Self.job(inputs: 1))
            let first = try #require(
                try await store.claim(job: "logs", worker: "a", lease: .seconds(30), maxAttempts: 2)
            )
            #expect(try await store.workLeft(job: "logs") == .init(pending: 0, running: 1, nextDue: .seconds(30)))
            #expect(try await store.fail(first, error: "bad gzip", maxAttempts: 2, backoff: .seconds(10)) == false)
            time.advance(9)
            #expect(try await store.claim(job: "logs", worker: "a", lease: .seconds(30), maxAttempts: 2) == nil)
            // Its backoff ends in a second: a worker with nothing to claim looks again then.
            #expect(try await store.workLeft(job: "logs") == .init(pending: 1, running: 0, nextDue: .seconds(1)))
            time.advance(2)
            let second = try #require(
                try await store.claim(job: "logs", worker: "b", lease: .seconds(30), maxAttempts: 2)
            )
            #expect(second.attempts == 1)
            #expect(try await store.fail(second, error: "bad gzip again", maxAttempts: 2, backoff: .seconds(10)))
            time.advance(60)
            #expect(try await store.claim(job: "logs", worker: "a", lease: .seconds(30), maxAttempts: 2) == nil)
            let status = try await store.status(of: "logs")
            #expect(status.failed == 1 && status.isSettled)
            #expect(status.failures == [.init(position: 0, input: "/in/0.gz", attempts: 2, error: "bad gzip again")])
        }
    }

    @Test func aLeaseThatKeepsExpiring_failsTheUnitAfterMaxAttempts() async throws {
        try await Self.withStore("expiring") { store, time in
            try await store.submit(Self.job(inputs: 1))
            for attempt in 0..<2 {
                let claim = try #require(
                    try await store.claim(job: "logs", worker: "w\(attempt)", lease: .seconds(5), maxAttempts: 2)
                )
                #expect(claim.attempts == attempt)
                time.advance(6)  // its worker died
            }
            #expect(try await store.claim(job: "logs", worker: "w2", lease: .seconds(5), maxAttempts: 2) == nil)
            let status = try await store.status(of: "logs")
            #expect(status.failed == 1)
            #expect(status.failures.first?.error.contains("stopped renewing the lease") == true)
        }
    }

    @Test func aReleasedUnit_isPendingAgainAtOnce_withoutCountingTheAttempt() async throws {
        try await Self.withStore("release") { store, _ in
            try await store.submit(Self.job(inputs: 1))
            let first = try #require(
                try await store.claim(job: "logs", worker: "a", lease: .seconds(30), maxAttempts: 3)
            )
            try await store.release(first)
            #expect(try await store.workLeft(job: "logs") == .init(pending: 1, running: 0, nextDue: .zero))
            let second = try #require(
                try await store.claim(job: "logs", worker: "b", lease: .seconds(30), maxAttempts: 3)
            )
            #expect(second.attempts == 0 && second.token == 2)
            try await store.release(first)  // a stale release changes nothing
            #expect(try await store.status(of: "logs").running == 1)
        }
    }

    @Test func status_countsUnitsAndWorkers() async throws {
        try await Self.withStore("status") { store, _ in
            try await store.submit(Self.job(inputs: 4))
            try await store.register(worker: "w1", job: "logs")
            let claim = try #require(
                try await store.claim(job: "logs", worker: "w1", lease: .seconds(30), maxAttempts: 3)
            )
            try await store.complete(claim, worker: "w1", output: "/out/0") {}
            _ = try await store.claim(job: "logs", worker: "w1", lease: .seconds(30), maxAttempts: 3)
            let status = try await store.status(of: "logs")
            #expect(status.done == 1 && status.running == 1 && status.pending == 2 && status.total == 4)
            #expect(status.doneLastMinute == 1)
            #expect(status.liveWorkers == ["w1": 1])
            await #expect(throws: ClusterError.unknownJob("nope")) { try await store.status(of: "nope") }
        }
    }

    @Test func aWorkerWithNothingToClaim_waitsForAChange_andExitsAtOnceWhenTheOthersUnitsEnd() async throws {
        try await Self.withStore("idle") { store, _ in
            try await store.submit(Self.job(inputs: 1))
            let held = try #require(
                try await store.claim(job: "logs", worker: "other", lease: .seconds(30), maxAttempts: 3)
            )
            #expect(try await store.workLeft(job: "logs") == .init(pending: 0, running: 1, nextDue: .seconds(30)))
            let clock = ManualClock()
            let worker = ClusterWorker(
                store: store,
                settings: ClusterWorker.Settings(
                    pollInterval: .seconds(60),
                    busyPollInterval: .milliseconds(50),
                    clock: clock
                ),
                pipelines: []
            )
            let run = Task { try await worker.run(job: "logs", stop: ShutdownSignal()) }
            // Until it listens, it polls quickly; then it waits for a change, or for the held lease to expire (30 s,
            // when it could claim the unit), not for its minute-long poll.
            var started = 0
            while !clock.requested.contains(.seconds(30)) {
                await clock.sleepStarted.wait(beyond: started)
                started += 1
            }
            #expect(Set(clock.requested).isSubset(of: [.milliseconds(50), .seconds(30)]))
            try await store.complete(held, worker: "other", output: "/out/0") {}
            let summary = try await run.value  // the notification wakes it: nothing pending or running, it ends
            #expect(summary == ClusterWorker.Summary())
            #expect(clock.now == ManualClock.Instant(offset: .zero))  // no time passed
        }
    }

    @Test func unitsThatBecomePendingDoneOrFailed_notifyTheirJob_butClaimsAndRenewalsDoNot() async throws {
        try await Self.withStore("notify") { store, _ in
            let payloads = Locked<[String]>([])
            let changes = UnitChanges(job: nil)
            let listener = Task {
                await store.database.listen(
                    on: ClusterStore.changesChannel,
                    clock: ContinuousClock(),
                    listening: { changes.setListening($0) },
                    received: { payload in
                        payloads.withLock { $0.append(payload) }
                        changes.received(payload)
                    }
                )
            }
            defer { listener.cancel() }
            await changes.wait(past: 0)
            #expect(changes.isListening)
            // Records each payload that arrives up to the sentinel notified after `body`, in order.
            func notified(by body: () async throws -> Void) async throws -> [String] {
                payloads.withLock { $0.removeAll() }
                try await body()
                try await store.database.withConnection { connection in
                    _ = try await connection.query("SELECT pg_notify('sluice_units', 'sentinel')", logger: store.logger)
                }
                while true {
                    let seen = changes.generation
                    let received = payloads.withLock { $0 }
                    if received.last == "sentinel" { return received.dropLast() }
                    await changes.wait(past: seen)
                }
            }

            #expect(try await notified { try await store.submit(Self.job(inputs: 2)) } == ["logs"])
            var claims: [ClusterStore.Claim] = []
            #expect(
                try await notified {
                    for worker in ["a", "b"] {
                        claims.append(
                            try #require(
                                try await store.claim(job: "logs", worker: worker, lease: .seconds(30), maxAttempts: 3)
                            )
                        )
                    }
                    try await store.renew(claims[0], worker: "a", lease: .seconds(30))
                }.isEmpty
            )
            #expect(try await notified { try await store.release(claims[0]) } == ["logs"])
            #expect(
                try await notified {
                    try await store.fail(claims[1], error: "bad", maxAttempts: 3, backoff: .seconds(1))
                } == ["logs"]
            )
            let again = try #require(
                try await store.claim(job: "logs", worker: "a", lease: .seconds(30), maxAttempts: 3)
            )
            #expect(
                try await notified { try await store.complete(again, worker: "a", output: "/out/0") {} } == ["logs"]
            )
        }
    }

    @Test func databaseErrors_areDescribedInFull_notAsPostgresNIOsGenericText() async throws {
        let refusing = try RefusingPort()  // bound, never listening: a connect is refused
        let error = await #expect(throws: (any Error).self) {
            try await ClusterDatabase.with(url: "postgres://postgres@127.0.0.1:\(refusing.port)/none") { database in
                try await ClusterStore(database: database).hasWork(job: nil)
            }
        }
        let description = ClusterDatabase.describe(try #require(error))
        #expect(description.hasPrefix("cannot connect to the database: "), "\(description)")
        #expect(description.contains("Connection refused"), "\(description)")
        #expect(!description.contains("Generic description"))
        #expect(ClusterDatabase.describe(ClusterError.unknownJob("x")) == "no job named 'x'")
    }

    @Test func aServersRefusal_isDescribedByItsMessageAndSQLState() async throws {
        let server = try await TestPostgres.shared.get()
        let url = try await server.makeDatabase("refusal")
        let missing = String(url[..<url.lastIndex(of: "/")!]) + "/no_such_database"
        let error = await #expect(throws: (any Error).self) {
            try await ClusterDatabase.with(url: missing) { database in
                try await ClusterStore(database: database).hasWork(job: nil)
            }
        }
        let description = ClusterDatabase.describe(try #require(error))
        #expect(
            description == "the database answered: database \"no_such_database\" does not exist (SQLSTATE 3D000)",
            "\(description)"
        )
    }

    @Test func databaseURLs_parse_andBadOnesSaySo() throws {
        let configuration = try ClusterDatabase.configuration(
            url: "postgres://me:p%40ss@db.example:6543/logs?sslmode=disable"
        )
        #expect(configuration.host == "db.example" && configuration.port == 6543)
        #expect(configuration.username == "me" && configuration.password == "p@ss" && configuration.database == "logs")
        for bad in ["mysql://a@b/c", "postgres://host/db", "postgres://a@b:x/c", "postgres://a@b/"] {
            #expect(throws: ClusterError.invalidDatabaseURL(bad)) { try ClusterDatabase.configuration(url: bad) }
        }
    }
}
