import Testing

@testable import Sluice

@Suite("Pipeline", .timeLimit(.minutes(1)))
struct PipelineTests {
    @Test func linearPipeline_keepsRecordOrder_throughEveryOperator() async throws {
        let input = Array(0..<100_000)
        let report = try await Pipeline.from(input)
            .map { $0 * 3 }
            .filter { $0 % 2 == 0 }
            .compactMap { $0 % 5 == 0 ? nil : $0 }
            .flatMap { [$0, -$0] }
            .stage("negate-async") { -$0 }
            .collect()
            .run(RunOptions(channelCapacity: 2, batch: BatchLimits(maxRecords: 100)))
        let tripled: [Int] = input.map { $0 * 3 }
        let kept: [Int] = tripled.filter { $0 % 2 == 0 }.filter { $0 % 5 != 0 }
        let expected: [Int] = kept.flatMap { [-$0, $0] }
        #expect(report.result == expected)
    }

    @Test func flatMap_expandingOneRecordBeyondABatch_splitsIntoBoundedBatches() async throws {
        let batchSizes = Collector<Int>()
        let report = try await Pipeline.from([3, 2500, 0, 7])
            .flatMap { 0..<$0 }
            .to(BatchSizeRecorder(sizes: batchSizes))
            .run(RunOptions(batch: BatchLimits(maxRecords: 1000)))
        #expect(report.result == 3 + 2500 + 7)
        #expect(batchSizes.all.allSatisfy { $0 <= 1000 })
        #expect(report[stage: "flatMap"]?.recordsOut == 2510)
    }

    @Test func emptyInput_runsToTheEnd_withEmptyResult() async throws {
        let report = try await Pipeline.from([Int]()).map { $0 + 1 }.collect().run()
        #expect(report.result.isEmpty)
    }

    @Test func asyncSequenceSource_deliversEveryElement() async throws {
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        for value in 0..<2500 { continuation.yield(value) }
        continuation.finish()
        let report = try await Pipeline.from(stream).collect().run()
        #expect(report.result == Array(0..<2500))
    }

    @Test func reduce_andDrain_andForEach_consumeEveryRecord() async throws {
        let sum = try await Pipeline.from(1...10_000).reduce(into: 0) { $0 += $1 }.run()
        #expect(sum.result == 50_005_000)
        let count = try await Pipeline.from(1...10_000).drain().run()
        #expect(count.result == 10_000)
        let seen = Collector<Int>()
        _ = try await Pipeline.from(1...100).forEach { seen.append($0) }.run()
        #expect(seen.all == Array(1...100))
        let seenAsync = Collector<Int>()
        _ = try await Pipeline.from(1...100).forEach { (value: Int) async throws in seenAsync.append(value) }.run()
        #expect(seenAsync.all == Array(1...100))
    }

    @Test func customSourceStageAndSink_plugIn() async throws {
        let report = try await Pipeline.from(Countdown(from: 5))
            .stage(Pairwise())
            .to(SumSink())
            .run()
        // Countdown 5...0 gives pairs (5,4) (3,2) (1,0): sums 9, 5, 1.
        #expect(report.result == 15)
        #expect(report.stages.map(\.name) == ["countdown", "pairwise", "sum"])
    }

    @Test func tee_deliversEveryRecordToEveryBranch() async throws {
        let left = Collector<Int>()
        let right = Collector<Int>()
        let report = try await Pipeline.from(0..<50_000)
            .tee { $0.forEach { left.append($0) } }
            .tee { $0.map { $0 * 2 }.forEach { right.append($0) } }
            .collect()
            .run(RunOptions(channelCapacity: 1, batch: BatchLimits(maxRecords: 64)))
        #expect(report.result == Array(0..<50_000))
        #expect(left.all == Array(0..<50_000))
        #expect(right.all == (0..<50_000).map { $0 * 2 })
    }

    @Test func tee_slowBranch_slowsTheSource_andLosesNothing() async throws {
        let sourceSuspended = EventCounter()
        var options = RunOptions(channelCapacity: 1, batch: BatchLimits(maxRecords: 10))
        options.hooks.onSendSuspended = { stage in
            if stage == "source" { sourceSuspended.signal() }
        }
        let slow = Collector<Int>()
        let report = try await Pipeline.from(0..<1000)
            .tee {
                $0.forEach(name: "slow") { (value: Int) async in
                    // Hold the first record until the source has had to wait for this branch.
                    if value == 0 { await sourceSuspended.wait(beyond: 0) }
                    slow.append(value)
                }
            }
            .collect()
            .run(options)
        #expect(slow.all == Array(0..<1000))
        #expect(report.result == Array(0..<1000))
        #expect((report[stage: "source"]?.blockedSends ?? 0) > 0)
    }

    @Test func tee_branchThatStopsEarly_isDropped_andTheMainBranchGoesOn() async throws {
        let report = try await Pipeline.from(0..<10_000)
            .tee { $0.to(FirstRecords(count: 5)) }
            .collect()
            .run(RunOptions(channelCapacity: 1, batch: BatchLimits(maxRecords: 16)))
        #expect(report.result == Array(0..<10_000))
    }

    @Test func merge_ofEightSources_ofOneMillionRecords_losesNothing_andKeepsEachSourcesOrder() async throws {
        let sources = 8
        let perSource = 125_000
        let inputs = (0..<sources).map { source in
            Pipeline.from((0..<perSource).map { source * perSource + $0 }, name: "source")
        }
        let report = try await Pipeline.merge(inputs).collect().run()
        let received = report.result
        #expect(received.count == sources * perSource)
        #expect(Set(received).count == sources * perSource)
        var last = [Int](repeating: -1, count: sources)
        var outOfOrder = 0
        for value in received {
            let source = value / perSource
            if value <= last[source] { outOfOrder += 1 }
            last[source] = value
        }
        #expect(outOfOrder == 0)
        #expect(report.stages.map(\.name).filter { $0.hasPrefix("source") }.count == sources)
    }

    @Test func sinkThatStopsEarly_endsTheRunSuccessfully_andStopsAnEndlessSource() async throws {
        let report = try await Pipeline.from(Endless())
            .map { $0 * 10 }
            .to(FirstRecords(count: 3))
            .run()
        #expect(report.result == [0, 10, 20])
    }

    @Test func byteSizedRecords_areBatchedByBytes() async throws {
        let batchBytes = Collector<Int>()
        let words = (0..<1000).map { String(repeating: "x", count: $0 % 50 + 1) }
        let report = try await Pipeline.from(words)
            .map { $0 + "!" }
            .to(BatchByteRecorder(bytes: batchBytes))
            .run(RunOptions(batch: BatchLimits(maxRecords: 1000, maxBytes: 200)))
        #expect(report.result == words.count)
        #expect(!batchBytes.all.isEmpty)
        #expect(batchBytes.all.allSatisfy { $0 <= 200 })
    }

    @Test func pipeline_isAReusableValue_eachRunIsIndependent() async throws {
        let pipeline = Pipeline.from(0..<1000).map { $0 + 1 }.drain()
        let first = try await pipeline.run()
        let second = try await pipeline.run()
        #expect(first.result == 1000)
        #expect(second.result == 1000)
    }
}

// MARK: - Custom stages used above

struct Countdown: Source {
    var from: Int
    var kind: String { "countdown" }

    func run(into output: StageOutput<Int>) async throws {
        for value in stride(from: self.from, through: 0, by: -1) {
            try await output.emit(value)
        }
    }
}

/// Sums records two by two, across batch boundaries.
struct Pairwise: Stage {
    var kind: String { "pairwise" }

    func run(input: StageInput<Int>, output: StageOutput<Int>) async throws {
        var pending: Int?
        for try await batch in input {
            for record in batch {
                if let first = pending {
                    try await output.emit(first + record)
                    pending = nil
                } else {
                    pending = record
                }
            }
        }
        if let pending { try await output.emit(pending) }
    }
}

struct SumSink: Sink {
    var kind: String { "sum" }

    func run(input: StageInput<Int>) async throws -> Int {
        var sum = 0
        for try await batch in input { sum += batch.reduce(0, +) }
        return sum
    }
}

/// A source that never ends on its own.
struct Endless: Source {
    func run(into output: StageOutput<Int>) async throws {
        var value = 0
        while true {
            try await output.emit(value)
            value += 1
        }
    }
}

/// Takes the first `count` records, then stops consuming.
struct FirstRecords: Sink {
    var count: Int

    func run(input: StageInput<Int>) async throws -> [Int] {
        var records: [Int] = []
        for try await batch in input {
            records.append(contentsOf: batch.prefix(self.count - records.count))
            if records.count == self.count { break }
        }
        return records
    }
}

struct BatchSizeRecorder: Sink {
    let sizes: Collector<Int>

    func run(input: StageInput<Int>) async throws -> Int {
        var total = 0
        for try await batch in input {
            self.sizes.append(batch.count)
            total += batch.count
        }
        return total
    }
}

struct BatchByteRecorder: Sink {
    let bytes: Collector<Int>

    func run(input: StageInput<String>) async throws -> Int {
        var total = 0
        for try await batch in input {
            self.bytes.append(batch.reduce(0) { $0 + $1.utf8.count })
            total += batch.count
        }
        return total
    }
}
