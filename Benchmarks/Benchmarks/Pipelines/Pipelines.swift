import Benchmark
import BenchmarkSupport
import Pipelines
import Sluice

// Every ready pipeline, end to end, on the same 20 MB gzip log (json-filter: the same records as NDJSON), output
// to /dev/null.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .sluice(maxDuration: .seconds(4), maxIterations: 10)

    let arguments: [String: [String]] = [
        "grep": ["--pattern", " 404 "],
        "wordfreq": ["--top", "10"],
        "json-filter": ["--field", "level", "--equals", "error"],
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
                runOptions: RunOptions(computeThreads: 2)
            )
            let own = arguments[name] ?? []
            benchmark.startMeasurement()
            blackHole(try await pipeline.run(invocation, arguments: own))
            benchmark.stopMeasurement()
        }
    }

    // wordfreq where the state is large (~200,000 distinct words), across batch sizes: a stage that carries state
    // must cost per batch what a stateless one does, however large its state.
    for batchSize in [4096, 64] {
        Benchmark("wordfreq on 20 MB high-cardinality gzip, batch \(batchSize)") { benchmark in
            try await SampleData.prepareHighCardinality()
            let invocation = Invocation(
                inputs: [highCardinalityGzip],
                output: "/dev/null",
                runOptions: RunOptions(batch: BatchLimits(maxRecords: batchSize), computeThreads: 2)
            )
            benchmark.startMeasurement()
            blackHole(try await WordFrequency.run(invocation, arguments: ["--top", "10"]))
            benchmark.stopMeasurement()
        }
    }
}
