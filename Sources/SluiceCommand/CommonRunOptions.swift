import ArgumentParser
import Pipelines
import Sluice
import Synchronization
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// The options every ready pipeline takes — inputs, output, gzip, workers, error policy, statistics — and the run
/// itself: signals, progress, exit status. ``RunPipeline`` adds a pipeline's own options.
struct CommonRunOptions: ParsableArguments {
    static let discussion = """
        Inputs are files, gzip or plain (found by their content), or `-` for standard input (the default).
        The output is a file (a name ending in .gz means gzip) or `-` for standard output (the default).
        Exit status: 0 success, 1 a pipeline error, 64 a usage error, 130 after a graceful drain on SIGINT,
        143 on SIGTERM; a second signal stops at once.
        Live input: every line read reaches the output within --max-delay (default 200ms), from a pipe as from
        a file followed with --follow, to standard output, a plain file or a .gz file.
        """

    enum OnError: String, ExpressibleByArgument, CaseIterable {
        case stop
        case skip
        case deadLetter = "dead-letter"
    }

    @Argument(help: "Input files; `-` is standard input (the default).")
    var inputs: [String] = []

    @Option(
        help: ArgumentHelp(
            "Also read the inputs named in this file, one path per line (`-`: standard input), after any given as "
                + "arguments: for lists of thousands of files.",
            valueName: "file"
        )
    )
    var filesFrom: String?

    @Option(name: .shortAndLong, help: "The output file (a .gz name means gzip); `-` is standard output.")
    var output = "-"

    @Option(help: "The gzip level of a .gz output, 0 to 9.")
    var gzipLevel = 6

    @Option(
        help: ArgumentHelp(
            "The gzip library: automatic, zlib, isal or libdeflate.",
            discussion: """
                automatic (the default) reads with ISA-L and writes with ISA-L at levels 1-3, libdeflate at 4-9, \
                zlib at 0. isal writes levels 1-3 only; libdeflate cannot read gzip (it inflates whole buffers only).
                """
        )
    )
    var codec: CodecArgument = CodecArgument(.automatic)

    @Option(help: "Compute pool threads (default: the processors online).")
    var workers: Int?

    @Option(help: "Batches each channel between two stages holds (a file reader's holds at least 16 chunks).")
    var channelCapacity = 4

    @Option(help: "The most records in one batch.")
    var batchSize = 4096

    @Option(help: "The longest record (line) accepted, in bytes.")
    var maxRecordBytes = 8 * 1024 * 1024

    @Option(help: "The most bytes of data in flight before reading waits (the run's memory budget).")
    var maxBytesInFlight = 32 * 1024 * 1024

    @Flag(
        name: [.customShort("F"), .long],
        help: "Keep reading the input files as they grow, like tail -F (plain files; rotation, truncation, creation)."
    )
    var follow = false

    @Option(
        help: ArgumentHelp(
            "The longest a line waits in the pipeline before it reaches the output, e.g. 200ms or 1s.",
            valueName: "duration"
        )
    )
    var maxDelay = DurationArgument(.milliseconds(200))

    @Option(help: "What parsing stages do with a malformed record: stop, skip or dead-letter.")
    var onError = OnError.stop

    @Option(help: "The NDJSON file malformed records go to, with --on-error dead-letter (emptied when the run starts).")
    var deadLetter: String?

    @Flag(help: "Append to the --dead-letter file instead of emptying it when the run starts.")
    var appendDeadLetters = false

    @Flag(help: "Print a per-stage table on standard error at the end, naming the bottleneck.")
    var stats = false

    @Option(help: "Write the per-stage statistics as JSON to this file.")
    var statsJson: String?

    @Option(
        help: ArgumentHelp(
            "Serve the run's metrics for Prometheus at http://HOST:PORT/metrics while it lasts (port 0: any free one).",
            valueName: "host:port"
        )
    )
    var metricsAddress: String?

    @Flag(
        inversion: .prefixedNo,
        help: "A progress line on standard error: bytes read of the input, rate, ETA (default: when it is a terminal)."
    )
    var progress: Bool?

    @Flag(help: "Print nothing on standard error but errors.")
    var quiet = false

    func validate() throws {
        guard (0...9).contains(self.gzipLevel) else { throw ValidationError("--gzip-level must be 0 to 9") }
        for (name, value) in [
            ("workers", self.workers ?? 1), ("channel-capacity", self.channelCapacity), ("batch-size", self.batchSize),
            ("max-record-bytes", self.maxRecordBytes), ("max-bytes-in-flight", self.maxBytesInFlight),
        ] where value < 1 {
            throw ValidationError("--\(name) must be at least 1")
        }
        if self.filesFrom == "-" && self.inputs.contains("-") {
            throw ValidationError("--files-from - reads the list from standard input, which cannot also be an input")
        }
        if self.onError == .deadLetter && self.deadLetter == nil {
            throw ValidationError("--on-error dead-letter needs --dead-letter FILE")
        }
        if self.codec.codec == .isal && !(1...3).contains(self.gzipLevel) && self.output.hasSuffix(".gz") {
            throw ValidationError("--codec isal writes gzip levels 1 to 3 only, not \(self.gzipLevel)")
        }
        if self.codec.codec == .libdeflate {
            let unreadable =
                self.inputs.isEmpty && self.filesFrom == nil ? "-" : self.inputs.first { $0 == "-" || Self.isGzip($0) }
            if let unreadable {
                throw ValidationError(
                    "--codec libdeflate cannot read gzip input ('\(unreadable)'): it inflates whole buffers only; "
                        + "use --codec zlib, isal or automatic"
                )
            }
        }
        if self.follow {
            if (self.inputs.isEmpty && self.filesFrom == nil) || self.inputs.contains("-") {
                throw ValidationError("--follow needs files: standard input ('-') cannot be followed")
            }
            for input in self.inputs where Self.isGzip(input) {
                throw ValidationError("--follow: '\(input)' is gzip, which cannot be followed (only plain files)")
            }
        }
    }

    /// Whether the regular file at `path` starts with gzip's magic bytes (a file that cannot be read is left to the
    /// run to report; a pipe or fifo is not read here, which would take its bytes).
    static func isGzip(_ path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return false }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var magic: [UInt8] = [0, 0]
        return Glibc.read(descriptor, &magic, 2) == 2 && magic == [0x1f, 0x8b]
    }

    /// Runs `pipeline` with its own `options` under these, as `sluice run` does: signals, progress, statistics,
    /// exit status.
    func run<P: ReadyPipeline>(_ pipeline: P.Type, options: P.Options) async throws {
        var inputs = self.inputs
        if let list = self.filesFrom {
            do {
                inputs += try await Self.paths(listedIn: list)
            } catch {
                Self.printError("cannot read the list of inputs: \(error)")
                throw ExitCode.failure
            }
        } else if inputs.isEmpty {
            inputs = ["-"]
        }
        for (closed, name, used) in [
            (STDIN_FILENO, "input", inputs.contains("-") || self.filesFrom == "-"),
            (STDOUT_FILENO, "output", self.output == "-"),
        ] where used && StandardStreams.isClosed(closed) {
            Self.printError("standard \(name) is closed (the process started without it)")
            throw ExitCode.failure
        }
        if let input = Self.input(inputs, sameAs: self.output) {
            Self.printError(
                "refusing to write the output over the input '\(input)' (the same file as '\(self.output)')"
            )
            throw ExitCode.failure
        }

        let shutdown = ShutdownSignal()
        var runOptions = RunOptions(
            channelCapacity: self.channelCapacity,
            batch: BatchLimits(maxRecords: self.batchSize),
            computeThreads: self.workers
        )
        runOptions.name = pipeline.name
        runOptions.shutdown = shutdown
        runOptions.maxDelay = self.maxDelay.duration
        runOptions.maxBytesInFlight = self.maxBytesInFlight
        // A warning only for a pool stalled a whole second: a busy machine is late by milliseconds.
        runOptions.lagProbe = LagProbe(interval: .milliseconds(100), warningThreshold: .seconds(1))
        runOptions.logger = WarningLogHandler.logger(quiet: self.quiet)
        let showProgress = !self.quiet && (self.progress ?? (isatty(STDERR_FILENO) == 1))
        let meter =
            showProgress ? ProgressMeter(totalBytes: self.follow ? nil : Self.totalSize(of: inputs)) : nil
        runOptions.monitor = meter?.monitor
        let errorPolicy: ErrorPolicy =
            switch self.onError {
            case .stop: .stop
            case .skip: .skip
            case .deadLetter:
                .deadLetter(.file(self.deadLetter ?? "dead-letters.ndjson", append: self.appendDeadLetters))
            }
        var invocation = Invocation(
            inputs: inputs,
            output: self.output,
            runOptions: runOptions,
            // libdeflate cannot inflate: its inputs were checked to be plain, which any reader reads.
            readOptions: ReadOptions(
                maxRecordBytes: self.maxRecordBytes,
                codec: self.codec.codec == .libdeflate ? .automatic : self.codec.codec
            ),
            writeOptions: WriteOptions(gzipLevel: self.gzipLevel, codec: self.codec.codec),
            errorPolicy: errorPolicy,
            follow: self.follow
        )

        var endpoint: MetricsEndpoint?
        if let address = self.metricsAddress {
            do {
                endpoint = try MetricsEndpoint(address: address)
            } catch {
                Self.printError("\(error)")
                throw ExitCode.failure
            }
            invocation.runOptions.metricsFactory = endpoint?.factory
            if !self.quiet, let url = endpoint?.url { Self.writeStandardError("sluice: metrics at \(url)\n") }
        }
        let signal = CaughtSignal()
        let report: RunReport<Void>
        do {
            let invocation = invocation
            report = try await Self.runHandlingSignals(
                { try await pipeline.run(invocation, options: options) },
                shutdown: shutdown,
                signal: signal,
                meter: meter,
                quiet: self.quiet
            )
            meter?.draw(final: true)
            await endpoint?.stop()
        } catch is CancellationError {
            await endpoint?.stop()
            Self.printError("stopped at once by a second signal")
            throw ExitCode(signal.exitStatus)
        } catch {
            await endpoint?.stop()
            Self.printError("\(error)")
            throw ExitCode.failure
        }
        if self.stats && !self.quiet {
            Self.writeStandardError("\(report)\n")
        }
        if let path = self.statsJson {
            do {
                try await StatsJSON.write(report, to: path)
            } catch {
                Self.printError("cannot write the statistics: \(error)")
                throw ExitCode.failure
            }
        }
        if report.interrupted {
            throw ExitCode(signal.exitStatus)
        }
    }

    /// Runs the pipeline; the first SIGINT or SIGTERM drains it gracefully, a second one cancels it.
    static func runHandlingSignals(
        _ run: @escaping @Sendable () async throws -> RunReport<Void>,
        shutdown: ShutdownSignal,
        signal: CaughtSignal,
        meter: ProgressMeter?,
        quiet: Bool
    ) async throws -> RunReport<Void> {
        enum Outcome: Sendable {
            case finished(RunReport<Void>)
            case secondSignal
            case ignored
        }
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        return try await withThrowingTaskGroup(of: Outcome.self) { group in
            group.addTask { .finished(try await run()) }
            group.addTask {
                var received = 0
                for await caught in signals {
                    received += 1
                    if received == 1 {
                        signal.record(caught)
                        shutdown.requestShutdown()
                        if !quiet {
                            Self.writeStandardError(
                                "sluice: \(caught): the inputs stop, what was read drains (again: stop at once)\n"
                            )
                        }
                    } else {
                        return .secondSignal
                    }
                }
                return .ignored
            }
            if let meter {
                group.addTask {
                    // A few updates a second, in real time: this is a display, not part of the run.
                    while (try? await Task.sleep(for: .milliseconds(250))) != nil {
                        meter.draw(final: false)
                    }
                    return .ignored
                }
            }
            defer { group.cancelAll() }
            while let outcome = try await group.next() {
                switch outcome {
                case .finished(let report): return report
                case .secondSignal:
                    group.cancelAll()
                    Self.exitUnlessEnded(within: Self.secondSignalGrace, status: signal.exitStatus)
                case .ignored: continue
                }
            }
            throw CancellationError()
        }
    }

    /// How long a run cancelled by a second signal may take to end before the process exits without it.
    static let secondSignalGrace: Duration = .seconds(1)

    /// After a second signal: a run cancelled ends within milliseconds (its gzip output closed properly) — unless a
    /// thread of it is stuck in a system call that cancellation cannot reach: a write to a pipe whose reader stopped
    /// reading, or the opening of a fifo no reader opens. The process then exits on its own after `grace`, as the
    /// second signal promised: what such an output would have received has nowhere to go.
    /// (A detached task: the run's cancellation does not reach it, and the stuck thread is an I/O thread of the run,
    /// not one of the cooperative pool's.)
    static func exitUnlessEnded(within grace: Duration, status: Int32) {
        Task.detached {
            try? await Task.sleep(for: grace)
            Self.printError("stopped at once by a second signal (an output was blocked: it is left as it is)")
            Glibc.exit(status)
        }
    }

    /// The paths listed in the file at `list`, one per line (empty lines skipped), read as any input is: plain or
    /// gzip, or standard input for `-`.
    static func paths(listedIn list: String) async throws -> [String] {
        try await Pipeline.lines(from: [list])
            .compactMap { $0.bytes.isEmpty ? nil : $0.string }
            .collect()
            .run(RunOptions(computeThreads: 1))
            .result
    }

    /// The input's size as stored, when every input is a file whose size is known.
    static func totalSize(of inputs: [String]) -> Int? {
        var total = 0
        for input in inputs {
            var info = stat()
            guard input != "-", stat(input, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
            total += Int(info.st_size)
        }
        return total
    }

    /// The input that is the same file as `output`, also when reached by another path.
    static func input(_ inputs: [String], sameAs output: String) -> String? {
        guard output != "-" else { return nil }
        var target = stat()
        guard stat(output, &target) == 0 else { return nil }
        for input in inputs where input != "-" {
            var candidate = stat()
            if stat(input, &candidate) == 0 && candidate.st_dev == target.st_dev && candidate.st_ino == target.st_ino {
                return input
            }
        }
        return nil
    }

    static func printError(_ message: String) {
        self.writeStandardError("sluice: \(message)\n")
    }

    static func writeStandardError(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}
