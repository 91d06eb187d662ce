import AsyncAlgorithms
import Benchmark
import Sluice

// The engine's hand-off, batched and per element, beside the baselines: AsyncStream per element,
// swift-async-algorithms' AsyncChannel. One run shows the ratios.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 1,
        maxDuration: .seconds(3),
        maxIterations: 20,
        thresholds: [.mallocCountTotal: .relaxed]
    )

    let records = 10_000_000
    Benchmark("10M records batched through 3 stages", configuration: .init(scalingFactor: .mega)) { benchmark in
        for _ in 0..<10 {
            let report = try await Pipeline.from(0..<records).map { $0 &+ 1 }.reduce(into: 0) { $0 &+= $1 }.run()
            blackHole(report.result)
        }
    }

    let elements = 100_000
    Benchmark("BoundedChannel, 100k single elements", configuration: .init(scalingFactor: .kilo)) { benchmark in
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

    Benchmark("Baseline: AsyncStream, 100k single elements", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self, bufferingPolicy: .bufferingNewest(16))
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

    Benchmark("Baseline: AsyncChannel, 100k single elements", configuration: .init(scalingFactor: .kilo)) { benchmark in
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
}
