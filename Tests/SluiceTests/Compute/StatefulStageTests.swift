import Synchronization
import Testing

@testable import Sluice

/// Counts how often any `CopyCountingTally` had to copy its storage: a copy happens only when a mutation finds the
/// storage shared, which for an accumulator means a stage kept a second reference to it while folding.
final class CopyCounter: Sendable {
    private let count = Atomic<Int>(0)
    var copies: Int { self.count.load(ordering: .relaxed) }
    func copied() { self.count.wrappingAdd(1, ordering: .relaxed) }
}

/// A value type with copy-on-write storage that reports every copy of that storage.
struct CopyCountingTally: Sendable {
    final class Storage: @unchecked Sendable {  // only ever mutated when uniquely referenced
        var sum = 0
        var records = 0
        /// Some bulk, so that an accidental copy would also be slow.
        var history = [Int](repeating: 0, count: 64)
    }

    let counter: CopyCounter
    private var storage: Storage?

    init(counter: CopyCounter) {
        self.counter = counter
    }

    var sum: Int { self.storage?.sum ?? 0 }
    var records: Int { self.storage?.records ?? 0 }

    mutating func add(_ value: Int) {
        if self.storage == nil {
            self.storage = Storage()  // the first record allocates: not a copy
        } else if !isKnownUniquelyReferenced(&self.storage!) {
            let copy = Storage()
            copy.sum = self.storage!.sum
            copy.records = self.storage!.records
            copy.history = self.storage!.history
            self.storage = copy
            self.counter.copied()
        }
        self.storage!.sum += value
        self.storage!.records += 1
        self.storage!.history[value & 63] &+= 1
    }

    mutating func merge(_ other: CopyCountingTally) {
        self.add(0)  // through the same uniqueness check
        self.storage!.sum += other.sum
        self.storage!.records += other.records - 1
    }
}

@Suite("Stateful stages", .timeLimit(.minutes(1)))
struct StatefulStageTests {
    static let batches = 10_000

    /// 10,000 batches of 3 records each.
    static func options(workers: Int) -> RunOptions {
        RunOptions(batch: BatchLimits(maxRecords: 3), computeThreads: workers)
    }

    @Test(arguments: [1, 2])
    func parallelReduce_foldsInPlace_withoutCopyingItsAccumulatorPerBatch(workers: Int) async throws {
        let counter = CopyCounter()
        let report = try await Pipeline.from(0..<(3 * Self.batches))
            .parallelReduce(into: CopyCountingTally(counter: counter), concurrency: workers) { tally, value in
                tally.add(value)
            } merge: { total, part in
                total.merge(part)
            }
            .run(Self.options(workers: workers))
        #expect(report.result.records == 3 * Self.batches)
        #expect(report.result.sum == (0..<(3 * Self.batches)).reduce(0, +))
        #expect(report.stages.last?.batchesIn == Self.batches)
        #expect(counter.copies == 0)
    }

    @Test func reduceInto_foldsInPlace_withoutCopyingItsAccumulatorPerBatch() async throws {
        let counter = CopyCounter()
        let report = try await Pipeline.from(0..<(3 * Self.batches))
            .reduce(into: CopyCountingTally(counter: counter)) { tally, value in tally.add(value) }
            .run(Self.options(workers: 1))
        #expect(report.result.records == 3 * Self.batches)
        #expect(counter.copies == 0)
    }

    @Test func copyCountingTally_countsACopy_whenItsStorageIsShared() {
        // The detector itself: a second reference at the moment of mutation is caught.
        let counter = CopyCounter()
        var tally = CopyCountingTally(counter: counter)
        tally.add(1)
        let kept = tally
        tally.add(2)
        #expect(counter.copies == 1)
        #expect(kept.sum == 1 && tally.sum == 3)
    }
}
