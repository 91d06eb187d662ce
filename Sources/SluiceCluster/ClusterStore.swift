import Logging
import PostgresNIO

/// The coordinator's tables and every operation on them, each one statement or one transaction.
///
/// Time: every lease and backoff is computed by the database, at `now` — the database's `clock_timestamp()`, or
/// for tests a time the caller gives (seconds since the epoch), so leases expire on an injected clock.
///
/// Fencing: a unit's `token` grows by one at each claim. Renewing, finishing, failing and releasing a unit need the
/// token of the claim; a worker whose lease expired and whose unit was claimed again holds an old token and is
/// refused — it can neither mark the unit done nor put its output in place (the rename happens inside the
/// transaction that checks the token, with the unit's row locked).
public struct ClusterStore: Sendable {
    public let database: ClusterDatabase
    /// The time operations use: `nil` for the database's own clock.
    let now: @Sendable () -> Double?

    public init(database: ClusterDatabase) {
        self.init(database: database, now: { nil })
    }

    init(database: ClusterDatabase, now: @escaping @Sendable () -> Double?) {
        self.database = database
        self.now = now
    }

    var logger: Logger { self.database.logger }

    // MARK: Schema

    /// The migrations, in order, each a list of statements; a database records the ones it has
    /// (`sluice.schema_migrations`).
    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE sluice.jobs (
                name text PRIMARY KEY,
                pipeline text NOT NULL,
                arguments text[] NOT NULL,
                output_dir text NOT NULL,
                inputs text[] NOT NULL,
                created_at timestamptz NOT NULL DEFAULT clock_timestamp()
            )
            """,
            """
            CREATE TABLE sluice.units (
                job text NOT NULL REFERENCES sluice.jobs(name) ON DELETE CASCADE,
                position integer NOT NULL,
                input text NOT NULL,
                state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'done', 'failed')),
                token bigint NOT NULL DEFAULT 0,
                attempts integer NOT NULL DEFAULT 0,
                worker text,
                lease_until timestamptz,
                not_before timestamptz,
                error text,
                output text,
                started_at timestamptz,
                finished_at timestamptz,
                PRIMARY KEY (job, position)
            )
            """,
            "CREATE INDEX units_by_state ON sluice.units (state, job, position)",
            """
            CREATE TABLE sluice.workers (
                id text PRIMARY KEY,
                job text,
                started_at timestamptz NOT NULL,
                seen_at timestamptz NOT NULL,
                units_done integer NOT NULL DEFAULT 0
            )
            """,
        ],
        // Units that become pending, done or failed — whatever statement changes them — notify the workers waiting
        // for work (``changesChannel``, the job as payload), at the commit; a claim (to running) and a renewal do not.
        [
            """
            CREATE FUNCTION sluice.notify_unit_changed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('\(ClusterStore.changesChannel)', NEW.job);
                RETURN NULL;
            END
            $$
            """,
            """
            CREATE TRIGGER unit_changed AFTER INSERT OR UPDATE OF state ON sluice.units
            FOR EACH ROW WHEN (NEW.state <> 'running') EXECUTE FUNCTION sluice.notify_unit_changed()
            """,
        ],
        // A claim looks for the first unfinished unit of its job: in the units still pending or running, so its cost
        // does not grow with the units done (it scanned every unit of the job).
        [
            "CREATE INDEX units_unfinished ON sluice.units (job, position) WHERE state IN ('pending', 'running')"
        ],
    ]

    /// The channel (LISTEN) on which a unit's job is notified when the unit becomes pending, done or failed.
    public static let changesChannel = "sluice_units"

    /// Creates the schema, or brings it up to date; safe with many workers starting at once.
    public func migrate() async throws {
        // Up to date, as it is but for the first run of a new version: one query, no lock — workers started together
        // do not queue for the migration lock.
        if let applied = try? await self.rows(
            "SELECT coalesce(max(version), 0) FROM sluice.schema_migrations",
            read: { rows in
                var applied: Int?
                for try await version in rows.decode(Int.self) { applied = version }
                return applied
            }
        ), applied == Self.migrations.count {
            return
        }
        try await self.transaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(7269736, 1)", logger: self.logger)
            try await connection.query("CREATE SCHEMA IF NOT EXISTS sluice", logger: self.logger)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS sluice.schema_migrations (
                    version integer PRIMARY KEY,
                    applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
                )
                """,
                logger: self.logger
            )
            var applied = 0
            for try await version in try await connection.query(
                "SELECT coalesce(max(version), 0) FROM sluice.schema_migrations",
                logger: self.logger
            ).decode(Int.self) {
                applied = version
            }
            guard applied <= Self.migrations.count else {
                throw ClusterError.schemaNewerThanThisVersion(found: applied, known: Self.migrations.count)
            }
            for (index, migration) in Self.migrations.enumerated().dropFirst(applied) {
                for statement in migration {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                }
                let version = index + 1
                try await connection.query(
                    "INSERT INTO sluice.schema_migrations (version) VALUES (\(version))",
                    logger: self.logger
                )
            }
        }
    }

    // MARK: Jobs

    /// A job as submitted.
    public struct Job: Sendable, Equatable {
        public var name: String
        public var pipeline: String
        public var arguments: [String]
        public var outputDirectory: String
        public var inputs: [String]

        public init(name: String, pipeline: String, arguments: [String], outputDirectory: String, inputs: [String]) {
            self.name = name
            self.pipeline = pipeline
            self.arguments = arguments
            self.outputDirectory = outputDirectory
            self.inputs = inputs
        }
    }

    /// Creates `job` and one pending unit per input, in input order. Returns `false` when the same job was
    /// submitted before (nothing changes).
    ///
    /// - Throws: ``ClusterError/jobMismatch(job:differences:)`` when a job of that name exists with other settings.
    @discardableResult
    public func submit(_ job: Job) async throws -> Bool {
        try await self.transaction { connection in
            let inserted =
                try await connection.query(
                    """
                    INSERT INTO sluice.jobs (name, pipeline, arguments, output_dir, inputs)
                    VALUES (\(job.name), \(job.pipeline), \(job.arguments), \(job.outputDirectory), \(job.inputs))
                    ON CONFLICT (name) DO NOTHING RETURNING 1
                    """,
                    logger: self.logger
                ).collect().count == 1
            guard inserted else {
                guard let existing = try await Self.job(named: job.name, on: connection, logger: self.logger) else {
                    throw ClusterError.unknownJob(job.name)
                }
                let differences = Self.differences(existing, job)
                guard differences.isEmpty else {
                    throw ClusterError.jobMismatch(job: job.name, differences: differences)
                }
                return false
            }
            try await connection.query(
                """
                INSERT INTO sluice.units (job, position, input)
                SELECT \(job.name), ordinality - 1, input FROM unnest(\(job.inputs)::text[]) WITH ORDINALITY AS u(input)
                """,
                logger: self.logger
            )
            return true
        }
    }

    static func differences(_ existing: Job, _ submitted: Job) -> [String] {
        var differences: [String] = []
        if existing.pipeline != submitted.pipeline {
            differences.append("pipeline \(existing.pipeline), not \(submitted.pipeline)")
        }
        if existing.arguments != submitted.arguments {
            differences.append("arguments \(existing.arguments), not \(submitted.arguments)")
        }
        if existing.outputDirectory != submitted.outputDirectory {
            differences.append("output directory \(existing.outputDirectory), not \(submitted.outputDirectory)")
        }
        if existing.inputs != submitted.inputs {
            differences.append("\(existing.inputs.count) inputs, not the \(submitted.inputs.count) given")
        }
        return differences
    }

    /// The job named `name`, if there is one.
    public func job(named name: String) async throws -> Job? {
        let logger = self.logger
        return try await self.database.withConnection { connection in
            try await Self.job(named: name, on: connection, logger: logger)
        }
    }

    static func job(named name: String, on connection: PostgresConnection, logger: Logger) async throws -> Job? {
        let rows = try await connection.query(
            "SELECT pipeline, arguments, output_dir, inputs FROM sluice.jobs WHERE name = \(name)",
            logger: logger
        )
        for try await (pipeline, arguments, directory, inputs) in rows.decode((String, [String], String, [String]).self)
        {
            return Job(name: name, pipeline: pipeline, arguments: arguments, outputDirectory: directory, inputs: inputs)
        }
        return nil
    }

    // MARK: Units

    /// A unit a worker claimed: its input, and the fencing token of this claim.
    public struct Claim: Sendable, Equatable {
        public var job: String
        public var position: Int
        public var input: String
        public var token: Int
        /// Failed attempts before this one (a lease that expired counts).
        public var attempts: Int
    }

    /// Claims the first unit that is pending (and past its backoff) or whose lease expired, of `job` (or of any job),
    /// under a lease of `lease` seconds. A unit whose lease expired after `maxAttempts` attempts is marked failed.
    public func claim(job: String?, worker: String, lease: Duration, maxAttempts: Int) async throws -> Claim? {
        let now = self.now()
        let seconds = Self.seconds(lease)
        // One statement, so one round trip: the sweep (leases that expired on the last attempt: failed) and the
        // claim touch different rows — the claim takes an expired lease only while attempts remain. Prepared
        // (ClusterStatements.swift): a claim per unit, so its plan is made once per connection.
        let rows =
            if let job {
                try await self.run(
                    ClaimUnitOfJob(now: now, maxAttempts: maxAttempts, worker: worker, leaseSeconds: seconds, job: job)
                )
            } else {
                try await self.run(
                    ClaimUnitOfAnyJob(now: now, maxAttempts: maxAttempts, worker: worker, leaseSeconds: seconds)
                )
            }
        return rows.first.map { job, position, input, token, attempts in
            Claim(job: job, position: position, input: input, token: token, attempts: attempts)
        }
    }

    /// Extends the lease of `claim` by `lease` from now.
    ///
    /// - Throws: ``ClusterError/leaseLost(job:position:)`` when the unit was claimed again (or ended).
    public func renew(_ claim: Claim, worker: String, lease: Duration) async throws {
        let now = self.now()
        let seconds = Self.seconds(lease)
        let renewed = try await self.rows(
            lane: .renewal,
            """
            WITH renewed AS (
                UPDATE sluice.units
                SET lease_until = coalesce(to_timestamp(\(now)), clock_timestamp()) + make_interval(secs => \(seconds))
                WHERE job = \(claim.job) AND position = \(claim.position) AND token = \(claim.token) AND state = 'running'
                RETURNING 1
            ), seen AS (
                UPDATE sluice.workers SET seen_at = coalesce(to_timestamp(\(now)), clock_timestamp())
                WHERE id = \(worker)
            )
            SELECT count(*) FROM renewed
            """
        ) { try await $0.decode(Int.self).reduce(0, +) }
        guard renewed == 1 else { throw ClusterError.leaseLost(job: claim.job, position: claim.position) }
    }

    /// Marks `claim` done with its output at `output`, after `putInPlace` (the rename of the unit's temporary file
    /// to `output`) ran — both only if the claim still holds, with the unit's row locked meanwhile.
    ///
    /// - Throws: ``ClusterError/leaseLost(job:position:)`` (and `putInPlace` does not run) when the unit was claimed
    ///   again or ended; what `putInPlace` throws.
    public func complete(
        _ claim: Claim,
        worker: String,
        output: String,
        putInPlace: @escaping @Sendable () async throws -> Void
    ) async throws {
        let now = self.now()
        try await self.transaction { connection in
            // Marking the unit done locks its row until the commit: while the file is put in place, no newer
            // claim can take the unit. A claim that no longer holds changes nothing, and nothing is put in place.
            var marked = 0
            let done = MarkUnitDone(
                output: output,
                now: now,
                job: claim.job,
                position: claim.position,
                token: claim.token,
                worker: worker
            )
            for try await count in try await connection.execute(done, logger: self.logger) {
                marked = count
            }
            guard marked == 1 else { throw ClusterError.leaseLost(job: claim.job, position: claim.position) }
            try await putInPlace()
        }
    }

    /// Records that `claim`'s attempt failed with `error`: the unit is pending again after `backoff`, or failed
    /// for good once it has had `maxAttempts` attempts. Returns whether it failed for good.
    ///
    /// - Throws: ``ClusterError/leaseLost(job:position:)`` when the unit was claimed again (its new attempt decides).
    @discardableResult
    public func fail(_ claim: Claim, error: String, maxAttempts: Int, backoff: Duration) async throws -> Bool {
        let now = self.now()
        let seconds = Self.seconds(backoff)
        let state = try await self.rows(
            """
            UPDATE sluice.units SET
                attempts = attempts + 1,
                state = CASE WHEN attempts + 1 >= \(maxAttempts) THEN 'failed' ELSE 'pending' END,
                not_before = coalesce(to_timestamp(\(now)), clock_timestamp()) + make_interval(secs => \(seconds)),
                finished_at = CASE WHEN attempts + 1 >= \(maxAttempts)
                    THEN coalesce(to_timestamp(\(now)), clock_timestamp()) END,
                error = \(error), worker = NULL, lease_until = NULL
            WHERE job = \(claim.job) AND position = \(claim.position) AND token = \(claim.token) AND state = 'running'
            RETURNING state
            """
        ) { rows -> String? in
            for try await state in rows.decode(String.self) { return state }
            return nil
        }
        guard let state else { throw ClusterError.leaseLost(job: claim.job, position: claim.position) }
        return state == "failed"
    }

    /// Gives `claim` back unfinished (its worker is stopping): pending again at once, the attempt not counted.
    public func release(_ claim: Claim) async throws {
        try await self.execute(
            """
            UPDATE sluice.units SET state = 'pending', worker = NULL, lease_until = NULL, not_before = NULL
            WHERE job = \(claim.job) AND position = \(claim.position) AND token = \(claim.token) AND state = 'running'
            """
        )
    }

    // MARK: Workers

    public func register(worker: String, job: String?) async throws {
        let now = self.now()
        try await self.execute(
            """
            INSERT INTO sluice.workers (id, job, started_at, seen_at)
            VALUES (\(worker), \(job), coalesce(to_timestamp(\(now)), clock_timestamp()),
                coalesce(to_timestamp(\(now)), clock_timestamp()))
            ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at
            """
        )
    }

    // MARK: Status

    /// Where a job stands.
    public struct Status: Sendable, Equatable {
        public var job: String
        public var pipeline: String
        public var pending = 0
        public var running = 0
        public var done = 0
        public var failed = 0
        /// Units finished in the last minute.
        public var doneLastMinute = 0
        /// Workers seen within the last two minutes, by id, with the units each finished.
        public var liveWorkers: [String: Int] = [:]
        /// The units that failed for good, in input order.
        public var failures: [Failure] = []

        public var total: Int { self.pending + self.running + self.done + self.failed }
        /// Nothing is left to do: every unit is done or failed.
        public var isSettled: Bool { self.pending == 0 && self.running == 0 }
    }

    public struct Failure: Sendable, Equatable {
        public var position: Int
        public var input: String
        public var attempts: Int
        public var error: String
    }

    public func status(of job: String) async throws -> Status {
        guard let found = try await self.job(named: job) else { throw ClusterError.unknownJob(job) }
        var status = Status(job: job, pipeline: found.pipeline)
        let now = self.now()
        let counts = try await self.rows(
            """
            SELECT state, count(*)::bigint,
                count(*) FILTER (WHERE finished_at > coalesce(to_timestamp(\(now)), clock_timestamp())
                    - interval '1 minute')::bigint
            FROM sluice.units WHERE job = \(job) GROUP BY state
            """
        ) { rows in try await rows.decode((String, Int, Int).self).reduce(into: []) { $0.append($1) } }
        for (state, count, recent) in counts {
            switch state {
            case "pending": status.pending = count
            case "running": status.running = count
            case "done":
                status.done = count
                status.doneLastMinute = recent
            default: status.failed = count
            }
        }
        let workers = try await self.rows(
            """
            SELECT id, units_done FROM sluice.workers
            WHERE (job IS NULL OR job = \(job))
                AND seen_at > coalesce(to_timestamp(\(now)), clock_timestamp()) - interval '2 minutes'
            """
        ) { rows in try await rows.decode((String, Int).self).reduce(into: []) { $0.append($1) } }
        for (id, done) in workers {
            status.liveWorkers[id] = done
        }
        let failures = try await self.rows(
            """
            SELECT position, input, attempts, coalesce(error, '') FROM sluice.units
            WHERE job = \(job) AND state = 'failed' ORDER BY position
            """
        ) { rows in try await rows.decode((Int, String, Int, String).self).reduce(into: []) { $0.append($1) } }
        for (position, input, attempts, error) in failures {
            status.failures.append(Failure(position: position, input: input, attempts: attempts, error: error))
        }
        return status
    }

    /// Whether any unit of `job` (or of any job) is pending or running.
    public func hasWork(job: String?) async throws -> Bool {
        try await self.workLeft(job: job).isEmpty == false
    }

    /// What is left of a job (or of every job) when a worker finds nothing to claim.
    public struct WorkLeft: Sendable, Equatable {
        /// Units pending: claimable now, or after their backoff.
        public var pending: Int
        /// Units running.
        public var running: Int
        /// How long until the first of the left units can be claimed without a change (a lease expires, a backoff
        /// ends): `nil` when none will. Zero or less: one can be claimed now.
        public var nextDue: Duration?

        public init(pending: Int, running: Int, nextDue: Duration? = nil) {
            self.pending = pending
            self.running = running
            self.nextDue = nextDue
        }

        /// Nothing pending or running.
        public var isEmpty: Bool { self.pending + self.running == 0 }
    }

    /// What is left of `job` (or of every job): units pending and running, and when the next can be claimed.
    public func workLeft(job: String?) async throws -> WorkLeft {
        let now = self.now()
        return try await self.rows(
            """
            SELECT count(*) FILTER (WHERE state = 'pending')::bigint, count(*) FILTER (WHERE state = 'running')::bigint,
                extract(epoch FROM least(
                    min(lease_until) FILTER (WHERE state = 'running'),
                    min(coalesce(not_before, coalesce(to_timestamp(\(now)), clock_timestamp())))
                        FILTER (WHERE state = 'pending')
                ) - coalesce(to_timestamp(\(now)), clock_timestamp()))::float8
            FROM sluice.units WHERE state IN ('pending', 'running') AND (\(job)::text IS NULL OR job = \(job))
            """
        ) { rows in
            var left = WorkLeft(pending: 0, running: 0)
            for try await (pending, running, due) in rows.decode((Int, Int, Double?).self) {
                left = WorkLeft(
                    pending: pending,
                    running: running,
                    nextDue: due.map { .nanoseconds(Int64(max(min($0, 1e9), -1e9) * 1e9)) }
                )
            }
            return left
        }
    }

    /// A unit's place and result, for `merge`.
    public struct UnitOutcome: Sendable, Equatable {
        public var position: Int
        public var input: String
        public var state: String
        public var output: String?
    }

    public func units(of job: String) async throws -> [UnitOutcome] {
        try await self.rows(
            "SELECT position, input, state, output FROM sluice.units WHERE job = \(job) ORDER BY position"
        ) { rows in
            var units: [UnitOutcome] = []
            for try await (position, input, state, output) in rows.decode((Int, String, String, String?).self) {
                units.append(UnitOutcome(position: position, input: input, state: state, output: output))
            }
            return units
        }
    }

    /// Runs `body` in a transaction; an error `body` throws comes out as it is (not wrapped by postgres-nio).
    private func transaction<Result: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let logger = self.logger
        return try await self.database.withConnection { connection in
            do {
                return try await connection.withTransaction(logger: logger) { try await body($0) }
            } catch let error as PostgresTransactionError {
                if let cause = error.closureError { throw cause }
                throw error
            }
        }
    }

    /// Runs one statement on `lane` and reads its rows with `read`.
    private func rows<Row: Sendable>(
        lane: ClusterDatabase.Lane = .main,
        _ query: PostgresQuery,
        read: @escaping @Sendable (PostgresRowSequence) async throws -> Row
    ) async throws -> Row {
        let logger = self.logger
        return try await self.database.withConnection(lane) { connection in
            try await read(try await connection.query(query, logger: logger))
        }
    }

    /// Runs the prepared `statement` (prepared on the connection the first time) and returns its rows.
    private func run<Statement: PostgresPreparedStatement>(
        _ statement: Statement
    ) async throws -> [Statement.Row] where Statement.Row: Sendable {
        let logger = self.logger
        return try await self.database.withConnection { connection in
            var rows: [Statement.Row] = []
            for try await row in try await connection.execute(statement, logger: logger) {
                rows.append(row)
            }
            return rows
        }
    }

    /// Runs one statement, ignoring its rows.
    private func execute(_ query: PostgresQuery) async throws {
        _ = try await self.rows(query) { try await $0.collect().count }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
