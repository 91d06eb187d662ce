import CGlibcExtras
import Testing

@testable import SluiceCommand

#if canImport(Glibc)
import Glibc
#endif

/// The built `sluice` binary, next to the test bundle.
let sluice: String = {
    let bundle = CommandLine.arguments[0]
    let directory = bundle.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
    return directory + "/sluice"
}()

/// Runs `sluice` with `arguments` through the shell (so redirections work) and returns its exit status.
@discardableResult
func runSluice(_ arguments: String) async throws -> Int32 {
    try await Shell.run("'\(sluice)' \(arguments)")
}

@Suite("sluice CLI, end to end", .timeLimit(.minutes(2)))
struct CLITests {
    @Test func eachPipeline_matchesItsUnixEquivalent() async throws {
        let directory = TemporaryDirectory()
        let input = directory.file("in.txt")
        try writeFile(input, sampleText(lines: 20_000))
        try await Shell.check("gzip -c '\(input)' > '\(directory.file("in.gz"))'")
        let gz = directory.file("in.gz")
        let out = directory.path
        // cat: gzip in, gzip out, byte for byte the same text.
        #expect(try await runSluice("run cat '\(gz)' -o '\(out)/cat.gz' --gzip-level 1") == 0)
        try await Shell.check("gzip -t '\(out)/cat.gz' && gzip -dc '\(out)/cat.gz' | cmp -s - '\(input)'")
        // grep and grep --invert, like LC_ALL=C grep -F (-a: the sample has NUL bytes, which make grep say
        // "binary file matches" instead of printing the lines).
        #expect(try await runSluice("run grep --pattern 'status=200' '\(gz)' > '\(out)/grep.txt'") == 0)
        try await Shell.check("LC_ALL=C grep -aF 'status=200' '\(input)' | cmp -s - '\(out)/grep.txt'")
        #expect(try await runSluice("run grep --invert --pattern 'timeout' '\(gz)' -o '\(out)/grepv.txt'") == 0)
        try await Shell.check("LC_ALL=C grep -avF 'timeout' '\(input)' | cmp -s - '\(out)/grepv.txt'")
        // wc, with invalid UTF-8, NUL and CR in the input.
        #expect(try await runSluice("run wc '\(gz)' > '\(out)/wc.txt'") == 0)
        try await Shell.check(
            "test \"$(cat '\(out)/wc.txt')\" = \"$(LC_ALL=C wc < '\(input)' | tr -s ' ' | sed 's/^ //')\""
        )
        // wordfreq, against tr | sort | uniq -c | sort.
        #expect(try await runSluice("run wordfreq --top 7 '\(gz)' > '\(out)/freq.txt'") == 0)
        try await Shell.check(
            "LC_ALL=C tr -cs 'A-Za-z0-9' '\\n' < '\(input)' | tr 'A-Z' 'a-z' | grep -v '^$' | LC_ALL=C sort "
                + "| uniq -c | LC_ALL=C sort -k1,1nr -k2,2 | head -7 | sed 's/^ *//' | cmp -s - '\(out)/freq.txt'"
        )
    }

    @Test func jsonFilter_andItsErrorPolicies() async throws {
        let directory = TemporaryDirectory()
        let input = directory.file("events.ndjson")
        try writeFile(
            input,
            Array(
                """
                {"level":"error","msg":"disk full"}
                {"level":"info","msg":"ok"}
                not json at all
                {"level":"error","n":{"nested":"level"}}
                [1,2,3]
                {"level":5}

                """.utf8
            )
        )
        let out = directory.path
        // stop (the default): exit 1, naming the file and the line.
        let stop = try await runSluice(
            "run json-filter --field level --equals error '\(input)' -o '\(out)/o.txt' 2> '\(out)/err.txt'"
        )
        #expect(stop == 1)
        try await Shell.check("grep -q 'events.ndjson, line 3: not valid JSON' '\(out)/err.txt'")
        try await Shell.check("grep -q \"stage 'parse'\" '\(out)/err.txt'")
        // skip: the good lines, unchanged.
        #expect(
            try await runSluice(
                "run json-filter --field level --equals error --on-error skip '\(input)' "
                    + "--stats-json '\(out)/stats.json' > '\(out)/skip.txt'"
            ) == 0
        )
        try await Shell.check(
            "printf '%s\\n' '{\"level\":\"error\",\"msg\":\"disk full\"}' '{\"level\":\"error\",\"n\":{\"nested\":\"level\"}}' "
                + "| cmp -s - '\(out)/skip.txt'"
        )
        try await Shell.check(
            "python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); "
                + "p=[x for x in s[\"stages\"] if x[\"name\"]==\"parse\"][0]; assert p[\"skipped\"]==2, p; "
                + "assert p[\"retries\"]==0 and p[\"dead_lettered\"]==0 and p[\"timed_out\"]==0, p; "
                + "assert p[\"records_in\"]==6' '\(out)/stats.json'"
        )
        // dead-letter: one JSON line per bad record, with its source and line.
        #expect(
            try await runSluice(
                "run json-filter --field level --equals error --on-error dead-letter --dead-letter '\(out)/bad.ndjson' "
                    + "'\(input)' > /dev/null"
            ) == 0
        )
        try await Shell.check(
            "python3 -c 'import json,sys; l=[json.loads(x) for x in open(sys.argv[1])]; "
                + "assert [x[\"line\"] for x in l]==[3,5], l; assert l[0][\"record\"]==\"not json at all\"; "
                + "assert l[0][\"source\"].endswith(\"events.ndjson\")' '\(out)/bad.ndjson'"
        )
    }

    @Test func exitStatus_ofEachFailureClass() async throws {
        let directory = TemporaryDirectory()
        try writeFile(directory.file("in.txt"), sampleText(lines: 5_000))
        try await Shell.check("gzip -c '\(directory.file("in.txt"))' | head -c 20000 > '\(directory.file("cut.gz"))'")
        let out = directory.path
        #expect(try await runSluice("run nope 2> '\(out)/e1'") == 64)
        try await Shell.check("grep -q 'known pipelines: cat, grep, wc, wordfreq, json-filter' '\(out)/e1'")
        #expect(try await runSluice("run grep '\(directory.file("in.txt"))' 2> /dev/null") == 64)  // --pattern missing
        #expect(try await runSluice("run wc --top 3 2> /dev/null < /dev/null") == 64)  // not an option of wc
        #expect(try await runSluice("run cat '\(out)/missing.txt' 2> '\(out)/e2' > /dev/null") == 1)
        try await Shell.check("grep -q 'missing.txt: notFound' '\(out)/e2'")
        #expect(try await runSluice("run cat '\(out)/cut.gz' -o '\(out)/o.gz' 2> '\(out)/e3'") == 1)
        try await Shell.check(
            "grep -q \"stage 'read' failed\" '\(out)/e3' && grep -q 'cut.gz: truncatedGzip at byte 20000' '\(out)/e3'"
        )
        try await Shell.check("gzip -t '\(out)/o.gz'")  // even then, the output is valid
    }

    @Test func codec_forcesOneBackend_andAJobItCannotDoIsAUsageError() async throws {
        let directory = TemporaryDirectory()
        let out = directory.path
        try writeFile(directory.file("in.txt"), sampleText(lines: 5_000))
        try await Shell.check("gzip -c '\(directory.file("in.txt"))' > '\(out)/in.gz'")
        for (codec, level) in [("zlib", 6), ("isal", 1), ("libdeflate", 6), ("automatic", 9)] {
            let input = codec == "libdeflate" ? "in.txt" : "in.gz"
            #expect(
                try await runSluice(
                    "run cat --codec \(codec) --gzip-level \(level) '\(out)/\(input)' -o '\(out)/\(codec).gz'"
                ) == 0
            )
            try await Shell.check(
                "gzip -t '\(out)/\(codec).gz' && zcat '\(out)/\(codec).gz' | cmp -s - '\(out)/in.txt'"
            )
        }
        #expect(
            try await runSluice("run cat --codec isal --gzip-level 6 '\(out)/in.txt' -o '\(out)/x.gz' 2> '\(out)/e1'")
                == 64
        )
        try await Shell.check("grep -q 'isal writes gzip levels 1 to 3 only' '\(out)/e1'")
        #expect(
            try await runSluice("run cat --codec isal --gzip-level 0 '\(out)/in.txt' -o '\(out)/x.gz' 2> /dev/null")
                == 64
        )
        // The codec forced for reading leaves a plain output be, at the default level 6.
        #expect(try await runSluice("run wc --codec isal '\(out)/in.gz' > '\(out)/wc.txt'") == 0)
        try await Shell.check("test \"$(cat '\(out)/wc.txt')\" = \"$(LC_ALL=C wc < '\(out)/in.txt' | xargs)\"")
        #expect(try await runSluice("run cat --codec isal '\(out)/in.gz' -o '\(out)/plain.txt'") == 0)
        try await Shell.check("cmp -s '\(out)/plain.txt' '\(out)/in.txt'")
        #expect(try await runSluice("run wc --codec libdeflate '\(out)/in.gz' 2> '\(out)/e2'") == 64)
        try await Shell.check("grep -q 'libdeflate cannot read gzip input' '\(out)/e2'")
        #expect(try await runSluice("run wc --codec brotli '\(out)/in.txt' 2> /dev/null") == 64)
    }

    @Test func aClosedStandardStream_isNamed_andNoFileTakesItsPlace() async throws {
        let directory = TemporaryDirectory()
        let input = directory.file("in.txt")
        try writeFile(input, sampleText(lines: 100))
        let err = directory.file("err")
        #expect(try await runSluice("run wc <&- 2> '\(err)'") == 1)
        try await Shell.check("grep -q 'standard input is closed' '\(err)'")
        #expect(try await runSluice("run cat '\(input)' >&- 2> '\(err)'") == 1)
        try await Shell.check("grep -q 'standard output is closed' '\(err)'")
        // Without standard error, the error message goes nowhere — not into the output file — and the status says it.
        let output = directory.file("out.txt")
        #expect(try await runSluice("run cat '\(input)' '\(directory.file("missing"))' -o '\(output)' 2>&-") == 1)
        try await Shell.check("! grep -aq sluice '\(output)'")
        // A stream the run does not use may be closed.
        #expect(try await runSluice("run cat '\(input)' -o '\(output)' <&-") == 0)
        #expect(try readFile(output) == (try readFile(input)))
    }

    @Test func refusesToWriteOverAnInput_alsoThroughAnotherPath() async throws {
        let directory = TemporaryDirectory()
        let input = directory.file("in.txt")
        let text = sampleText(lines: 100)
        try writeFile(input, text)
        try await Shell.check("mkdir '\(directory.file("sub"))' && ln -s '\(input)' '\(directory.file("link.txt"))'")
        #expect(try await runSluice("run cat '\(input)' -o '\(input)' 2> /dev/null") == 1)
        #expect(try await runSluice("run cat '\(input)' -o '\(directory.path)/sub/../in.txt' 2> /dev/null") == 1)
        let viaLink = "run cat '\(directory.file("link.txt"))' -o '\(input)' 2> '\(directory.file("e"))'"
        #expect(try await runSluice(viaLink) == 1)
        try await Shell.check("grep -q 'refusing to write the output over the input' '\(directory.file("e"))'")
        #expect(try readFile(input) == text)
    }

    @Test func standardInputAndOutput_andStats() async throws {
        let directory = TemporaryDirectory()
        let input = directory.file("in.txt")
        try writeFile(input, sampleText(lines: 3_000))
        try await Shell.check("LC_ALL=C grep -aF error '\(input)' > '\(directory.file("expected"))'")
        #expect(
            try await Shell.run(
                "gzip -c '\(input)' | '\(sluice)' run grep --pattern error --stats 2> '\(directory.file("stats"))' "
                    + "| cmp -s - '\(directory.file("expected"))'"
            ) == 0
        )
        try await Shell.check("grep -q 'bottleneck:' '\(directory.file("stats"))'")
        try await Shell.check("grep -q 'skipped  retried  dead-lettered  timed out' '\(directory.file("stats"))'")
        #expect(try await runSluice("list | grep -q '^wordfreq'") == 0)
        #expect(try await runSluice("describe json-filter | grep -q -- '--field <field>'") == 0)
        #expect(try await runSluice("run wordfreq --help | grep -q -- '--top <top>'") == 0)
        #expect(try await runSluice("run wordfreq --top 0 < /dev/null 2> /dev/null") == 64)  // its own validation
    }

    @Test func progress_onlyWhenAskedOrOnATerminal() async throws {
        let directory = TemporaryDirectory()
        let input = directory.file("in.txt")
        try writeFile(input, sampleText(lines: 20_000))
        let size = try readFile(input).count
        let err = directory.file("err")
        #expect(try await runSluice("run cat '\(input)' -o '\(directory.file("o")).gz' --progress 2> '\(err)'") == 0)
        // The last update says all of the input was read.
        try await Shell.check("grep -q 'of \(ProgressMeter.size(size)) (100%)' '\(err)'")
        // Also for a pipeline whose small result is written by a run of its own after the main one.
        #expect(try await runSluice("run wc '\(input)' --progress > /dev/null 2> '\(err)'") == 0)
        try await Shell.check("grep -q 'of \(ProgressMeter.size(size)) (100%)' '\(err)'")
        #expect(try await runSluice("run cat '\(input)' -o '\(directory.file("o")).gz' --no-progress 2> '\(err)'") == 0)
        #expect(try readFile(err).isEmpty)
        // Standard error is a file here, not a terminal: no progress by default.
        #expect(try await runSluice("run cat '\(input)' -o '\(directory.file("o")).gz' 2> '\(err)'") == 0)
        #expect(try readFile(err).isEmpty)
    }

    @Test(arguments: [(SIGINT, Int32(130)), (SIGTERM, Int32(143))])
    func aSignal_drainsGracefully_leavingAValidGzip(signal: Int32, status: Int32) async throws {
        let directory = TemporaryDirectory()
        let output = directory.file("out.gz")
        let process = try SpawnedProcess([sluice, "run", "cat", "-", "-o", output, "--gzip-level", "1"])
        // Feed enough varied text that compressed blocks reach the file (the writer buffers 256 KiB), then wait
        // until they have: the process is running and has produced output.
        let fed = sampleText(lines: 150_000, seed: 3)
        process.write(fed)
        try await waitForFile(output, toHold: 1_000)
        kill(process.pid, signal)
        #expect(await process.wait() == status)
        try await Shell.check("gzip -t '\(output)'")
        let written = try await Shell.run("gzip -dc '\(output)' > '\(directory.file("out.txt"))'")
        #expect(written == 0)
        let lines = splitLines(try readFile(directory.file("out.txt")))
        let expected = splitLines(fed)
        #expect(lines.count > 1_000)
        // Every line read went through, whole and in order.
        #expect(lines.elementsEqual(expected.prefix(lines.count)))
        process.closeInput()
    }
}

/// A child process with a pipe on its standard input, and optionally one on its standard output.
final class SpawnedProcess: Sendable {
    let pid: pid_t
    private let input: Int32
    /// The child's standard output, when captured.
    let output: OutputPipe?

    /// - Parameters:
    ///   - captureOutput: Whether the child's standard output goes to ``output``.
    ///   - gzipOutput: Whether that output is gzip, to decode as it arrives.
    init(_ arguments: [String], captureOutput: Bool = false, gzipOutput: Bool = false) throws {
        var ends: [Int32] = [0, 0]
        guard pipe2(&ends, O_CLOEXEC) == 0 else { throw Shell.Failed(command: "pipe", status: errno) }
        let output = captureOutput ? try OutputPipe(gzip: gzipOutput) : nil
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, ends[0], STDIN_FILENO)
        posix_spawn_file_actions_addclose(&actions, ends[1])
        if let output {
            posix_spawn_file_actions_adddup2(&actions, output.writeDescriptor, STDOUT_FILENO)
        }
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, arguments[0], &actions, nil, &argv, environ)
        close(ends[0])
        output?.closeWriter()  // the child holds the write end now: its exit ends the output
        guard spawned == 0 else { throw Shell.Failed(command: arguments[0], status: spawned) }
        self.pid = pid
        self.input = ends[1]
        self.output = output
    }

    func write(_ text: String) {
        self.write(Array(text.utf8))
    }

    func write(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(self.input, $0.baseAddress, $0.count) }
            if written <= 0 { return }
            offset += written
        }
    }

    func closeInput() {
        close(self.input)
    }

    /// Waits for the process to end (on a thread of the tests' own); returns its exit status (128 + the signal if
    /// a signal ended it). A test cancelled meanwhile (past its time limit) kills the process.
    func wait() async -> Int32 {
        await waitForExit(self.pid)
    }
}
