public import Benchmark

extension Benchmark.Configuration {
    /// What every Sluice suite measures: wall time and throughput to read, allocations to hold to a threshold
    /// (the stable metric on a VM without hardware counters).
    public static func sluice(maxDuration: Duration, maxIterations: Int) -> Benchmark.Configuration {
        .init(
            metrics: [.wallClock, .throughput, .mallocCountTotal],
            warmupIterations: 1,
            maxDuration: maxDuration,
            maxIterations: maxIterations,
            thresholds: [.mallocCountTotal: .relaxed]
        )
    }
}
