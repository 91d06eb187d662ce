import Benchmark
import BenchmarkSupport
import Sluice

// Parallel map from 1 to 2 workers, ordered and unordered, and the cost of one job sent to the pool.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .sluice(maxDuration: .seconds(3), maxIterations: 20)

    @Sendable func hash(_ value: Int) -> UInt64 {
        var hash: UInt64 = 14_695_981_039_346_656_037
        for round in 0..<200 { hash = (hash ^ UInt64(truncatingIfNeeded: value &+ round)) &* 1_099_511_628_211 }
        return hash
    }

    for workers in [1, 2] {
        for ordered in [true, false] {
            let name = "parallelMap, \(workers) worker(s), \(ordered ? "ordered" : "unordered"), 200k records"
            Benchmark(name) { benchmark in
                let report = try await Pipeline.from(0..<200_000)
                    .parallelMap(concurrency: workers, ordered: ordered) { hash($0) }
                    .drain()
                    .run(RunOptions(computeThreads: 2))
                blackHole(report.result)
            }
        }
    }

    Benchmark("ComputePool.run round trip, 1k empty jobs") { benchmark in
        let pool = try ComputePool(threads: 2)
        benchmark.startMeasurement()
        for job in 0..<1_000 { blackHole(try await pool.run { job }) }
        benchmark.stopMeasurement()
        await pool.shutdown()
    }
}
