import Testing

@testable import Sluice

/// Records every batch a sink receives: its size in records and in line bytes.
struct BatchShapes: Sink {
    let shapes: Collector<(records: Int, bytes: Int)>

    func run(input: StageInput<Line>) async throws {
        for try await batch in input {
            self.shapes.append((batch.count, batch.reduce(0) { $0 + $1.count }))
        }
    }
}

@Suite("Bounded memory and columnar line batches", .timeLimit(.minutes(3)))
struct BoundedMemoryTests {
    /// Frames `text` read in chunks of `chunkSize` into batches within `limits`; returns the lines and the batches.
    private func frame(
        _ text: [UInt8],
        chunkSize: Int,
        limits: BatchLimits,
        maxRecordBytes: Int = 1 << 20
    ) async throws -> (lines: [Line], shapes: [(records: Int, bytes: Int)], report: RunReport<Void>) {
        let directory = TemporaryDirectory()
        try writeFile(directory.file("in.txt"), text)
        let shapes = Collector<(records: Int, bytes: Int)>()
        let lines = Collector<Line>()
        let report = try await Pipeline.lines(
            from: [directory.file("in.txt")],
            options: ReadOptions(chunkSize: chunkSize, maxRecordBytes: maxRecordBytes)
        )
        .tee { $0.forEach { lines.append($0) } }
        .to(BatchShapes(shapes: shapes))
        .run(RunOptions(batch: limits, computeThreads: 2))
        return (lines.all, shapes.all, report)
    }

    @Test func linesStraddlingChunksAndBatches_areFramedExactly_withinTheLimits() async throws {
        // Random lines of 0–40 bytes, some ending in \r, the last one without \n; small chunks and batches so that
        // lines cross both kinds of boundaries everywhere.
        // Fewer lines under the thread sanitizer: one-byte chunks make a buffer per byte, ~20× slower there.
        let count = isThreadSanitized ? 400 : 3_000
        var generator = SplitMix(seed: 7)
        var text: [UInt8] = []
        var expected: [[UInt8]] = []
        for index in 0..<count {
            var line = (0..<Int(generator.next() % 41)).map { _ in UInt8(0x61 + generator.next() % 26) }
            if index % 7 == 0 { line.append(0x0D) }
            expected.append(line)
            text += line
            if index < count - 1 { text.append(0x0A) }
        }
        for (chunkSize, limits) in [
            (1, BatchLimits(maxRecords: 5, maxBytes: 64)), (7, BatchLimits(maxRecords: 3, maxBytes: 1 << 20)),
            (64, BatchLimits(maxRecords: 4096, maxBytes: 50)), (4096, BatchLimits()),
        ] {
            let framed = try await self.frame(text, chunkSize: chunkSize, limits: limits)
            #expect(framed.lines.map { Array($0.bytes) } == expected, "chunk size \(chunkSize)")
            #expect(framed.lines.map(\.lineNumber) == (1...count).map { $0 })
            #expect(framed.shapes.reduce(0) { $0 + $1.records } == count)
            for shape in framed.shapes {
                #expect(shape.records <= limits.maxRecords)
                // Over the byte limit only as a batch of one line.
                #expect(shape.bytes <= limits.maxBytes || shape.records == 1)
            }
            #expect(framed.report.peakBytesInFlight <= framed.report.bytesInFlightBound)
        }
    }

    @Test func aLineOfExactlyMaxRecordBytes_isALine_andOneByteMoreIsAnErrorWithItsOffset() async throws {
        let limit = 1_000
        let fits = [UInt8](repeating: 0x61, count: limit)
        let framed = try await self.frame(
            Array("first\n".utf8) + fits + [0x0A],
            chunkSize: 256,
            limits: BatchLimits(),
            maxRecordBytes: limit
        )
        #expect(framed.lines.map(\.count) == [5, limit])

        let directory = TemporaryDirectory()
        try writeFile(directory.file("long.txt"), Array("first\n".utf8) + fits + [0x61, 0x0A, 0x62])
        let result = await readUntilFailure([directory.file("long.txt")], maxRecordBytes: limit)
        #expect(result.lines == [Array("first".utf8)])
        let error = try #require(result.error as? PipelineError)
        let fileError = try #require(error.underlying as? FileError)
        #expect(fileError.code == .recordTooLong)
        #expect(fileError.offset == 6)
        #expect(fileError.path == directory.file("long.txt"))
    }

    @Test func aGzipOfManyNewlines_staysWithinTheByteBound() async throws {
        // Each newline is an empty line: the most records per compressed byte there is (1e8 newlines are ~100 KB
        // of gzip). Fewer under the thread sanitizer, which makes the run ~20× slower.
        let count = isThreadSanitized ? 2_000_000 : 20_000_000
        let directory = TemporaryDirectory()
        let bomb = directory.file("newlines.gz")
        try await Shell.check("head -c \(count) /dev/zero | tr '\\0' '\\n' | gzip -6 > '\(bomb)'")
        let report = try await Pipeline.lines(from: [bomb])
            .parallelReduce(into: 0) { lines, line in
                lines += 1 + line.count  // every line is empty
            } merge: {
                $0 += $1
            }
            .run(RunOptions(computeThreads: 2))
        #expect(report.result == count)
        #expect(report[stage: "read"]?.bytesOut == count)
        #expect(report.peakBytesInFlight > 0)
        #expect(report.peakBytesInFlight <= report.bytesInFlightBound)
        #expect(report.peakRecordsInFlight <= report.recordsInFlightBound)
    }

    @Test func longLines_gzip_areReadWhole_withinTheByteBound() async throws {
        // Lines of 16 MiB (1 MiB under the sanitizer) cross many chunks and exceed the batch byte limit: each is
        // copied once into a buffer of its own and travels alone.
        let length = isThreadSanitized ? 1 << 20 : 16 << 20
        let directory = TemporaryDirectory()
        let file = directory.file("long.gz")
        try await Shell.check(
            "(head -c \(length) /dev/zero | tr '\\0' 'a'; echo; echo short; head -c \(length) /dev/zero | tr '\\0' 'b')"
                + " | gzip -1 > '\(file)'"
        )
        let lengths = Collector<Int>()
        let report = try await Pipeline.lines(from: [file], options: ReadOptions(maxRecordBytes: length))
            .forEach { lengths.append($0.count) }
            .run(RunOptions(computeThreads: 2))
        #expect(lengths.all == [length, 5, length])
        #expect(report.peakBytesInFlight >= length)
        #expect(report.peakBytesInFlight <= report.bytesInFlightBound)
    }

    @Test func flatMap_cutsOneRecordsExpansionIntoBatches_underEveryPolicy() async throws {
        for skips in [false, true] {
            let directory = TemporaryDirectory()
            try writeFile(directory.file("in.txt"), Array("one\nboom\ntwo\n".utf8))
            let expansion = isThreadSanitized ? 100_000 : 1_000_000
            let shapes = Collector<(records: Int, bytes: Int)>()
            let report = try await Pipeline.lines(from: [directory.file("in.txt")])
                .flatMap(onError: skips ? .skip : .stop) { line -> [Line] in
                    if line == "boom" && skips { throw Boom() }
                    if line == "boom" { return [] }
                    return Array(repeating: line, count: line == "one" ? expansion : 1)
                }
                .to(BatchShapes(shapes: shapes))
                .run(RunOptions(batch: BatchLimits(maxRecords: 1_000), computeThreads: 2))
            #expect(shapes.all.reduce(0) { $0 + $1.records } == expansion + 1)
            #expect(shapes.all.allSatisfy { $0.records <= 1_000 })
            #expect(report.peakRecordsInFlight <= report.recordsInFlightBound)
            #expect(report.peakBytesInFlight <= report.bytesInFlightBound)
            #expect(report[stage: "flatMap"]?.skipped == (skips ? 1 : 0))
        }
    }

    @Test func filterAndSlices_keepTheBuffers_andSelectSlots() {
        let first = LineBuffer(Array("a\nbb\nccc\n".utf8), budget: nil)
        let second = LineBuffer(Array("dddd\n".utf8), budget: nil)
        var columns = LineColumns()
        for (buffer, start, end) in [(first, 0, 1), (first, 2, 4), (first, 5, 8), (second, 0, 4)] {
            let index = columns.add(buffer)
            columns.slots.append(LineSlot(start: start, end: end, number: 1, buffer: index, source: -1))
        }
        let batch = Batch(columns: columns)
        #expect(batch.map(\.string) == ["a", "bb", "ccc", "dddd"])

        let kept = batch.filtered { $0.count % 2 == 0 }
        #expect(kept.map(\.string) == ["bb", "dddd"])
        guard case .lines(let keptColumns) = kept.storage else {
            Issue.record("filter made rows")
            return
        }
        #expect(keptColumns.buffers.count == 2 && keptColumns.buffers[0] === first)

        // A slice keeps only the buffers its lines use.
        guard case .lines(let tail) = batch.slice(3..<4).storage else {
            Issue.record("slice made rows")
            return
        }
        #expect(tail.buffers.count == 1 && tail.buffers[0] === second && tail.slots[0].buffer == 0)

        // Appending shares the buffer at the seam.
        var joined = batch.slice(0..<2)
        joined.append(batch.slice(2..<4))
        guard case .lines(let joinedColumns) = joined.storage else {
            Issue.record("append made rows")
            return
        }
        #expect(joinedColumns.buffers.count == 2)
        #expect(joined.map(\.string) == ["a", "bb", "ccc", "dddd"])
    }

    @Test func runs_joinLinesBackToBack_andLeaveAnUnterminatedLineAlone() {
        let buffer = LineBuffer(Array("a\nbb\nccc\nlast".utf8), budget: nil)
        var columns = LineColumns()
        let index = columns.add(buffer)
        for (start, end) in [(0, 1), (2, 4), (5, 8), (9, 13)] {
            columns.slots.append(LineSlot(start: start, end: end, number: 1, buffer: index, source: -1))
        }
        var runs: [(String, Bool)] = []
        Batch(columns: columns).forEachRun { bytes, terminated in
            runs.append((String(decoding: bytes, as: UTF8.self), terminated))
        }
        #expect(runs.map(\.0) == ["a\nbb\nccc\n", "last"])
        #expect(runs.map(\.1) == [true, false])

        // A filter that drops a line in the middle breaks the run there.
        var split: [String] = []
        Batch(columns: columns).filtered { $0 != "bb" }.forEachRun { bytes, _ in
            split.append(String(decoding: bytes, as: UTF8.self))
        }
        #expect(split == ["a\n", "ccc\n", "last"])
    }

    @Test func byteGauge_countsEachBufferOnce_untilTheLastBatchLetsGo() {
        let gauge = ByteBudget(limit: 1 << 20)
        do {
            let buffer = LineBuffer([UInt8](repeating: 0x61, count: 1_000), budget: gauge)
            var columns = LineColumns()
            let index = columns.add(buffer)
            columns.slots.append(LineSlot(start: 0, end: 500, number: 1, buffer: index, source: -1))
            columns.slots.append(LineSlot(start: 500, end: 1_000, number: 2, buffer: index, source: -1))
            let batch = Batch(columns: columns)
            let halves = (batch.slice(0..<1), batch.slice(1..<2))
            #expect(gauge.value == 1_000)
            _ = halves
        }
        #expect(gauge.value == 0)
        #expect(gauge.peak == 1_000)
    }
}

private struct Boom: Error {}

/// A small deterministic generator for test data (SplitMix64): the same data for the same seed on every machine.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) {
        self.state = seed
    }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A sink that holds every batch (not its lines) until the run ends: what a reader's budget cannot get back.
struct HoardingSink: Sink {
    func run(input: StageInput<Line>) async throws -> Int {
        var hoard: [Batch<Line>] = []
        for try await batch in input {
            hoard.append(batch)
        }
        return hoard.reduce(0) { $0 + $1.count }
    }
}

@Suite("The budget of bytes in flight", .timeLimit(.minutes(2)))
struct ByteBudgetTests {
    @Test func aReaderWaitsForRoom_whileTheSinkIsSlow_andEveryLineArrives() async throws {
        let directory = TemporaryDirectory()
        let text = sampleText(lines: 20_000)  // ~1 MiB
        try writeFile(directory.file("in.txt"), text)
        let gate = Gate()
        let waits = EventCounter()
        let received = Collector<Int>()
        var options = RunOptions(computeThreads: 2)
        options.maxBytesInFlight = 64 << 10
        options.hooks.onInputWait = { _ in waits.signal() }  // a regular file waits only for room
        // The valve for stages that keep batches is tested on its own: on a loaded machine (a sanitizer, tests in
        // parallel) the sink may release nothing for seconds, and the valve would let the reader past the bound.
        options.hooks.byteBudgetStallLimit = .seconds(3_600)
        let read = ReadOptions(chunkSize: 16 << 10, maxRecordBytes: 4 << 10)
        async let run = Pipeline.lines(from: [directory.file("in.txt")], options: read)
            .forEach { line in
                await gate.wait()
                received.append(line.count)
            }
            .run(options)
        await waits.wait(beyond: 0)  // the reader stopped at the budget while the sink was held
        #expect(received.all.isEmpty)
        gate.open()
        let report = try await run
        #expect(received.all.count == 20_000)
        #expect(report.peakBytesInFlight <= report.bytesInFlightBound)
        #expect(report.bytesInFlightBound == (64 << 10) + 2 * (16 << 10) + (4 << 10))
        #expect(report.peakBytesInFlight < 1 << 20)  // never the whole file
    }

    @Test func aStageThatKeepsBatches_doesNotHangTheRun_andIsNamedInAWarning() async throws {
        let directory = TemporaryDirectory()
        try writeFile(directory.file("in.txt"), sampleText(lines: 5_000))
        let logs = LogCapture()
        var options = RunOptions(computeThreads: 2)
        options.maxBytesInFlight = 16 << 10
        options.logger = logs.logger()
        options.hooks.byteBudgetStallLimit = .milliseconds(20)
        let report = try await Pipeline.lines(
            from: [directory.file("in.txt")],
            options: ReadOptions(chunkSize: 8 << 10)
        )
        .to(HoardingSink())
        .run(options)
        #expect(report.result == 5_000)
        #expect(logs.all.contains { $0.level == .warning && $0.message.contains("a stage keeps batches") })
    }

    @Test func aShutdown_endsAReadersWaitForRoom() async throws {
        let directory = TemporaryDirectory()
        try writeFile(directory.file("in.txt"), sampleText(lines: 20_000))
        let gate = Gate()
        let waits = EventCounter()
        let shutdown = ShutdownSignal()
        var options = RunOptions(computeThreads: 2)
        options.maxBytesInFlight = 32 << 10
        options.shutdown = shutdown
        options.hooks.onInputWait = { _ in waits.signal() }
        let received = Collector<Int>()
        async let run = Pipeline.lines(from: [directory.file("in.txt")], options: ReadOptions(chunkSize: 8 << 10))
            .forEach { line in
                await gate.wait()
                received.append(line.lineNumber ?? 0)
            }
            .run(options)
        await waits.wait(beyond: 0)
        shutdown.requestShutdown()
        gate.open()
        let report = try await run
        #expect(report.interrupted)
        // What was read went through, in order; the rest of the file was never read.
        #expect(received.all == Array(1...received.all.count))
        #expect(received.all.count < 20_000)
    }
}
