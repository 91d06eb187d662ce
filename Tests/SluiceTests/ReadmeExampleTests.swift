import Sluice
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The examples of README.md, verbatim, so they cannot rot. Change both together.
@Suite("README examples", .timeLimit(.minutes(1)))
struct ReadmeExampleTests {
    @Test func firstExample() async throws {
        // README: "A first pipeline"
        let pipeline = Pipeline.from(1...1_000_000)  // a Source: any Sequence, AsyncSequence or `Source`
            .map { $0 * $0 }  // per-record closures, applied batch by batch
            .filter { $0 % 3 == 0 }
            .reduce(into: 0) { $0 &+= $1 }  // the sink; its result is the run's result
        let report = try await pipeline.run()  // builds channels, runs every stage as a child task
        print("sum of squares divisible by 3:", report.result)
        print(report)  // per-stage records, busy / waiting / blocked shares, and the bottleneck
        // README end

        let expected = (1...1_000_000).map { $0 * $0 }.filter { $0 % 3 == 0 }.reduce(0, &+)
        #expect(report.result == expected)
        #expect(report.stages.map(\.name) == ["source", "map", "filter", "reduce"])
    }

    @Test func fanInAndFanOut() async throws {
        // README: "Fan-in and fan-out"
        let errors = Pipeline.from(["disk full", "timeout"])
        let warnings = Pipeline.from(["slow request"])
        let pipeline = Pipeline.merge(errors, warnings)  // both inputs at once, each in its own order
            .tee { branch in branch.map { "audit: \($0)" }.forEach { print($0) } }  // every record, also here
            .map { $0.uppercased() }
            .collect()
        let report = try await pipeline.run(RunOptions(channelCapacity: 8, batch: BatchLimits(maxRecords: 4096)))
        // README end

        #expect(report.result.sorted() == ["DISK FULL", "SLOW REQUEST", "TIMEOUT"])
    }

    @Test func computePool() async throws {
        let lines = ["The cat", "the DOG", "a cat"]
        @Sendable func normalise(_ line: String) -> String { line.lowercased() }
        @Sendable func tokenise(_ line: String) -> [String] { line.split(separator: " ").map(String.init) }
        // README: "CPU-heavy work: the compute pool"
        let counts = try await Pipeline.from(lines)
            .map(on: .compute) { normalise($0) }  // this stage's task runs on the run's compute pool
            .parallelMap(concurrency: 2, ordered: true, reorderWindow: 8) { tokenise($0) }  // batches on 2 workers
            .parallelReduce(into: [String: Int]()) { counts, words in
                for word in words { counts[word, default: 0] += 1 }
            } merge: { total, part in
                total.merge(part, uniquingKeysWith: +)
            }
            .run(RunOptions(computeThreads: 2))
        // README end

        #expect(counts.result == ["the": 2, "cat": 2, "dog": 1, "a": 1])
    }

    @Test func filesAndGzip() async throws {
        let directory = TemporaryDirectory()
        try writeFile(directory.file("access.log"), Array("GET /a\nGET /health\n".utf8))
        try Shell.check("printf 'GET /health\\nPOST /b' | gzip -c > '\(directory.file("access.log.gz"))'")
        let cwd = UnsafeMutablePointer<CChar>.allocate(capacity: 4096)
        defer { cwd.deallocate() }
        getcwd(cwd, 4096)
        chdir(directory.path)
        defer { chdir(cwd) }
        // README: "Files and gzip"
        let report = try await Pipeline.lines(from: ["access.log.gz", "access.log"])  // gzip by content; "-": stdin
            .filter { !$0.contains("GET /health".utf8) }  // `Line`: bytes, no String unless you ask (`.string`)
            .write(to: "filtered.log.gz", options: WriteOptions(gzipLevel: 6))  // ".gz": gzip; "-": stdout
            .run()
        print(report[stage: "read"]?.bytesIn ?? 0, "bytes read,", report[stage: "write"]?.bytesOut ?? 0, "written")
        // README end

        try Shell.check("test \"$(gzip -dc filtered.log.gz)\" = \"$(printf 'POST /b\\nGET /a')\"")
    }
}
