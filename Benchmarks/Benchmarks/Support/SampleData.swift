import Sluice

#if canImport(Glibc)
import Glibc
#endif

/// About 20 MB of seeded, log-like text, made once per machine (and its gzip), with Sluice itself.
public let sampleText = "/tmp/sluice-benchmarks/lines.txt"
public let sampleGzip = "/tmp/sluice-benchmarks/lines.txt.gz"
/// The same records as NDJSON (gzip), for json-filter.
public let sampleNDJSON = "/tmp/sluice-benchmarks/events.ndjson.gz"
/// About 20 MB of text with ~200,000 distinct words (gzip), like a package index: for stateful stages, whose cost
/// a log with a few hundred distinct words hides.
public let highCardinalityGzip = "/tmp/sluice-benchmarks/words.txt.gz"

public enum SampleData {
    public static func prepare(text: String, compressed: String, megabytes: Int = 20) async throws {
        if (try? await Pipeline.lines(from: [compressed]).drain().run()) != nil { return }
        var state: UInt64 = 42
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        let methods = ["GET", "POST", "PUT", "DELETE"]
        let paths = ["/api/v1/items", "/api/v1/users", "/login", "/static/app.js", "/health"]
        let words = ["error", "timeout", "retry", "cache", "miss", "hit", "upstream", "reset", "ok", "slow"]
        let lineCount = megabytes * 1_000_000 / 120
        let lines = (0..<lineCount).lazy.map { index in
            "10.\(next(256)).\(next(256)).\(next(256)) - - [21/Nov/2026:05:\(index % 60):00] \"\(methods[next(4)]) "
                + "\(paths[next(5)])?id=\(next(100_000)) HTTP/1.1\" \([200, 200, 301, 404, 500][next(5)]) "
                + "\(next(50_000)) msg=\"\((0..<(3 + next(8))).map { _ in words[next(10)] }.joined(separator: " "))\""
        }
        let directory = String(text[..<(text.lastIndex(of: "/") ?? text.endIndex)])
        _ = mkdir(directory, 0o755)
        try await Pipeline.from(Array(lines)).write(to: text).run()
        try await Pipeline.lines(from: [text]).write(to: compressed).run()
    }

    /// The sample as NDJSON: one object per line with a `level` and the log line as `msg`.
    public static func prepareNDJSON() async throws {
        if (try? await Pipeline.lines(from: [sampleNDJSON]).drain().run()) != nil { return }
        try await self.prepare(text: sampleText, compressed: sampleGzip)
        try await Pipeline.lines(from: [sampleText])
            .map { line -> String in
                let level = line.contains(" 500 ".utf8) ? "error" : line.contains(" 404 ".utf8) ? "warning" : "info"
                let message = String(line.string.map { $0 == "\"" || $0 == "\\" ? "'" : $0 })
                return "{\"level\":\"\(level)\",\"msg\":\"\(message)\"}"
            }
            .write(to: sampleNDJSON)
            .run()
    }

    /// Text whose words follow a Zipf-like law over ~200,000 distinct tokens (names, versions, hashes), seeded.
    public static func prepareHighCardinality(megabytes: Int = 20) async throws {
        if (try? await Pipeline.lines(from: [highCardinalityGzip]).drain().run()) != nil { return }
        var state: UInt64 = 7
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        let letters = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        let vocabulary = (0..<200_000).map { _ in String((0..<(3 + next(12))).map { _ in letters[next(36)] }) }
        let fields = ["Package:", "Version:", "Depends:", "Description:", "Filename:", "Size:", "SHA256:"]
        let lineCount = megabytes * 1_000_000 / 60
        let lines = (0..<lineCount).map { _ in
            // Rank r is drawn with probability about 1/r: a few words are everywhere, most are rare.
            let words = (0..<(2 + next(8))).map { _ in
                vocabulary[Int(pow(200_000.0, Double(next(10_000)) / 10_000)) - 1]
            }
            return fields[next(fields.count)] + " " + words.joined(separator: next(3) == 0 ? ", " : " ")
        }
        let text = String(highCardinalityGzip.dropLast(".gz".count))
        _ = mkdir("/tmp/sluice-benchmarks", 0o755)
        try await Pipeline.from(lines).write(to: text).run()
        try await Pipeline.lines(from: [text]).write(to: highCardinalityGzip).run()
    }
}
