import Benchmark
import BenchmarkSupport
import Sluice

// Inflate into line batches; deflate at levels 1 and 6 on one and on two workers.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .sluice(maxDuration: .seconds(4), maxIterations: 10)

    let directory = "/tmp/sluice-benchmarks"
    let text = sampleText
    let compressed = sampleGzip
    Benchmark("inflate 20 MB into line batches") { benchmark in
        try await SampleData.prepare(text: text, compressed: compressed)
        benchmark.startMeasurement()
        let report = try await Pipeline.lines(from: [compressed]).drain().run()
        benchmark.stopMeasurement()
        blackHole(report.result)
    }
    for level in [1, 6] {
        for workers in [1, 2] {
            Benchmark("deflate 20 MB at level \(level), \(workers) worker(s)") { benchmark in
                try await SampleData.prepare(text: text, compressed: compressed)
                benchmark.startMeasurement()
                try await Pipeline.lines(from: [text])
                    .write(
                        to: "\(directory)/out-\(level)-\(workers).gz",
                        options: WriteOptions(gzipLevel: level, compressionConcurrency: workers)
                    )
                    .run(RunOptions(computeThreads: 2))
                benchmark.stopMeasurement()
            }
        }
    }
}
