import CGlibcExtras
import Logging
import Sluice
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The examples of README.md, verbatim, so they cannot rot. Change both together.
///
/// The examples use relative paths, so some tests change the working directory (`chdir`), which the whole process
/// shares: the suite is serialized, and no other test depends on the working directory (every other test uses
/// absolute paths, and its shell commands `cd` first).
@Suite("README examples", .serialized, .timeLimit(.minutes(1)))
struct ReadmeExampleTests {
    @Test func firstExample() async throws {
        // README: "A first pipeline"
        let pipeline = Pipeline.from(1...1_000_000)  // a Source: any Sequence, AsyncSequence or `Source`
            .map { $0 * $0 }  // per-record closures, applied batch by batch
            .filter { $0 % 3 == 0 }
            .reduce(into: 0) { $0 &+= $1 }  // the sink; its result is the run's result
        let report = try await pipeline.run()  // builds channels, runs every stage as a child task
        print("sum of squares divisible by 3:", report.result)
        print(report)  // per-stage records, busy / waiting / blocked shares, and the bottleneck
        // README end

        let expected = (1...1_000_000).map { $0 * $0 }.filter { $0 % 3 == 0 }.reduce(0, &+)
        #expect(report.result == expected)
        #expect(report.stages.map(\.name) == ["source", "map", "filter", "reduce"])
    }

    @Test func fanInAndFanOut() async throws {
        // README: "Fan-in and fan-out"
        let errors = Pipeline.from(["disk full", "timeout"])
        let warnings = Pipeline.from(["slow request"])
        let pipeline = Pipeline.merge(errors, warnings)  // both inputs at once, each in its own order
            .tee { branch in branch.map { "audit: \($0)" }.forEach { print($0) } }  // every record, also here
            .map { $0.uppercased() }
            .collect()
        let report = try await pipeline.run(RunOptions(channelCapacity: 8, batch: BatchLimits(maxRecords: 4096)))
        // README end

        #expect(report.result.sorted() == ["DISK FULL", "SLOW REQUEST", "TIMEOUT"])
    }

    @Test func computePool() async throws {
        let lines = ["The cat", "the DOG", "a cat"]
        @Sendable func normalise(_ line: String) -> String { line.lowercased() }
        @Sendable func tokenise(_ line: String) -> [String] { line.split(separator: " ").map(String.init) }
        // README: "CPU-heavy work: the compute pool"
        let counts = try await Pipeline.from(lines)
            .map(on: .compute) { normalise($0) }  // this stage's task runs on the run's compute pool
            .parallelMap(concurrency: 2, ordered: true, reorderWindow: 8) { tokenise($0) }  // batches on 2 workers
            .parallelReduce(into: [String: Int]()) { counts, words in
                for word in words { counts[word, default: 0] += 1 }
            } merge: { total, part in
                total.merge(part, uniquingKeysWith: +)
            }
            .run(RunOptions(computeThreads: 2))
        // README end

        #expect(counts.result == ["the": 2, "cat": 2, "dog": 1, "a": 1])
    }

    @Test func filesAndGzip() async throws {
        let directory = TemporaryDirectory()
        try writeFile(directory.file("access.log"), Array("GET /a\nGET /health\n".utf8))
        try await Shell.check("printf 'GET /health\\nPOST /b' | gzip -c > '\(directory.file("access.log.gz"))'")
        let cwd = UnsafeMutablePointer<CChar>.allocate(capacity: 4096)
        defer { cwd.deallocate() }
        getcwd(cwd, 4096)
        chdir(directory.path)
        defer { chdir(cwd) }
        // README: "Files and gzip"
        let report = try await Pipeline.lines(from: ["access.log.gz", "access.log"])  // gzip by content; "-": stdin
            .filter { !$0.contains("GET /health".utf8) }  // `Line`: bytes, no String unless you ask (`.string`)
            .write(to: "filtered.log.gz", options: WriteOptions(gzipLevel: 6))  // ".gz": gzip; "-": stdout
            .run()
        print(report.bytesRead, "bytes read,", report.bytesWritten, "written")
        // README end

        try await Shell.check("test \"$(gzip -dc filtered.log.gz)\" = \"$(printf 'POST /b\\nGET /a')\"")
    }

    @Test func shutdownPoliciesAndLogs() async throws {
        let directory = TemporaryDirectory()
        try writeFile(directory.file("events"), Array("1\nx\n3\n".utf8))
        try await Shell.check("cd '\(directory.path)' && gzip -c events > events.log.gz")
        struct Event: Sendable {
            var summary: String
            init(parsing line: Line) throws {
                guard Int(line.string) != nil else { throw TestError(id: 0) }
                self.summary = "event " + line.string
            }
        }
        @Sendable func enrich(_ event: Event) async throws -> Event { event }
        let cwd = UnsafeMutablePointer<CChar>.allocate(capacity: 4096)
        defer { cwd.deallocate() }
        getcwd(cwd, 4096)
        chdir(directory.path)
        defer { chdir(cwd) }
        // README: "Shutdown, error policies, timeouts, logs and metrics"
        let shutdown = ShutdownSignal()  // or run inside a ServiceGroup: its graceful shutdown does the same
        var options = RunOptions()
        options.shutdown = shutdown
        options.drainDeadline = .seconds(10)  // then cancel, naming the stages still busy
        options.logger = Logger(label: "ingest")  // lifecycle events; no logging by default
        let rejects = DeadLetters.file("rejects.ndjson")
        let report = try await Pipeline.lines(from: ["events.log.gz"])
            .map(name: "parse", onError: .deadLetter(rejects)) { try Event(parsing: $0) }
            .stage("enrich", timeout: .seconds(2), onError: .retry(.exponential(maxAttempts: 3), otherwise: .skip)) {
                try await enrich($0)
            }
            .map { $0.summary }
            .write(to: "summaries.gz")
            .run(options)
        print(report.interrupted, report[stage: "parse"]?.deadLettered ?? 0, report[stage: "enrich"]?.retries ?? 0)
        // README end

        #expect(!report.interrupted)
        #expect(report[stage: "parse"]?.deadLettered == 1)
        try await Shell.check("test \"$(gzip -dc summaries.gz)\" = \"$(printf 'event 1\\nevent 3')\"")
        try await Shell.check("grep -q '\"line\":2' rejects.ndjson")
    }

    @Test func customStageAndSink() async throws {
        // README: "Concepts" (your own stage and sink)
        /// Sums of consecutive pairs: a stage that keeps state across records and batches.
        struct PairSums: Stage {
            func run(input: StageInput<Int>, output: StageOutput<Int>) async throws {
                var first: Int?
                for try await batch in input {
                    for value in batch {
                        if let held = first {
                            try await output.emit(held + value)  // gathered into batches within the run's limits
                            first = nil
                        } else {
                            first = value
                        }
                    }
                }
                if let held = first { try await output.emit(held) }  // what is left at the end of the input
            }
        }

        /// The largest record: a sink, whose result is the run's.
        struct Largest: Sink {
            func run(input: StageInput<Int>) async throws -> Int? {
                var largest: Int?
                for try await batch in input {
                    for value in batch { largest = max(largest ?? value, value) }
                }
                return largest
            }
        }

        let report = try await Pipeline.from(1...9).stage(PairSums()).to(Largest()).run()
        print(report.result ?? 0)  // pairs (1,2) … (7,8) and 9: the largest sum is 15
        // README end

        #expect(report.result == 15)
        #expect(report.stages.map(\.name) == ["source", "stage", "sink"])
    }

    @Test func lineFields() async throws {
        let directory = TemporaryDirectory()
        let sample = String(#filePath.split(separator: "/").dropLast(3).joined(separator: "/"))
        try await Shell.check("cp '/\(sample)/Pipelines/Samples/access.log.gz' '\(directory.path)/'")
        let cwd = UnsafeMutablePointer<CChar>.allocate(capacity: 4096)
        defer { cwd.deallocate() }
        getcwd(cwd, 4096)
        chdir(directory.path)
        defer { chdir(cwd) }
        // README: "Files and gzip" (fields)
        let failed = try await Pipeline.lines(from: ["access.log.gz"])  // … "GET /path HTTP/1.1" 500 1234 …
            .filter { ($0.field(8)?.int ?? 0) >= 500 }  // the status: the ninth field
            .map { $0.field(6)?.string ?? "" }  // the path, as a String only for the lines kept
            .collect()
            .run()
        print(failed.result.count, "failed requests")
        // README end

        try writeFile("paths.txt", Array(failed.result.map { $0 + "\n" }.joined().utf8))
        try await Shell.check("gzip -dc access.log.gz | awk '$9 >= 500 { print $7 }' | cmp -s - paths.txt")
        #expect(!failed.result.isEmpty)
    }

    @Test func errorsAreCaughtAsDocumented() async throws {
        let directory = TemporaryDirectory()
        try writeFile(directory.file("events.log"), Array("1\nx\n3\n".utf8))
        struct Event: Sendable {
            var summary: String
            init(parsing line: Line) throws {
                guard Int(line.string) != nil else { throw TestError(id: 0) }
                self.summary = "event " + line.string
            }
        }
        let printed = Collector<String>()
        @Sendable func print(_ text: String) { printed.append(text) }  // what the example prints, kept
        let cwd = UnsafeMutablePointer<CChar>.allocate(capacity: 4096)
        defer { cwd.deallocate() }
        getcwd(cwd, 4096)
        chdir(directory.path)
        defer { chdir(cwd) }
        // README: "Errors, cancellation, early ends"
        for path in ["events.log", "missing.log"] {
            do {
                try await Pipeline.lines(from: [path])
                    .map(name: "parse") { try Event(parsing: $0) }
                    .forEach { print($0.summary) }
                    .run()
            } catch let error as PipelineError {
                if let file = error.underlying(as: FileError.self) {  // the input could not be read
                    print("cannot read \(file.path): \(file.code)")
                } else {  // a record could not be parsed: where it was
                    print(
                        "\(error.stage) failed on \(error.source ?? "?"), line \(error.line ?? 0): \(error.underlying)"
                    )
                }
            }
        }
        // README end

        #expect(
            printed.all.filter { !$0.hasPrefix("event") } == [
                "parse failed on events.log, line 2: TestError(id: 0)", "cannot read missing.log: notFound",
            ]
        )
    }

    @Test func liveStreams() async throws {
        let directory = TemporaryDirectory()
        try writeFile(directory.file("app.log"), Array("12:00 INFO start\n".utf8))
        let cwd = UnsafeMutablePointer<CChar>.allocate(capacity: 4096)
        defer { cwd.deallocate() }
        getcwd(cwd, 4096)
        chdir(directory.path)
        defer { chdir(cwd) }
        // README: "Live streams"
        let shutdown = ShutdownSignal()  // the CLI raises it on SIGINT / SIGTERM
        var options = RunOptions()
        options.shutdown = shutdown
        options.maxDelay = .milliseconds(100)  // the longest a line waits inside the run (default 200 ms)
        let run = Task {
            try await Pipeline.lines(following: ["app.log"])  // like tail -F: appends, rotation, truncation
                .filter { $0.contains(" ERROR ".utf8) }
                .write(to: "errors.log")  // each error line is in the file soon after it is in app.log
                .run(options)
        }
        // README end
        try await Shell.check("echo '12:01 ERROR disk full' >> app.log")
        try await waitUntil("errors.log", contains: "12:01 ERROR disk full\n")
        // README: "Live streams" (continued)
        // … later: stop reading, drain every line read, close the output.
        shutdown.requestShutdown()
        let report = try await run.value  // report.interrupted == true
        // README end

        #expect(report.interrupted)
        #expect(try readFile("errors.log") == Array("12:01 ERROR disk full\n".utf8))
    }

    @Test func customSourceWaitingForInput() async throws {
        var ends: [Int32] = [-1, -1]
        #expect(pipe2(&ends, O_CLOEXEC) == 0)
        // README: "Live streams", your own sources
        struct PipeLines: Source {
            let descriptor: Int32  // a pipe or socket you opened
            func run(into output: StageOutput<String>) async throws {
                var buffer = [UInt8](repeating: 0, count: 65_536)
                while try await output.waitUntilReadable(descriptor) {  // false: a graceful shutdown; stop
                    let count = read(descriptor, &buffer, buffer.count)  // will not block now
                    if count <= 0 { break }  // the end of the input (or an error)
                    try await output.emit(String(decoding: buffer[..<count], as: UTF8.self))
                }
            }
        }
        // README end
        let (readEnd, writeEnd) = (ends[0], ends[1])
        let run = Task { try await Pipeline.from(PipeLines(descriptor: readEnd)).collect().run() }
        _ = "hello".withCString { write(writeEnd, $0, 5) }
        close(writeEnd)
        #expect(try await run.value.result == ["hello"])
        close(readEnd)
    }
}
