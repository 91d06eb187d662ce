import Benchmark
import BenchmarkSupport
import Sluice

// Parsing the sample access log (Pipelines/Samples/access.log.gz, 36,065 lines) into (method, path, status, bytes),
// three ways: the natural route through `String` and `split`, Sluice's `Line` helpers, and a byte parser written by
// hand. The helpers should be ≥ 3× the first and within 1.5× of the last.
//
//     165.77.202.24 - - [21/Nov/2026:05:00:00 +0000] "GET /health?id=12337 HTTP/1.1" 200 38193 "Mozilla/5.0 …" msg="…"

/// The sample's path, from this file's: Benchmarks/Benchmarks/Line/Line.swift → Pipelines/Samples/access.log.gz.
let accessLog: String = {
    let parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
    return (parts.dropLast(4) + ["Pipelines", "Samples", "access.log.gz"]).joined(separator: "/")
}()

/// What each parser sums up, so that none of the work can be left out: GET requests, path bytes, statuses, bytes.
struct Totals: Equatable {
    var gets = 0
    var pathBytes = 0
    var statuses = 0
    var bytes = 0
}

/// Through `String`: `line.string.split(separator: " ")`, then `Int(…)`.
func parseWithStrings(_ lines: [Line]) -> Totals {
    var totals = Totals()
    for line in lines {
        let fields = line.string.split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count > 9 else { continue }
        let method = String(fields[5].dropFirst())
        let path = String(fields[6])
        if method == "GET" { totals.gets += 1 }
        totals.pathBytes += path.utf8.count
        totals.statuses += Int(fields[8]) ?? 0
        totals.bytes += Int(fields[9]) ?? 0
    }
    return totals
}

/// With the `Line` helpers: fields as views, numbers parsed in place.
func parseWithHelpers(_ lines: [Line]) -> Totals {
    var totals = Totals()
    for line in lines {
        var index = 0
        for field in line.fields() {
            switch index {
            case 5: if field.dropFirst().equals("GET") { totals.gets += 1 }
            case 6: totals.pathBytes += field.count
            case 8: totals.statuses += field.int ?? 0
            case 9: totals.bytes += field.int ?? 0
            default: break
            }
            index += 1
            if index > 9 { break }
        }
    }
    return totals
}

/// By hand, on the raw bytes: what a user writes when the other ways are too slow.
func parseByHand(_ lines: [Line]) -> Totals {
    var totals = Totals()
    for line in lines {
        line.withUnsafeBytes { bytes in
            var field = 0
            var start = 0
            var index = 0
            while index <= bytes.count && field <= 9 {
                if index == bytes.count || bytes[index] == 0x20 {
                    switch field {
                    case 5:
                        if index - start == 4 && bytes[start + 1] == 0x47 && bytes[start + 2] == 0x45
                            && bytes[start + 3] == 0x54
                        {
                            totals.gets += 1
                        }
                    case 6: totals.pathBytes += index - start
                    case 8, 9:
                        var value = 0
                        for position in start..<index { value = value * 10 + Int(bytes[position] &- 48) }
                        if field == 8 { totals.statuses += value } else { totals.bytes += value }
                    default: break
                    }
                    field += 1
                    start = index + 1
                }
                index += 1
            }
        }
    }
    return totals
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .sluice(maxDuration: .seconds(3), maxIterations: 30)
    let parsers: [(String, @Sendable ([Line]) -> Totals)] = [
        ("String and split", parseWithStrings),
        ("Line helpers", parseWithHelpers),
        ("by hand", parseByHand),
    ]
    for (name, parse) in parsers {
        Benchmark("parse the access log: \(name)") { benchmark in
            let lines = try await Pipeline.lines(from: [accessLog]).collect().run().result
            let expected = parseByHand(lines)
            benchmark.startMeasurement()
            let totals = parse(lines)
            benchmark.stopMeasurement()
            precondition(totals == expected, "\(name) parsed \(totals), by hand \(expected)")
            blackHole(totals)
        }
    }
}
