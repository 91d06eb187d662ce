import Benchmark
import BenchmarkSupport
import Pipelines
import Sluice

// Every ready pipeline, end to end, on the same 20 MB gzip log (json-filter: the same records as NDJSON), output
// to /dev/null.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .sluice(maxDuration: .seconds(4), maxIterations: 10)

    let values: [String: [String: String]] = [
        "grep": ["pattern": " 404 "],
        "wordfreq": ["top": "10"],
        "json-filter": ["field": "level", "equals": "error"],
    ]
    for pipeline in PipelineRegistry.all {
        let name = pipeline.name
        let input = name == "json-filter" ? sampleNDJSON : sampleGzip
        Benchmark("\(name) on 20 MB gzip") { benchmark in
            try await SampleData.prepare(text: sampleText, compressed: sampleGzip)
            if name == "json-filter" { try await SampleData.prepareNDJSON() }
            let invocation = Invocation(
                inputs: [input],
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
