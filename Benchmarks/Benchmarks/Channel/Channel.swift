import AsyncAlgorithms
import Benchmark
import BenchmarkSupport
import Sluice

// The engine's hand-off, batched and per element, beside the baselines per element: AsyncStream,
// swift-async-algorithms' AsyncChannel and MultiProducerSingleConsumerAsyncChannel. One run shows the ratios.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .sluice(maxDuration: .seconds(3), maxIterations: 20)

    let records = 10_000_000
    // Each sample is one whole run; divide its time by the records for the cost per record.
    Benchmark("10M records batched through 3 stages") { benchmark in
        let report = try await Pipeline.from(0..<records).map { $0 &+ 1 }.reduce(into: 0) { $0 &+= $1 }.run()
        blackHole(report.result)
    }

    let elements = 100_000
    Benchmark("BoundedChannel, 100k single elements") { benchmark in
        let channel = try BoundedChannel<Int>(capacity: 16)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for value in 0..<elements { try await channel.send(value) }
                channel.finish()
            }
            var sum = 0
            for try await value in channel { sum &+= value }
            blackHole(sum)
            try await group.waitForAll()
        }
    }

    Benchmark("Baseline: AsyncStream, 100k single elements") { benchmark in
        // Unbounded: a plain stream has no backpressure (its other policies drop elements).
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for value in 0..<elements { continuation.yield(value) }
                continuation.finish()
            }
            var sum = 0
            for await value in stream { sum &+= value }
            blackHole(sum)
        }
    }

    Benchmark("Baseline: AsyncChannel, 100k single elements") { benchmark in
        let channel = AsyncChannel<Int>()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for value in 0..<elements { await channel.send(value) }
                channel.finish()
            }
            var sum = 0
            for await value in channel { sum &+= value }
            blackHole(sum)
        }
    }

    Benchmark("Baseline: MultiProducerSingleConsumerAsyncChannel, 100k single elements") { benchmark in
        var channelAndSource = MultiProducerSingleConsumerAsyncChannel.makeChannel(
            of: Int.self,
            backpressureStrategy: .watermark(low: 8, high: 16)
        )
        var channel = channelAndSource.takeChannel()
        let producer = SourceBox(consume channelAndSource.source)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for value in 0..<elements { try await producer.send(value) }
                producer.finish()
            }
            var sum = 0
            while let value = await channel.next() { sum &+= value }
            blackHole(sum)
            try await group.waitForAll()
        }
    }
}

/// Moves the channel's noncopyable source into the producing task; only that task uses it.
final class SourceBox: @unchecked Sendable {
    private var source: MultiProducerSingleConsumerAsyncChannel<Int, Never>.Source?

    init(_ source: consuming MultiProducerSingleConsumerAsyncChannel<Int, Never>.Source) {
        self.source = consume source
    }

    func send(_ value: Int) async throws {
        try await self.source!.send(value)
    }

    func finish() {
        self.source.take()?.finish()
    }
}
