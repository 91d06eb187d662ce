import Testing

@testable import Sluice

/// The reader's channel: ``ReadOptions/readAhead`` chunks wait between the reader and the framing (the run's
/// channel capacity if that is more), counted in the byte budget like every chunk.
@Suite("Read-ahead", .timeLimit(.minutes(1)))
struct ReadAheadTests {
    /// Reads 2,000 lines of 100 bytes in 100-byte chunks into a last stage that holds the first line until the reader
    /// has had to wait; returns the line numbers that arrived and the run's report.
    private func readWhileTheEndWaits(
        readAhead: Int,
        channelCapacity: Int
    ) async throws -> (numbers: [Int], report: RunReport<Void>) {
        let directory = TemporaryDirectory()
        let line = [UInt8](repeating: 0x61, count: 99) + [0x0A]
        try writeFile(directory.file("in.txt"), Array((0..<2_000).map { _ in line }.joined()))
        let readerSuspended = EventCounter()
        var options = RunOptions(channelCapacity: channelCapacity, batch: BatchLimits(maxRecords: 10))
        options.hooks.onSendSuspended = { stage in
            if stage == "read" { readerSuspended.signal() }
        }
        let numbers = Collector<Int>()
        let report = try await Pipeline.lines(
            from: [directory.file("in.txt")],
            options: ReadOptions(chunkSize: 100, readAhead: readAhead)
        )
        .map { $0.lineNumber ?? 0 }
        .forEach(name: "end") { (number: Int) async in
            // Everything upstream fills up behind this line, the reader's channel last.
            if number == 1 { await readerSuspended.wait(beyond: 0) }
            numbers.append(number)
        }
        .run(options)
        return (numbers.all, report)
    }

    @Test func theReadersChannel_holdsReadAheadChunks_whenThatIsMoreThanTheChannelCapacity() async throws {
        let run = try await self.readWhileTheEndWaits(readAhead: 6, channelCapacity: 1)
        #expect(run.numbers == Array(1...2_000))
        // The reader waits only on a full channel: it held exactly `readAhead` chunks then.
        #expect(run.report[stage: "lines"]?.queueDepth.peak == 6)
        #expect((run.report[stage: "read"]?.blockedSends ?? 0) > 0)
    }

    @Test func theReadersChannel_holdsTheChannelCapacity_whenThatIsMore() async throws {
        let run = try await self.readWhileTheEndWaits(readAhead: 1, channelCapacity: 3)
        #expect(run.numbers == Array(1...2_000))
        #expect(run.report[stage: "lines"]?.queueDepth.peak == 3)
    }

    @Test func aReadAheadOfZero_isAConfigurationError() async throws {
        let directory = TemporaryDirectory()
        try writeFile(directory.file("in.txt"), Array("a\n".utf8))
        await #expect(throws: ConfigurationError.self) {
            try await Pipeline.lines(from: [directory.file("in.txt")], options: ReadOptions(readAhead: 0))
                .forEach { _ in }
                .run()
        }
    }
}
