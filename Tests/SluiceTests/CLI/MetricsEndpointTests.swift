import AsyncHTTPClient
import Testing

/// `--metrics-address`: Prometheus scrapes the run's metrics while it lasts.
@Suite("sluice --metrics-address", .timeLimit(.minutes(1)))
struct MetricsEndpointTests {
    @Test func servesTheRunsMetrics_inPrometheusTextFormat_whileItRuns() async throws {
        let directory = TemporaryDirectory()
        let errors = directory.file("err.txt")
        let process = try SpawnedProcess(
            ["/bin/sh", "-c", "exec '\(sluice)' run cat - --metrics-address 127.0.0.1:0 2> '\(errors)'"],
            captureOutput: true
        )
        let output = try #require(process.output)
        for index in 0..<3 {
            process.write("line \(index)\n")
            #expect(try await output.readLine() == "line \(index)")  // through every stage, counted on the way
        }
        try await waitUntil(errors, contains: "/metrics\n")
        let text = String(decoding: try readFile(errors), as: UTF8.self)
        let url = try #require(text.split(separator: " ").last.map { String($0.dropLast()) })
        #expect(url.hasPrefix("http://127.0.0.1:") && url.hasSuffix("/metrics"))

        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
        #expect(response.status.code == 200)
        #expect(response.headers.first(name: "content-type")?.hasPrefix("text/plain; version=0.0.4") == true)
        let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
        #expect(body.contains("sluice_stage_records_in{pipeline=\"cat\",stage=\"write\"} 3"), "\(body)")
        #expect(body.contains("# TYPE sluice_stage_latency histogram"))
        #expect(body.contains("# TYPE sluice_pool_lag histogram"))
        #expect(body.contains("sluice_stage_channel_depth_peak{pipeline=\"cat\",stage=\"lines\"}"))

        let missing = try await HTTPClient.shared.execute(
            HTTPClientRequest(url: url.replacingOccurrences(of: "/metrics", with: "/other")),
            timeout: .seconds(10)
        )
        #expect(missing.status.code == 404)
        process.closeInput()
        #expect(try await output.readLine() == nil)
        #expect(await process.wait() == 0)
    }

    @Test func anAddressItCannotUse_failsTheCommand() async throws {
        #expect(try await runSluice("run cat --metrics-address nowhere < /dev/null 2> /dev/null") == 1)
        #expect(try await runSluice("run cat --metrics-address 256.1.1.1:80 < /dev/null 2> /dev/null") == 1)
    }
}
