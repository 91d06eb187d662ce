import CGlibcExtras
import Synchronization
import Testing

@testable import Sluice

#if canImport(Glibc)
import Glibc
#endif

/// Live input: records reach the output while the input is still open, and waits for input end on shutdown and
/// on cancellation. Every check is event-driven: the test writes a line, then reads it back from the output before
/// it writes the next — a line held back shows as a read that times out, not as a slow pass.
@Suite("Live streams", .timeLimit(.minutes(1)))
struct LiveStreamTests {
    /// Options with a hook counting the reader's waits for input.
    static func options(waits: EventCounter? = nil) -> RunOptions {
        var options = RunOptions()
        if let waits {
            options.hooks.onInputWait = { _ in waits.signal() }
        }
        return options
    }

    @Test func aLineWrittenToAPipe_reachesAPlainOutput_beforeTheNextIsWritten() async throws {
        let input = try InputPipe()
        let output = try OutputPipe()
        let run = Task {
            try await Pipeline.lines(from: input.path)
                .filter { !$0.contains("skip".utf8) }
                .write(to: output.path)
                .run(Self.options())
        }
        for index in 0..<5 {
            input.write("skip this\nline \(index)\n")
            #expect(try await output.readLine() == "line \(index)")
        }
        input.closeWriter()
        let report = try await run.value
        #expect(!report.interrupted)
        #expect(report.stages.first { $0.name == "write" }?.recordsIn == 5)
    }

    @Test func aLineWrittenToAPipe_reachesAGzipOutput_whenItsBlockIsMaxDelayOld() async throws {
        let clock = ManualClock()
        let input = try InputPipe()
        let output = try OutputPipe(gzip: true)
        var options = Self.options()
        options.clock = clock
        options.maxDelay = .milliseconds(300)
        let run = Task {
            try await Pipeline.lines(from: input.path)
                .write(to: output.path, options: WriteOptions(compression: .gzip))
                .run(options)
        }
        for index in 0..<3 {
            let sleeps = clock.sleepStarted.value
            input.write("line \(index)\n")
            // The partial block waits for more lines, on the run's clock, for at most maxDelay.
            await clock.sleepStarted.wait(beyond: sleeps)
            #expect(clock.requested.last == .milliseconds(300))
            clock.advance(by: .milliseconds(300))
            #expect(try await output.readLine() == "line \(index)")
        }
        input.closeWriter()
        _ = try await run.value
    }

    @Test func underLoad_noIdleFlush_cutsGzipBlocksShort() async throws {
        // The input is never idle for long: blocks fill before their lines are maxDelay old (the manual clock
        // never moves here), so every block but the last is full — an idle flush on every pause would cut them short.
        let clock = ManualClock()
        let directory = TemporaryDirectory()
        let text = sampleText(lines: 40_000)
        try writeFile(directory.file("in.txt"), text)
        var options = Self.options()
        options.clock = clock
        let report = try await Pipeline.lines(from: directory.file("in.txt"))
            .write(to: directory.file("out.gz"), options: WriteOptions(gzipBlockSize: 64 * 1024))
            .run(options)
        let blocks = report[stage: "deflate"]?.recordsIn ?? 0
        #expect(blocks == (text.count + 64 * 1024 - 1) / (64 * 1024))
        try await Shell.check("gzip -dc '\(directory.file("out.gz"))' | cmp -s - '\(directory.file("in.txt"))'")
    }

    @Test func withOneComputeThread_aLiveInputStillFlows() async throws {
        // Reads block on their own I/O thread, so the single compute thread keeps framing and mapping.
        let input = try InputPipe()
        let output = try OutputPipe()
        var options = Self.options()
        options.computeThreads = 1
        let run = Task {
            try await Pipeline.lines(from: input.path)
                .map(on: .compute) { Line($0.string.uppercased()) }
                .write(to: output.path)
                .run(options)
        }
        for index in 0..<3 {
            input.write("line \(index)\n")
            #expect(try await output.readLine() == "LINE \(index)")
        }
        input.closeWriter()
        _ = try await run.value
    }

    @Test(arguments: [false, true])
    func aShutdown_beforeTheFirstByte_endsTheRun(fifo: Bool) async throws {
        let directory = TemporaryDirectory()
        let input = try InputPipe()
        let path = fifo ? directory.file("fifo") : input.path
        if fifo { #expect(mkfifo(path, 0o600) == 0) }  // no writer: opening it must not block either
        let waits = EventCounter()
        let shutdown = ShutdownSignal()
        var options = Self.options(waits: waits)
        options.shutdown = shutdown
        let run = Task { try await Pipeline.lines(from: path).collect().run(options) }
        await waits.wait(beyond: 0)
        shutdown.requestShutdown()
        let report = try await run.value
        #expect(report.interrupted)
        #expect(report.result.isEmpty)
    }

    @Test(arguments: [false, true])
    func aCancellation_beforeTheFirstByte_endsTheRun(fifo: Bool) async throws {
        let directory = TemporaryDirectory()
        let input = try InputPipe()
        let path = fifo ? directory.file("fifo") : input.path
        if fifo { #expect(mkfifo(path, 0o600) == 0) }
        let waits = EventCounter()
        let run = Task { try await Pipeline.lines(from: path).collect().run(Self.options(waits: waits)) }
        await waits.wait(beyond: 0)
        run.cancel()
        await #expect(throws: CancellationError.self) { try await run.value }
    }

    @Test(arguments: [false, true])
    func anOutputFifo_withoutAReader_isWaitedFor_untilTheRunIsCancelled(gzip: Bool) async throws {
        // open(2) of a fifo for writing waits for a reader, where a cancellation cannot reach it.
        let directory = TemporaryDirectory()
        let fifo = directory.file(gzip ? "out.gz" : "out")
        #expect(mkfifo(fifo, 0o600) == 0)
        try writeFile(directory.file("in.txt"), Array("one\ntwo\n".utf8))
        let read = EventCounter()
        let run = Task {
            try await Pipeline.lines(from: [directory.file("in.txt")])
                .map { line in
                    read.signal()
                    return line
                }
                .write(to: fifo)
                .run(RunOptions(computeThreads: 2))
        }
        // The run is under way, so its writer opens the fifo (or is about to): the cancellation must end the wait.
        await read.wait(beyond: 0)
        run.cancel()
        await #expect(throws: CancellationError.self) { try await run.value }
    }

    @Test(arguments: [false, true])
    func anOutputFifo_getsEveryLine_onceItsReaderComes(gzip: Bool) async throws {
        let directory = TemporaryDirectory()
        let fifo = directory.file(gzip ? "out.gz" : "out")
        #expect(mkfifo(fifo, 0o600) == 0)
        let text = sampleText(lines: 20_000)
        try writeFile(directory.file("in.txt"), text)
        let run = Task {
            try await Pipeline.lines(from: [directory.file("in.txt")])
                .write(to: fifo)
                .run(RunOptions(computeThreads: 2))
        }
        // The reader comes whenever it comes — before the writer tries, or while it waits.
        let received = try await BlockingThreads.run { () throws -> [UInt8] in
            let reader = open(fifo, O_RDONLY | O_CLOEXEC)
            guard reader >= 0 else { throw Shell.Failed(command: "open \(fifo)", status: errno) }
            defer { close(reader) }
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while case let count = read(reader, &buffer, buffer.count), count > 0 {
                bytes += buffer[..<count]
            }
            return bytes
        }
        _ = try await run.value
        try writeFile(directory.file("got"), received)
        if gzip { try await Shell.check("gzip -dc < '\(directory.file("got"))' > '\(directory.file("got.txt"))'") }
        #expect(try readFile(directory.file(gzip ? "got.txt" : "got")) == text)
    }

    @Test func aShutdown_whileWaitingAfterSomeLines_drainsThem_andDropsAPartialLine() async throws {
        let input = try InputPipe()
        let waits = EventCounter()
        let shutdown = ShutdownSignal()
        var options = Self.options(waits: waits)
        options.shutdown = shutdown
        let run = Task { try await Pipeline.lines(from: input.path).map(\.string).collect().run(options) }
        await waits.wait(beyond: 0)
        let before = waits.value
        input.write("one\ntwo\npart")
        await waits.wait(beyond: before)  // read them, and waits again
        shutdown.requestShutdown()
        let report = try await run.value
        #expect(report.interrupted)
        #expect(report.result == ["one", "two"])
    }

    @Test func aGzipInputFromAPipe_isDecodedAsItArrives() async throws {
        // A writer that sync-flushes (as Sluice's gzip output does) is readable before it ends.
        let input = try InputPipe()
        let output = try OutputPipe()
        // One gzip member cut after its first sync-flushed block: header + block, no end yet.
        let compressor = GzipBlockCompressor(level: 6)
        defer { compressor.close() }
        let block = try compressor.compress(GzipBlock(data: Array("first\n".utf8), dictionary: []))
        let run = Task {
            try await Pipeline.lines(from: input.path).write(to: output.path).run(Self.options())
        }
        input.write(bytes: GzipBlockCompressor.header + block.bytes)
        #expect(try await output.readLine() == "first")
        input.closeWriter()
        // The member never ended: the run fails as truncated, after the line went through.
        await #expect(throws: PipelineError.self) { try await run.value }
    }
}

/// Following growing files, like `tail -F`.
@Suite("Following files", .timeLimit(.minutes(1)))
struct FollowTests {
    static func append(_ text: String, to path: String) async throws {
        try await Shell.check("printf '%s' '\(text)' >> '\(path)'")
    }

    /// With inotify's events, and without them (the system has no instance left: the file is looked at every
    /// 250 ms, as `tail -F` reverts to polling).
    @Test(arguments: [true, false])
    func follow_readsAppends_rotations_andTruncations_untilShutdown(inotify: Bool) async throws {
        let directory = TemporaryDirectory()
        let log = directory.file("app.log")
        try writeFile(log, Array("one\ntwo\n".utf8))
        let output = try OutputPipe()
        let waits = EventCounter()
        let logs = LogCapture()
        let shutdown = ShutdownSignal()
        var options = LiveStreamTests.options(waits: waits)
        options.shutdown = shutdown
        options.logger = logs.logger()
        options.hooks.inotifyExhausted = !inotify
        let run = Task {
            try await Pipeline.lines(following: [log]).write(to: output.path).run(options)
        }
        #expect(try await output.readLine() == "one")
        #expect(try await output.readLine() == "two")
        // Appended later: flows on as written.
        try await Self.append("three\n", to: log)
        #expect(try await output.readLine() == "three")
        // Rotated: what the old file got before the rotation is read, then the new file from its start.
        try await Shell.check("mv '\(log)' '\(log).1'")
        try await Self.append("four\n", to: "\(log).1")
        try await Self.append("new-1\n", to: log)
        #expect(try await output.readLine() == "four")
        #expect(try await output.readLine() == "new-1")
        // Truncated in place: read again from its start once the reader noticed.
        try await Shell.check(": > '\(log)'")
        await logs.wait(for: .warning, containing: "truncated")
        try await Self.append("after-truncation\n", to: log)
        #expect(try await output.readLine() == "after-truncation")
        // Only a shutdown ends a followed run: it stops while waiting for more (it looks every 250 ms at most).
        let before = waits.value
        await waits.wait(beyond: before)
        shutdown.requestShutdown()
        let report = try await run.value
        #expect(report.interrupted)
        #expect(report.stages.first { $0.name == "write" }?.recordsIn == 6)
        // Without inotify, a warning says so.
        #expect((logs.first("no inotify instance or watch left") != nil) == !inotify)
    }

    /// Follows a file of two lines; once both are out and the reader waits at their end, runs `change` (a shell
    /// command on the file, `$LOG`) and expects `line` next and a warning starting with `warning`; then shuts down.
    static func followTwoLines(thenRun change: String, expecting line: String, warning: String) async throws {
        let directory = TemporaryDirectory()
        let log = directory.file("app.log")
        try writeFile(log, Array("one\ntwo\n".utf8))
        let output = try OutputPipe()
        let waits = EventCounter()
        let logs = LogCapture()
        let shutdown = ShutdownSignal()
        var options = LiveStreamTests.options(waits: waits)
        options.shutdown = shutdown
        options.logger = logs.logger()
        let run = Task { try await Pipeline.lines(following: [log]).write(to: output.path).run(options) }
        #expect(try await output.readLine() == "one")
        #expect(try await output.readLine() == "two")
        // A wait started after the lines went out: the reader is at the end of what it read.
        await waits.wait(beyond: waits.value)
        try await Shell.check("LOG='\(log)'; \(change)")
        #expect(try await output.readLine() == line)
        #expect(logs.first(warning) != nil)
        shutdown.requestShutdown()
        let report = try await run.value
        #expect(report.interrupted)
        #expect(report.stages.first { $0.name == "write" }?.recordsIn == 3)
    }

    @Test func follow_ofAFileRewrittenPastThePointRead_readsItAgainFromItsStart() async throws {
        // Written over in place, longer than before: its size never shrinks, so only the bytes before the point
        // read tell the change (a truncation followed at once by an append looks the same).
        try await Self.followTwoLines(
            thenRun: "printf 'rewritten-from-its-start\\n' | dd of=\"$LOG\" conv=notrunc status=none",
            expecting: "rewritten-from-its-start",
            warning: "followed file truncated and written again past the point read: reading it again from its start"
        )
    }

    @Test func follow_ofAFileTruncatedThenWrittenPastItsStart_skipsTheHole() async throws {
        // logrotate's copytruncate with a writer that does not append: after the truncation it writes at its old
        // offset, and the file is a hole up to there. Whether the reader sees the truncation or only the result,
        // it goes on at the data, not through a megabyte of zeros.
        try await Self.followTwoLines(
            thenRun:
                "truncate -s 0 \"$LOG\" && printf 'late\\n' | dd of=\"$LOG\" bs=1 seek=1048676 conv=notrunc status=none",
            expecting: "late",
            warning: "followed file truncated, then written past its start: skipping the hole"
        )
    }

    @Test(arguments: [true, false])
    func follow_ofAFileNotThereYet_waitsForIt(inotify: Bool) async throws {
        let directory = TemporaryDirectory()
        let log = directory.file("app.log")
        let output = try OutputPipe()
        let logs = LogCapture()
        let shutdown = ShutdownSignal()
        var options = LiveStreamTests.options()
        options.shutdown = shutdown
        options.logger = logs.logger()
        options.hooks.inotifyExhausted = !inotify
        let run = Task { try await Pipeline.lines(following: [log]).write(to: output.path).run(options) }
        await logs.wait(for: .warning, containing: "waiting for it to appear")
        try await Self.append("first\n", to: log)
        #expect(try await output.readLine() == "first")
        try await Self.append("second\n", to: log)
        #expect(try await output.readLine() == "second")
        shutdown.requestShutdown()
        let report = try await run.value
        #expect(report.interrupted)
        #expect(report.stages.first { $0.name == "write" }?.recordsIn == 2)
    }

    @Test func follow_shutdownWhileWaitingForAFileToAppear_endsTheRun() async throws {
        let directory = TemporaryDirectory()
        let logs = LogCapture()
        let shutdown = ShutdownSignal()
        var options = LiveStreamTests.options()
        options.shutdown = shutdown
        options.logger = logs.logger()
        let run = Task { try await Pipeline.lines(following: [directory.file("app.log")]).collect().run(options) }
        await logs.wait(for: .warning, containing: "waiting for it to appear")
        shutdown.requestShutdown()
        let report = try await run.value
        #expect(report.interrupted)
        #expect(report.result.isEmpty)
    }

    @Test func follow_cancelledWhileWaitingForAFileToAppear_endsAtOnce() async throws {
        let directory = TemporaryDirectory()
        let logs = LogCapture()
        var options = LiveStreamTests.options()
        options.logger = logs.logger()
        let run = Task { try await Pipeline.lines(following: [directory.file("app.log")]).drain().run(options) }
        await logs.wait(for: .warning, containing: "waiting for it to appear")
        run.cancel()
        await #expect(throws: CancellationError.self) { try await run.value }
    }

    @Test func follow_inADirectoryThatDoesNotExist_failsNamingThePath() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("no-such-directory/app.log")
        do {
            _ = try await Pipeline.lines(following: [path]).drain().run()
            Issue.record("following \(path) should fail")
        } catch let error as PipelineError {
            let underlying = try #require(error.underlying as? FileError)
            #expect(underlying.code == .notFound)
            #expect(underlying.path == path)
            #expect("\(underlying)".contains("does not exist"))
        }
    }

    @Test func follow_ofSeveralFiles_interleavesThem() async throws {
        let directory = TemporaryDirectory()
        let (a, b) = (directory.file("a.log"), directory.file("b.log"))
        try writeFile(a, [])
        try writeFile(b, [])
        let output = try OutputPipe()
        let shutdown = ShutdownSignal()
        var options = LiveStreamTests.options()
        options.shutdown = shutdown
        let run = Task { try await Pipeline.lines(following: [a, b]).write(to: output.path).run(options) }
        try await Self.append("from b\n", to: b)
        #expect(try await output.readLine() == "from b")
        try await Self.append("from a\n", to: a)
        #expect(try await output.readLine() == "from a")
        shutdown.requestShutdown()
        #expect(try await run.value.interrupted)
    }

    @Test func follow_cancelledWhileWaiting_endsAtOnce() async throws {
        let directory = TemporaryDirectory()
        try writeFile(directory.file("app.log"), Array("x\n".utf8))
        let waits = EventCounter()
        let run = Task {
            try await Pipeline.lines(following: [directory.file("app.log")]).drain()
                .run(LiveStreamTests.options(waits: waits))
        }
        await waits.wait(beyond: 0)
        run.cancel()
        await #expect(throws: CancellationError.self) { try await run.value }
    }

    @Test(arguments: ["-", "gzip"])
    func follow_ofStandardInputOrGzip_failsNamingTheInput(kind: String) async throws {
        let directory = TemporaryDirectory()
        var path = "-"
        if kind == "gzip" {
            path = directory.file("in.gz")
            try await Shell.check("echo hello | gzip > '\(path)'")
        }
        do {
            _ = try await Pipeline.lines(following: [path]).drain().run()
            Issue.record("following \(path) should fail")
        } catch let error as PipelineError {
            let underlying = try #require(error.underlying as? FileError)
            #expect(underlying.code == .notFollowable)
            #expect(underlying.path == path)
        }
    }
}

/// Custom sources that wait for input the same way the file source does.
@Suite("Waiting for input in a custom source", .timeLimit(.minutes(1)))
struct SourceWaitTests {
    /// Reads lines from a descriptor, waiting with `waitUntilReadable`, emitting one record per read.
    struct DescriptorSource: Source {
        let descriptor: Int32

        func run(into output: StageOutput<String>) async throws {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while try await output.waitUntilReadable(self.descriptor) {
                let count = buffer.withUnsafeMutableBytes { read(self.descriptor, $0.baseAddress, $0.count) }
                if count <= 0 { break }
                // `emit` gathers records into a batch; the wait above sends the partial batch on first.
                try await output.emit(String(decoding: buffer[..<count], as: UTF8.self))
            }
        }
    }

    /// A pipe whose read end a source reads directly.
    static func pipeEnds() throws -> (read: Int32, write: Int32) {
        var ends: [Int32] = [-1, -1]
        guard pipe2(&ends, O_CLOEXEC) == 0 else { throw Shell.Failed(command: "pipe", status: errno) }
        return (ends[0], ends[1])
    }

    @Test func waitUntilReadable_deliversEachRead_beforeTheNext_andStopsOnShutdown() async throws {
        let ends = try Self.pipeEnds()
        defer {
            close(ends.read)
            close(ends.write)
        }
        let (records, sink) = AsyncStream.makeStream(of: String.self)
        let shutdown = ShutdownSignal()
        var options = RunOptions()
        options.shutdown = shutdown
        let run = Task {
            try await Pipeline.from(DescriptorSource(descriptor: ends.read)).forEach { sink.yield($0) }.run(options)
        }
        var iterator = records.makeAsyncIterator()
        for index in 0..<3 {
            _ = "message \(index)".withCString { write(ends.write, $0, strlen($0)) }
            #expect(await iterator.next() == "message \(index)")
        }
        shutdown.requestShutdown()
        let report = try await run.value
        #expect(report.interrupted)
        // The time spent waiting for the pipe counts as waiting, not as work.
        let source = try #require(report.stages.first)
        #expect(source.waitingForInput > .zero)
    }

    @Test func waitUntilReadable_endsOnCancellation() async throws {
        let ends = try Self.pipeEnds()
        defer {
            close(ends.read)
            close(ends.write)
        }
        let started = EventCounter()
        let run = Task {
            try await Pipeline.from(DescriptorSource(descriptor: ends.read)).forEach { _ in started.signal() }.run()
        }
        _ = "go".withCString { write(ends.write, $0, strlen($0)) }
        await started.wait(beyond: 0)  // the source is back in its wait
        run.cancel()
        await #expect(throws: CancellationError.self) { try await run.value }
    }

    /// A source that awaits messages that never come.
    struct SilentSource: Source {
        let gate: Gate
        let waiting: EventCounter

        func run(into output: StageOutput<Int>) async throws {
            try await output.emit(1)
            while let value = try await output.waitForInput({ () async -> Int in
                self.waiting.signal()
                await self.gate.wait()
                return 2
            }) {
                try await output.emit(value)
            }
        }
    }

    @Test func waitForInput_returnsNil_onShutdown_afterSendingWhatWasEmitted() async throws {
        let waiting = EventCounter()
        let gate = Gate()
        let (records, sink) = AsyncStream.makeStream(of: Int.self)
        let shutdown = ShutdownSignal()
        var options = RunOptions()
        options.shutdown = shutdown
        let run = Task {
            try await Pipeline.from(SilentSource(gate: gate, waiting: waiting)).forEach { sink.yield($0) }
                .run(options)
        }
        var iterator = records.makeAsyncIterator()
        #expect(await iterator.next() == 1)  // sent before the wait, not held for a full batch
        await waiting.wait(beyond: 0)
        shutdown.requestShutdown()
        #expect(try await run.value.interrupted)
        gate.open()
    }
}
