import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `sluice run http-post` end to end: the built binary posts to a server in this process.
@Suite("sluice run http-post", .timeLimit(.minutes(2)))
struct HTTPPostCLITests {
    @Test func postsTheValidLines_deadLettersTheRest_andReportsTheRequests() async throws {
        let directory = TemporaryDirectory()
        let server = try await ScriptedHTTPServer { request in
            request.header("x-token") == "s3cret" ? .status(204) : .status(401)
        }
        var lines = (0..<50).map { "{\"id\":\($0),\"msg\":\"event \($0)\"}" }
        lines[9] = "not json at all"
        lines[19] = "{\"id\":19"
        try writeFile(directory.file("in.ndjson"), Array(lines.joined(separator: "\n").utf8) + [0x0A])
        let out = directory.path
        let status = try await runSluice(
            "run http-post --url '\(server.url)' --concurrency 4 --batch-size 10 --header 'X-Token: s3cret' "
                + "--on-error dead-letter --dead-letter '\(out)/bad.ndjson' --stats-json '\(out)/stats.json' "
                + "'\(out)/in.ndjson' 2> '\(out)/err.txt'"
        )
        #expect(status == 0)
        let valid = lines.enumerated().filter { $0.offset != 9 && $0.offset != 19 }.map(\.element)
        #expect(server.lines.sorted() == valid.sorted())
        #expect(server.requests.allSatisfy { $0.body.split(separator: UInt8(ascii: "\n")).count <= 10 })
        try await Shell.check(
            // A parallel stage's workers write dead letters as their records fail: in any order across workers.
            "python3 -c 'import json,sys; l=sorted((json.loads(x) for x in open(sys.argv[1])), key=lambda x: x[\"line\"]); "
                + "assert [x[\"line\"] for x in l]==[10,20], l; assert l[0][\"stage\"]==\"validate\", l; "
                + "assert \"not one JSON value\" in l[1][\"error\"], l' '\(out)/bad.ndjson'"
        )
        try await Shell.check(
            "python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); c=s[\"counters\"]; "
                + "assert c[\"http_requests\"]==c[\"http_responses_2xx\"]>=5, c; assert c[\"http_retries\"]==0, c; "
                + "p=[x for x in s[\"stages\"] if x[\"name\"]==\"post\"][0]; assert p[\"latency\"][\"count\"]>=5, p' "
                + "'\(out)/stats.json'"
        )
        try await server.stop()
    }

    @Test func aRejectedRequest_underStop_exitsOne_namingTheStatus() async throws {
        let directory = TemporaryDirectory()
        let server = try await ScriptedHTTPServer { _ in .status(413, body: "too large") }
        try writeFile(directory.file("in.ndjson"), Array("{\"a\":1}\n{\"a\":2}\n".utf8))
        let status = try await runSluice(
            "run http-post --url '\(server.url)' '\(directory.file("in.ndjson"))' 2> '\(directory.file("err.txt"))'"
        )
        #expect(status == 1)
        try await Shell.check("grep -q 'HTTP 413 Payload Too Large' '\(directory.file("err.txt"))'")
        try await Shell.check("grep -q 'in.ndjson, line 1' '\(directory.file("err.txt"))'")
        #expect(try await runSluice("run http-post '\(directory.file("in.ndjson"))' 2> /dev/null") == 64)  // no --url
        #expect(try await runSluice("run http-post --url ftp://x '\(directory.file("in.ndjson"))' 2> /dev/null") == 64)
        try await server.stop()
    }

    @Test func sigint_letsTheRequestInFlightFinish_thenExits130() async throws {
        let directory = TemporaryDirectory()
        let answer = Gate()
        let server = try await ScriptedHTTPServer { _ in
            await answer.wait()  // held until the test lets it go: the request is in flight when SIGINT comes
            return .status(200)
        }
        let errors = directory.file("err.txt")
        let process = try SpawnedProcess([
            "/bin/sh", "-c", "exec '\(sluice)' run http-post --url '\(server.url)' --stats - 2> '\(errors)'",
        ])
        let lines = (0..<3).map { "{\"id\":\($0)}" }
        process.write(lines.map { $0 + "\n" }.joined())
        await server.received.wait(beyond: 0)  // posted; the answer is held
        kill(process.pid, SIGINT)
        try await waitUntil(errors, contains: "SIGINT: the inputs stop")
        answer.open()
        #expect(await process.wait() == 130)
        #expect(server.lines == lines)
        try await Shell.check("grep -q 'http_responses_2xx 1' '\(errors)'")  // delivered, then the drain ended
        process.closeInput()
        try await server.stop()
    }
}
