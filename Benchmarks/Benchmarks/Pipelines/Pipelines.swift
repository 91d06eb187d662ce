import Benchmark
import BenchmarkSupport
import Pipelines
import Sluice

// Every ready pipeline, end to end, on the same 20 MB gzip input, output to /dev/null.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 1,
        maxDuration: .seconds(4),
        maxIterations: 10,
        thresholds: [.mallocCountTotal: .relaxed]
    )

    let values: [String: [String: String]] = [
        "grep": ["pattern": " 404 "],
        "wordfreq": ["top": "10"],
        "json-filter": ["field": "level", "equals": "error"],
    ]
    for pipeline in PipelineRegistry.all where pipeline.name != "json-filter" {
        let name = pipeline.name
        Benchmark("\(name) on 20 MB gzip") { benchmark in
            try await SampleData.prepare(text: sampleText, compressed: sampleGzip)
            let invocation = Invocation(
                inputs: [sampleGzip],
                output: "/dev/null",
                values: values[name] ?? [:],
                runOptions: RunOptions(computeThreads: 2)
            )
            benchmark.startMeasurement()
            blackHole(try await pipeline.run(invocation))
            benchmark.stopMeasurement()
        }
    }
}
