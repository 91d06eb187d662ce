import ArgumentParser
import Logging
import Pipelines
import Sluice
import SluiceCluster
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// `sluice job`: a run split into work units (one per input file) that workers on any number of machines share,
/// coordinated by PostgreSQL.
struct Job: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a ready pipeline over many files on many machines, coordinated by PostgreSQL.",
        discussion: """
            submit creates a job (one work unit per input file); work, on as many machines as you like, runs the \
            units; status shows where the job stands; merge combines the units' results in input order.
            """,
        subcommands: [Submit.self, Work.self, Status.self, Merge.self]
    )

    /// Where the coordinator is.
    struct Database: ParsableArguments {
        @Option(help: ArgumentHelp("The coordinating database.", valueName: "postgres://user@host:port/database"))
        var db: String
    }

    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Create a job: one work unit per input file (submitting it again with the same settings does nothing).",
            usage: "sluice job submit --db URL --job NAME --output-dir DIR <pipeline> [<pipeline options>] <inputs> ..."
        )

        @OptionGroup var database: Database

        @Option(help: "The job's name.")
        var job: String

        @Option(help: "Where the units' outputs go: a directory every worker sees at the same path.")
        var outputDir: String

        @Option(help: "Also take the input paths listed in this file, one per line.")
        var filesFrom: String?

        @Argument(help: "The pipeline.")
        var pipeline: String

        @Argument(
            parsing: .captureForPassthrough,
            help: "The pipeline's own options, then the input files."
        )
        var rest: [String] = []

        /// The pipeline and its own options are checked while parsing: a mistake is shown with this command's usage.
        func validate() throws {
            _ = try Self.split(self.rest, for: try self.readyPipeline())
        }

        func readyPipeline() throws -> any ReadyPipeline.Type {
            guard let pipeline = PipelineCatalog.named(self.pipeline) else {
                throw ValidationError(unknownPipelineMessage(self.pipeline))
            }
            return pipeline
        }

        func run() async throws {
            let pipeline = try self.readyPipeline()
            let (arguments, inputs) = try Self.split(self.rest, for: pipeline)
            var all = try inputs.map(Self.absolute)
            if let list = self.filesFrom {
                all += try await CommonRunOptions.paths(listedIn: list).map(Self.absolute)
            }
            guard !all.isEmpty else { throw ValidationError("no input files") }
            // Workers read the inputs, on machines of their own; here is only a hint that one may be misspelt.
            let unreadable = all.filter { access($0, R_OK) != 0 }
            if !unreadable.isEmpty {
                let named = unreadable.prefix(3).joined(separator: ", ") + (unreadable.count > 3 ? ", …" : "")
                CommonRunOptions.writeStandardError(
                    "sluice: warning: \(unreadable.count) of \(all.count) inputs cannot be read here (\(named)); "
                        + "their units fail unless the workers can read them at that path\n"
                )
            }
            if case .unsupported(let reason) = pipeline.resultMerge {
                CommonRunOptions.writeStandardError("sluice: note: \(reason): `job merge` will refuse this job\n")
            }
            let directory = try Self.absolute(self.outputDir)
            guard mkdir(directory, 0o755) == 0 || errno == EEXIST else {
                throw ValidationError("cannot create \(directory): \(String(cString: strerror(errno)))")
            }
            let job = ClusterStore.Job(
                name: self.job,
                pipeline: pipeline.name,
                arguments: arguments,
                outputDirectory: directory,
                inputs: all
            )
            let created = try await JobCommand.withStore(self.database.db) { store in
                try await store.submit(job)
            }
            CommonRunOptions.writeStandardError(
                created
                    ? "sluice: job '\(job.name)': \(all.count) units submitted\n"
                    : "sluice: job '\(job.name)' was already submitted with these settings: nothing changed\n"
            )
        }

        /// The pipeline's own options (checked by its parser) and the inputs after them.
        static func split(
            _ rest: [String],
            for pipeline: any ReadyPipeline.Type
        ) throws -> (arguments: [String], inputs: [String]) {
            // The inputs are the trailing arguments the pipeline's options do not take. None starts with "-", so the
            // options reach at least past the last argument that does; from there, the first prefix the parser
            // accepts (a ready pipeline's options are all named: there is one). Tried from the longest prefix
            // down, thousands of inputs cost as many parses of thousands of arguments (seconds).
            let lastOption = rest.lastIndex { $0.hasPrefix("-") && $0 != "-" }
            for cut in (lastOption.map { $0 + 1 } ?? 0)...rest.count {
                let options = Array(rest[..<cut])
                if (try? pipeline.validateArguments(options)) != nil { return (options, Array(rest[cut...])) }
            }
            do {
                try pipeline.validateArguments(rest)
            } catch {
                throw ValidationError(
                    "\(pipeline.name): \(pipeline.message(forArgumentError: error)) (a job takes the pipeline's own "
                        + "options, see `sluice describe \(pipeline.name)`, then its input files)"
                )
            }
            return (rest, [])
        }

        static func absolute(_ path: String) throws -> String {
            guard path != "-" else {
                throw ValidationError("a job's inputs are files: standard input cannot be shared")
            }
            if path.hasPrefix("/") { return path }
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
            guard getcwd(&buffer, buffer.count) != nil else { throw ValidationError("cannot read the directory") }
            let directory = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return directory + "/" + path
        }
    }

    struct Work: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Work on a job's units until none is pending or running (--wait: until stopped).",
            discussion: """
                The first SIGINT or SIGTERM finishes the units in hand (the one running, and the one before it, \
                committed while the next runs) and claims no more (exit 130 or 143); a second gives them back at once.
                """
        )

        @OptionGroup var database: Database

        @Option(help: "The job to work on (default: any job).")
        var job: String?

        @Option(help: "How long a claim holds without renewal (renewed every third of it).")
        var lease = DurationArgument(.seconds(30))

        @Option(help: "Attempts per unit before it fails for good.")
        var maxAttempts = 3

        @Flag(help: "Keep polling for new work when there is none.")
        var wait = false

        @Option(help: "Compute pool threads for each unit's run.")
        var workers: Int?

        @Flag(help: "Print nothing on standard error but errors.")
        var quiet = false

        func validate() throws {
            guard self.maxAttempts >= 1 else { throw ValidationError("--max-attempts must be at least 1") }
            guard self.lease.duration >= .seconds(1) else { throw ValidationError("--lease must be at least 1s") }
            if let workers = self.workers, workers < 1 { throw ValidationError("--workers must be at least 1") }
        }

        func run() async throws {
            let logger = WarningLogHandler.logger(quiet: self.quiet)
            let stop = ShutdownSignal()
            let signal = CaughtSignal()
            let settings = ClusterWorker.Settings(
                lease: self.lease.duration,
                maxAttempts: self.maxAttempts,
                wait: self.wait,
                logger: logger
            )
            // One compute pool for every unit's run: a run that made its own would start and stop its threads per
            // unit.
            let pool = try ComputePool(
                threads: self.workers ?? ComputePool.activeProcessorCount,
                name: "sluice-unit",
                priority: .yielding
            )
            var options = RunOptions(computePool: pool)
            options.logger = logger
            let runOptions = options
            let (database, job, pipelines, quiet) = (self.database.db, self.job, PipelineCatalog.pipelines, self.quiet)
            let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
            let summary: ClusterWorker.Summary?
            do {
                summary = try await Self.work(
                    database: database,
                    job: job,
                    settings: settings,
                    pipelines: pipelines,
                    runOptions: runOptions,
                    stop: stop,
                    signals: signals,
                    signal: signal,
                    quiet: quiet
                )
            } catch {
                await pool.shutdown()
                throw error
            }
            await pool.shutdown()
            if let summary, !self.quiet {
                CommonRunOptions.writeStandardError(
                    "sluice: worker done: \(summary.done) units done, \(summary.failedAttempts) failed attempts, "
                        + "\(summary.lost) lost leases\n"
                )
            }
            if stop.isRequested { throw ExitCode(signal.exitStatus) }
        }

        /// Runs the worker until it is done, and handles signals meanwhile: the first stops claiming, a second
        /// cancels it (its unit is given back). Returns the worker's summary, or `nil` when cancelled.
        static func work(
            database: String,
            job: String?,
            settings: ClusterWorker.Settings,
            pipelines: [any ReadyPipeline.Type],
            runOptions: RunOptions,
            stop: ShutdownSignal,
            signals: UnixSignalsSequence,
            signal: CaughtSignal,
            quiet: Bool
        ) async throws -> ClusterWorker.Summary? {
            try await withThrowingTaskGroup(of: ClusterWorker.Summary?.self) { group in
                group.addTask {
                    try await JobCommand.withStore(database) { store in
                        let worker = ClusterWorker(
                            store: store,
                            settings: settings,
                            pipelines: pipelines,
                            runOptions: runOptions
                        )
                        return try await worker.run(job: job, stop: stop)
                    }
                }
                group.addTask {
                    var received = 0
                    for await caught in signals {
                        received += 1
                        if received == 1 {
                            signal.record(caught)
                            stop.requestShutdown()
                            if !quiet {
                                CommonRunOptions.writeStandardError(
                                    "sluice: \(caught): finishing the units in hand (again: give them back at once)\n"
                                )
                            }
                        } else {
                            return nil  // a second signal: the worker is cancelled and releases its unit
                        }
                    }
                    return nil
                }
                defer { group.cancelAll() }
                do {
                    while let outcome = try await group.next() {
                        if let outcome { return outcome }
                        group.cancelAll()
                    }
                } catch is CancellationError {
                    return nil
                }
                return nil
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Where a job stands: units per state, rate, workers, failures."
        )

        @OptionGroup var database: Database

        @Option(help: "The job.")
        var job: String

        @Flag(help: "Print JSON.")
        var json = false

        func run() async throws {
            let status = try await JobCommand.withStore(self.database.db) { store in
                try await store.status(of: self.job)
            }
            print(self.json ? Self.json(status) : Self.text(status))
        }

        static func text(_ status: ClusterStore.Status) -> String {
            var lines = [
                "job \(status.job) (\(status.pipeline)): \(status.done)/\(status.total) done, \(status.running) running, "
                    + "\(status.pending) pending, \(status.failed) failed; \(status.doneLastMinute) done in the last minute",
                "workers seen in the last 2 minutes: \(status.liveWorkers.count)",
            ]
            for (worker, done) in status.liveWorkers.sorted(by: { $0.key < $1.key }) {
                lines.append("  \(worker): \(done) units done")
            }
            for failure in status.failures {
                lines.append(
                    "failed: unit \(failure.position) (\(failure.input)) after \(failure.attempts) attempts: \(failure.error)"
                )
            }
            return lines.joined(separator: "\n")
        }

        static func json(_ status: ClusterStore.Status) -> String {
            func quote(_ text: String) -> String { JSON.quote(text) }
            let failures = status.failures.map {
                "{\"position\":\($0.position),\"input\":\(quote($0.input)),\"attempts\":\($0.attempts),"
                    + "\"error\":\(quote($0.error))}"
            }
            let workers = status.liveWorkers.sorted(by: { $0.key < $1.key }).map { "\(quote($0.key)):\($0.value)" }
            return "{\"job\":\(quote(status.job)),\"pipeline\":\(quote(status.pipeline)),\"total\":\(status.total),"
                + "\"pending\":\(status.pending),\"running\":\(status.running),\"done\":\(status.done),"
                + "\"failed\":\(status.failed),\"done_last_minute\":\(status.doneLastMinute),"
                + "\"workers\":{\(workers.joined(separator: ","))},\"failures\":[\(failures.joined(separator: ","))]}"
        }
    }

    struct Merge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Combine a finished job's unit results in input order, as one run over all the inputs would."
        )

        @OptionGroup var database: Database

        @Option(help: "The job.")
        var job: String

        @Option(name: .shortAndLong, help: "The output file (a .gz name means gzip); - for standard output.")
        var output = "-"

        func run() async throws {
            let pipelines = PipelineCatalog.pipelines
            let (job, output) = (self.job, self.output)
            try await JobCommand.withStore(self.database.db) { store in
                try await ClusterMerge.merge(job: job, store: store, pipelines: pipelines, output: output)
            }
        }
    }
}

enum JobCommand {
    /// Runs `body` with the store of the database at `url`, its schema brought up to date; a coordinator error
    /// becomes a one-line message and exit 1.
    static func withStore<Result: Sendable>(
        _ url: String,
        _ body: (ClusterStore) async throws -> Result
    ) async throws -> Result {
        do {
            return try await ClusterDatabase.with(url: url) { database in
                let store = ClusterStore(database: database)
                try await store.migrate()
                return try await body(store)
            }
        } catch let error as ClusterError {
            CommonRunOptions.printError("\(error)")
            throw ExitCode.failure
        } catch let error as ExitCode {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            CommonRunOptions.printError(ClusterDatabase.describe(error))
            throw ExitCode.failure
        }
    }
}
