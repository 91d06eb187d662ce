public import Logging
public import Pipelines
public import Sluice

#if canImport(Glibc)
import Glibc
#endif

/// A worker of a distributed run: claims units, runs the job's pipeline on each unit's input under a lease it
/// renews, and puts each unit's output in place atomically — fenced, so a worker that lost its lease changes
/// nothing.
///
/// A unit runs into a temporary file in the job's output directory, which is flushed to disk and renamed to the
/// unit's final name inside the transaction that marks it done (``ClusterStore/complete(_:worker:output:putInPlace:)``).
/// A failing unit goes back to pending with a growing backoff, and is failed for good with its error after
/// ``Settings/maxAttempts``. Database errors (a restart) are retried with backoff; the lease may have moved on
/// meanwhile, and the fencing token decides.
public struct ClusterWorker: Sendable {
    public struct Settings: Sendable {
        /// How long a claim holds without renewal; renewed every third of it.
        public var lease: Duration
        /// Attempts per unit, an expired lease included, before it is failed for good.
        public var maxAttempts: Int
        /// Keep polling for work when the job has nothing pending or running.
        public var wait: Bool
        /// The longest a worker with nothing to claim waits before it looks again (a change to the units, a lease
        /// that expires or a backoff that ends wakes it sooner).
        public var pollInterval: Duration
        /// How often to look when none is claimable, other workers hold units, and this worker cannot listen for
        /// changes (its listening connection is down): each unit may end (then, with nothing pending, this worker
        /// exits) or fail and come back. Short, so the last units' end is seen soon.
        public var busyPollInterval: Duration
        /// The wait before a failed unit is tried again: after attempt n, `initialDelay × multiplierⁿ⁻¹`.
        public var unitBackoff: RetryPolicy
        /// How long database errors are retried before the worker gives up.
        public var databaseRetryLimit: Duration
        /// The clock of every wait: polling, renewals, database retries.
        public var clock: any Clock<Duration>
        public var logger: Logger
        /// Called before a unit whose run succeeded is put in place (its output flushed, renamed, marked done) —
        /// while the worker already runs its next unit. For tests and tracing; an error it throws is the worker's.
        public var beforePuttingInPlace: (@Sendable (Claim) async throws -> Void)?

        public init(
            lease: Duration = .seconds(30),
            maxAttempts: Int = 3,
            wait: Bool = false,
            pollInterval: Duration = .seconds(1),
            busyPollInterval: Duration = .milliseconds(50),
            unitBackoff: RetryPolicy = .exponential(initialDelay: .seconds(1), maxDelay: .seconds(60)),
            databaseRetryLimit: Duration = .seconds(300),
            clock: any Clock<Duration> = ContinuousClock(),
            logger: Logger = Logger(label: "sluice.cluster", factory: { _ in SwiftLogNoOpLogHandler() })
        ) {
            self.lease = lease
            self.maxAttempts = maxAttempts
            self.wait = wait
            self.pollInterval = pollInterval
            self.busyPollInterval = busyPollInterval
            self.unitBackoff = unitBackoff
            self.databaseRetryLimit = databaseRetryLimit
            self.clock = clock
            self.logger = logger
        }
    }

    /// What a worker did.
    public struct Summary: Sendable, Equatable {
        public var done = 0
        /// Attempts that failed (the unit retried later, or failed for good).
        public var failedAttempts = 0
        /// Units given back unfinished on a second signal.
        public var released = 0
        /// Attempts whose lease had moved on: their results were discarded.
        public var lost = 0

        mutating func add(_ other: Summary) {
            self.done += other.done
            self.failedAttempts += other.failedAttempts
            self.released += other.released
            self.lost += other.lost
        }
    }

    public let store: ClusterStore
    public let settings: Settings
    /// The pipelines it can run, by name.
    public let pipelines: [any ReadyPipeline.Type]
    /// The engine's settings for each unit's run (its shutdown signal is not used: a unit finishes or is released).
    /// Give it a ``RunOptions/computePool`` to share: otherwise each unit's run starts and stops threads of its own.
    public let runOptions: RunOptions
    public let id: String

    public init(
        store: ClusterStore,
        settings: Settings = Settings(),
        pipelines: [any ReadyPipeline.Type],
        runOptions: RunOptions = RunOptions(),
        id: String = ClusterWorker.defaultID()
    ) {
        self.store = store
        self.settings = settings
        self.pipelines = pipelines
        self.runOptions = runOptions
        self.id = id
    }

    /// `HOST:PID:RANDOM`.
    public static func defaultID() -> String {
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count - 1)
        let host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return "\(host):\(getpid()):\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
    }

    /// The final name of a unit's output.
    public static func outputPath(directory: String, job: String, position: Int) -> String {
        let number = String(position)
        return "\(directory)/\(job)-\(String(repeating: "0", count: max(0, 6 - number.count)))\(number).gz"
    }

    /// Works on `job` (or any job) until nothing is pending or running (with ``Settings/wait``: until `stop`).
    /// After `stop` is requested it claims no more; the units in hand finish. Cancelling the task releases the units
    /// in hand and ends at once.
    ///
    /// Units overlap by one step: once a unit's run ends, the worker claims and runs the next while the previous
    /// one's output is flushed to disk, renamed into place and marked done (or its failure recorded). Each unit
    /// keeps its own claim, lease and fencing token; the worker holds at most two, only one of them running.
    ///
    /// With nothing to claim, it listens for changes to the units (a connection of its own, from the first time it
    /// finds nothing): a unit that becomes pending, done or failed wakes it at once. It also looks again when the
    /// next lease expires or backoff ends, and at ``Settings/pollInterval`` in any case — or at
    /// ``Settings/busyPollInterval`` while it cannot listen and others hold units.
    public func run(job: String?, stop: ShutdownSignal) async throws -> Summary {
        // A job's settings never change once submitted: read each once (its input list can be long), and parse its
        // pipeline's options once.
        var jobs: [String: ClusterStore.Job] = [:]
        var runners: [String: UnitRunner] = [:]
        if let job {
            let found = try await self.retryingDatabase("read the job") { try await self.store.job(named: job) }
            guard let found else { throw ClusterError.unknownJob(job) }
            jobs[job] = found
        }
        try await self.retryingDatabase("register the worker") {
            try await self.store.register(worker: self.id, job: job)
        }
        // fsync and rename block: a thread of their own, off the cooperative pool the next unit's stages run on.
        let files = try ComputePool(threads: 1, name: "sluice-unit-sync")
        let changes = UnitChanges(job: job)
        let summary: Summary
        do {
            summary = try await withThrowingTaskGroup(of: Void.self) { group in
                defer { group.cancelAll() }  // the listener, if it started
                var summary = Summary()
                // The last unit run, not yet put in place: it is while the next one runs.
                var ran: RanUnit?
                do {
                    while !stop.isRequested {
                        try Task.checkCancellation()
                        let seen = changes.generation
                        let claim = try await self.retryingDatabase("claim a unit") {
                            try await self.store.claim(
                                job: job,
                                worker: self.id,
                                lease: self.settings.lease,
                                maxAttempts: self.settings.maxAttempts
                            )
                        }
                        guard let claim else {
                            if let last = ran.take() {
                                // Finished before deciding that nothing is left: it counts as running until then.
                                summary.add(try await self.finish(last, files: files))
                                continue
                            }
                            let left = try await self.retryingDatabase("look for work") {
                                try await self.store.workLeft(job: job)
                            }
                            if left.isEmpty && !self.settings.wait { break }
                            if changes.markStarted() {
                                let (database, clock) = (self.store.database, self.settings.clock)
                                group.addTask {
                                    await database.listen(
                                        on: ClusterStore.changesChannel,
                                        clock: clock,
                                        listening: { changes.setListening($0) },
                                        received: { changes.received($0) }
                                    )
                                }
                            }
                            try await self.wait(
                                for: changes,
                                past: seen,
                                atMost: self.idleWait(left, listening: changes.isListening),
                                orUntil: stop
                            )
                            continue
                        }
                        if jobs[claim.job] == nil {
                            jobs[claim.job] = try await self.retryingDatabase("read the job") {
                                try await self.store.job(named: claim.job)
                            }
                        }
                        guard let job = jobs[claim.job] else { throw ClusterError.unknownJob(claim.job) }
                        let runner = runners[job.name] ?? self.runner(for: job)
                        runners[job.name] = runner
                        ran = try await self.run(
                            claim,
                            of: job,
                            with: runner,
                            finishing: ran.take(),
                            files: files,
                            summary: &summary
                        )
                    }
                } catch {
                    // Ended by an error or cancellation with a unit run but not put in place: given back.
                    if let last = ran.take() {
                        unlink(last.temporary)
                        await self.giveBack(last.claim)
                    }
                    throw error
                }
                if let last = ran.take() { summary.add(try await self.finish(last, files: files)) }
                return summary
            }
        } catch {
            await files.shutdown()
            throw error
        }
        await files.shutdown()
        return summary
    }

    /// How long a worker with nothing to claim waits for a change before it looks again: until the next lease
    /// expires or backoff ends, at most ``Settings/pollInterval`` — or ``Settings/busyPollInterval`` while others
    /// hold units and no notification would say they ended.
    func idleWait(_ left: ClusterStore.WorkLeft, listening: Bool) -> Duration {
        var wait = listening || left.running == 0 ? self.settings.pollInterval : self.settings.busyPollInterval
        if let due = left.nextDue { wait = min(wait, max(due, .zero)) }
        return wait
    }

    /// What runs a unit of a job: its pipeline with its options parsed, or why it cannot run (each unit then fails
    /// with that error).
    typealias UnitRunner = Result<@Sendable (Invocation) async throws -> RunReport<Void>, any Error>

    private func runner(for job: ClusterStore.Job) -> UnitRunner {
        guard let pipeline = self.pipelines.first(where: { $0.name == job.pipeline }) else {
            return .failure(ClusterError.unknownPipeline(job.pipeline))
        }
        return Result { try pipeline.unitRunner(arguments: job.arguments) }
    }

    /// A unit whose run has ended, to be put in place (or its failure recorded).
    struct RanUnit: Sendable {
        enum Outcome: Sendable {
            case succeeded
            case failed(any Error)
        }

        var claim: Claim
        var job: ClusterStore.Job
        var temporary: String
        var outcome: Outcome
    }

    /// Runs `claim`'s unit while `previous` is put in place; returns the unit, or `nil` if its lease was lost.
    ///
    /// If putting `previous` in place fails, or the task is cancelled, the unit is given back unfinished.
    private func run(
        _ claim: Claim,
        of job: ClusterStore.Job,
        with runner: UnitRunner,
        finishing previous: RanUnit?,
        files: ComputePool,
        summary: inout Summary
    ) async throws -> RanUnit? {
        let logger = self.logger(for: claim)
        let temporary = "\(job.outputDirectory)/.\(job.name)-\(claim.position).\(claim.token).\(getpid()).partial.gz"
        logger.info("unit claimed", metadata: ["input": "\(claim.input)", "attempt": "\(claim.attempts + 1)"])
        async let finished = self.finish(previous, files: files)
        let outcome: RanUnit.Outcome?
        do {
            try await self.runHoldingLease(claim, with: runner, into: temporary)
            outcome = .succeeded
        } catch is CancellationError {
            outcome = nil  // stopped at once (a second signal): given back below
        } catch let error as ClusterError where error.isLeaseLost {
            unlink(temporary)
            summary.lost += 1
            logger.warning("lease lost: the unit's result is discarded", metadata: ["error": "\(error)"])
            summary.add(try await finished)
            return nil
        } catch {
            outcome = .failed(error)
        }
        var failure: (any Error)?
        do {
            summary.add(try await finished)
        } catch {
            failure = error
        }
        guard let outcome, failure == nil, !Task.isCancelled else {
            // Give the unit back for another worker: the task was cancelled, or the worker ends on the error of the
            // unit before it.
            unlink(temporary)
            await self.giveBack(claim)
            summary.released += 1
            logger.notice("unit released unfinished")
            throw failure ?? CancellationError()
        }
        return RanUnit(claim: claim, job: job, temporary: temporary, outcome: outcome)
    }

    /// Gives `claim`'s unit back (pending again, its attempt not counted), for another worker to run at once rather
    /// than after its lease expires. Best effort, and done even when the calling task is cancelled — the usual reason
    /// to give a unit back: a task of its own, not cancelled, bounded by the database's operation timeout.
    private func giveBack(_ claim: Claim) async {
        let store = self.store
        await Task { try? await store.release(claim) }.value
    }

    /// Puts a unit whose run succeeded in place — its output flushed to disk, renamed to its final name and the
    /// unit marked done, fenced by its token — or records its failure (retried after a backoff, or failed for good).
    private func finish(_ unit: RanUnit?, files: ComputePool) async throws -> Summary {
        guard let unit else { return Summary() }
        let (claim, job, temporary) = (unit.claim, unit.job, unit.temporary)
        let logger = self.logger(for: claim)
        let output = Self.outputPath(directory: job.outputDirectory, job: job.name, position: claim.position)
        var summary = Summary()
        switch unit.outcome {
        case .succeeded:
            do {
                try await self.settings.beforePuttingInPlace?(claim)
                try await files.run { try Self.flushToDisk(temporary) }
                try await self.retryingDatabase("mark the unit done") {
                    try await self.store.complete(claim, worker: self.id, output: output) {
                        try await files.run {
                            // Already in place when an earlier try of this commit failed after the rename (the
                            // token still holds: no newer attempt can have put its file there).
                            guard rename(temporary, output) == 0 || (errno == ENOENT && access(output, F_OK) == 0)
                            else {
                                throw ClusterFileError(path: output, operation: "rename", code: errno)
                            }
                            try Self.flushToDisk(job.outputDirectory)
                        }
                    }
                }
                summary.done += 1
                logger.info("unit done", metadata: ["output": "\(output)"])
            } catch let error as ClusterError where error.isLeaseLost {
                unlink(temporary)
                summary.lost += 1
                logger.warning(
                    "lease lost before the unit was done: its result is discarded",
                    metadata: ["error": "\(error)"]
                )
            } catch {
                // Cancelled, or the database or the file system failed for good: given back, the error is the worker's.
                unlink(temporary)
                await self.giveBack(claim)
                throw error
            }
        case .failed(let error):
            unlink(temporary)
            summary.failedAttempts += 1
            let backoff = self.settings.unitBackoff.delay(after: claim.attempts + 1, random: Double.random(in: 0..<1))
            do {
                let final = try await self.retryingDatabase("record the failure") {
                    try await self.store.fail(
                        claim,
                        error: "\(error)",
                        maxAttempts: self.settings.maxAttempts,
                        backoff: backoff
                    )
                }
                logger.warning(
                    final ? "unit failed for good" : "unit failed; it will be tried again",
                    metadata: ["error": "\(error)", "attempt": "\(claim.attempts + 1)"]
                )
            } catch let error as ClusterError where error.isLeaseLost {
                summary.lost += 1
            }
        }
        return summary
    }

    /// Runs the unit's pipeline into `temporary`, renewing the lease meanwhile; a lost lease stops the run.
    private func runHoldingLease(_ claim: Claim, with runner: UnitRunner, into temporary: String) async throws {
        let run = try runner.get()
        var options = self.runOptions
        options.shutdown = nil  // a unit finishes or is released, never drained halfway
        let invocation = Invocation(
            inputs: [claim.input],
            output: temporary,
            runOptions: options,
            writeOptions: WriteOptions(gzipLevel: 1)
        )
        let (store, id, lease, clock) = (self.store, self.id, self.settings.lease, self.settings.clock)
        let logger = self.logger(for: claim)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                while true {
                    try await clock.sleep(for: lease / 3)
                    do {
                        try await store.renew(claim, worker: id, lease: lease)
                    } catch let error as ClusterError where error.isLeaseLost {
                        throw error  // the lease moved on: stop the run
                    } catch is CancellationError {
                        throw CancellationError()
                    } catch {
                        // The database is away: keep running, keep trying; at the end the token decides.
                        logger.warning(
                            "cannot renew the lease",
                            metadata: ["error": "\(ClusterDatabase.describe(error))"]
                        )
                    }
                }
            }
            group.addTask {
                _ = try await run(invocation)
            }
            defer { group.cancelAll() }
            _ = try await group.next()  // the run (or a lost lease) ends it
        }
    }

    /// Calls `operation`, retrying errors other than the coordinator's own (a database restarting) with backoff
    /// for up to ``Settings/databaseRetryLimit``.
    private func retryingDatabase<Value: Sendable>(
        _ what: String,
        _ operation: () async throws -> Value
    ) async throws -> Value {
        let clock = ContinuousClock()
        let start = clock.now
        var delay = Duration.milliseconds(200)
        while true {
            do {
                return try await operation()
            } catch let error as ClusterError where error.isAboutTheJob {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                // Unreachable, restarting, or too slow to answer: try again on a new connection.
                guard clock.now - start < self.settings.databaseRetryLimit else { throw error }
                self.settings.logger.warning(
                    "database unavailable; retrying",
                    metadata: [
                        "operation": "\(what)", "error": "\(ClusterDatabase.describe(error))", "delay": "\(delay)",
                    ]
                )
                try await self.settings.clock.sleep(for: delay)
                delay = min(delay * 2, .seconds(10))
            }
        }
    }

    /// Returns when the units changed since generation `seen`, after `timeout`, or once `stop` is requested.
    private func wait(
        for changes: UnitChanges,
        past seen: Int,
        atMost timeout: Duration,
        orUntil stop: ShutdownSignal
    ) async throws {
        guard changes.generation == seen, !stop.isRequested else { return }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.settings.clock.sleep(for: timeout) }
            group.addTask { await stop.wait() }
            group.addTask { await changes.wait(past: seen) }
            defer { group.cancelAll() }
            _ = try await group.next()
        }
    }

    private func logger(for claim: Claim) -> Logger {
        var logger = self.settings.logger
        logger[metadataKey: "job"] = "\(claim.job)"
        logger[metadataKey: "unit"] = "\(claim.position)"
        logger[metadataKey: "worker"] = "\(self.id)"
        return logger
    }

    public typealias Claim = ClusterStore.Claim

    /// Flushes a file (or a directory's entries) to disk.
    static func flushToDisk(_ path: String) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw ClusterFileError(path: path, operation: "open", code: errno) }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw ClusterFileError(path: path, operation: "fsync", code: errno) }
    }
}

/// A file operation of the worker failed.
public struct ClusterFileError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var operation: String
    public var code: Int32

    public var description: String {
        "\(self.operation) \(self.path): \(String(cString: strerror(self.code)))"
    }
}
