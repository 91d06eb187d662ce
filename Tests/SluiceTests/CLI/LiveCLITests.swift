import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The CLI on live input: lines come out as they go in, signals end a run on silent input, `--follow`.
@Suite("sluice CLI on live input", .timeLimit(.minutes(2)))
struct LiveCLITests {
    @Test func grep_toStandardOutput_printsEachMatch_beforeTheNextLineComes() async throws {
        let process = try SpawnedProcess([sluice, "run", "grep", "--pattern", "hello"], captureOutput: true)
        let output = try #require(process.output)
        for index in 0..<3 {
            process.write("nothing here\nhello-\(index)\n")
            #expect(try await output.readLine() == "hello-\(index)")
        }
        process.closeInput()
        #expect(try await output.readLine() == nil)
        #expect(await process.wait() == 0)
    }

    @Test(arguments: [(SIGINT, Int32(130)), (SIGTERM, Int32(143))])
    func aSignal_onASilentStandardInput_endsTheRun_withAValidGzip(signal: Int32, status: Int32) async throws {
        let directory = TemporaryDirectory()
        let output = directory.file("out.gz")
        let process = try SpawnedProcess([sluice, "run", "cat", "-", "-o", output])
        try await waitUntilExists(output)  // the run started: its signal handlers are in place
        kill(process.pid, signal)
        #expect(await process.wait() == status)
        try await Shell.check("gzip -t '\(output)' && test -z \"$(gzip -dc '\(output)')\"")
        process.closeInput()
    }

    @Test func aSecondSignal_endsTheProcess_evenWithItsWriterStuckOnAPipeNobodyReads() async throws {
        // The reader of standard output takes one line, then stops reading: the pipe fills and the writer's
        // write(2) blocks, where cancellation cannot reach it. The first SIGINT drains (it cannot: the output is
        // stuck); the second must end the process all the same.
        let directory = TemporaryDirectory()
        let input = directory.file("in.txt")
        try writeFile(input, sampleText(lines: 300_000, seed: 5))
        let err = directory.file("err")
        let process = try SpawnedProcess(
            ["/bin/sh", "-c", "exec '\(sluice)' run cat '\(input)' 2> '\(err)'"],
            captureOutput: true
        )
        let output = try #require(process.output)
        #expect(try await output.readLine() != nil)  // the run started: its signal handlers are in place
        kill(process.pid, SIGINT)
        try await waitForFile(err, toHold: 20)  // the first signal was taken: the run drains
        kill(process.pid, SIGINT)
        #expect(await process.wait() == 130)
        try await Shell.check("grep -q 'stopped at once by a second signal' '\(err)'")
        process.closeInput()
    }

    @Test func cat_toAGzipOutput_makesEachLineReadable_whileTheRunGoesOn() async throws {
        // The .gz output is the test's pipe (a symlink to standard output), decoded as the bytes arrive: what a
        // reader of the growing file sees.
        let directory = TemporaryDirectory()
        let output = directory.file("out.gz")
        try await Shell.check("ln -s /dev/stdout '\(output)'")
        let process = try SpawnedProcess(
            [sluice, "run", "cat", "-", "-o", output, "--max-delay", "50ms"],
            captureOutput: true,
            gzipOutput: true
        )
        let decoded = try #require(process.output)
        for index in 0..<3 {
            process.write("line \(index)\n")
            #expect(try await decoded.readLine() == "line \(index)")
        }
        process.closeInput()
        #expect(try await decoded.readLine() == nil)
        #expect(await process.wait() == 0)
    }

    @Test func follow_passesOnAppends_andRotations_untilSIGINT() async throws {
        let directory = TemporaryDirectory()
        let log = directory.file("app.log")
        try writeFile(log, Array("one\n".utf8))
        let process = try SpawnedProcess([sluice, "run", "grep", "--pattern", "o", "-F", log], captureOutput: true)
        let output = try #require(process.output)
        #expect(try await output.readLine() == "one")
        try await Shell.check("echo two >> '\(log)'")
        #expect(try await output.readLine() == "two")
        try await Shell.check("mv '\(log)' '\(log).1' && echo four >> '\(log).1' && echo rotated >> '\(log)'")
        #expect(try await output.readLine() == "four")
        #expect(try await output.readLine() == "rotated")
        kill(process.pid, SIGINT)
        #expect(await process.wait() == 130)
        process.closeInput()
    }

    @Test func follow_andMaxDelay_usageErrors_exit64() async throws {
        let directory = TemporaryDirectory()
        try await Shell.check("echo hello | gzip > '\(directory.file("in.gz"))'")
        try await Shell.check("echo hello > '\(directory.file("in.txt"))'")
        let err = directory.file("err")
        #expect(try await runSluice("run cat -F - 2> '\(err)'") == 64)
        try await Shell.check("grep -q 'standard input' '\(err)'")
        #expect(try await runSluice("run cat --follow '\(directory.file("in.gz"))' 2> '\(err)'") == 64)
        try await Shell.check("grep -q 'in.gz' '\(err)'")
        #expect(try await runSluice("run cat '\(directory.file("in.txt"))' --max-delay 0ms 2> /dev/null") == 64)
        #expect(try await runSluice("run cat '\(directory.file("in.txt"))' --max-delay soon 2> /dev/null") == 64)
        #expect(try await runSluice("run cat '\(directory.file("in.txt"))' --max-delay 1.5s > /dev/null") == 0)
    }
}
