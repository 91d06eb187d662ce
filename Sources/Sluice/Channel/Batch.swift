/// The unit that crosses a channel: a run of records, bounded by ``BatchLimits``.
///
/// Handing a batch from one stage to the next costs about as much as handing over a single value, so batching
/// turns a per-record cost into a per-batch one. Users rarely see batches — per-record closures are applied to
/// them by the engine — but custom ``Source``, ``Stage`` and ``Sink`` types work with them directly.
///
/// A batch of ``Line``s read from files is columnar: the byte buffers the lines were framed from, and one small
/// slot (offsets, line number, file) per line — one reference count per buffer per batch, none per line. Each
/// ``Line`` is made when the batch is read (`batch[i]`, `for line in batch`); ``records`` makes an array of them.
public struct Batch<Record: Sendable>: Sendable {
    @usableFromInline
    enum Storage: Sendable {
        case rows([Record])
        /// Only when `Record` is ``Line``.
        case lines(LineColumns)
    }

    @usableFromInline
    var storage: Storage

    /// Creates a batch of `records`.
    @inlinable
    public init(_ records: [Record]) {
        self.storage = .rows(records)
    }

    /// Creates a batch of the records of `sequence`.
    @inlinable
    public init(_ sequence: some Sequence<Record>) {
        self.storage = .rows(Array(sequence))
    }

    @inlinable
    init(storage: Storage) {
        self.storage = storage
    }

    /// The records, in order. For a columnar batch of lines, reading this makes an array of them.
    @inlinable
    public var records: [Record] {
        get {
            switch self.storage {
            case .rows(let records): return records
            case .lines(let columns): return unsafeBitCast(columns.lines, to: [Record].self)
            }
        }
        set {
            self.storage = .rows(newValue)
        }
    }

    /// Calls `body` with each record and its index, in order — the fastest way through a batch: the records of a
    /// columnar batch of lines are lent to `body` without a reference count each.
    @inlinable
    func forEachRecord(_ body: (Int, Record) throws -> Void) rethrows {
        switch self.storage {
        case .rows(let records):
            for index in records.indices {
                try body(index, records[index])
            }
        case .lines(let columns):
            try columns.forEachLine { index, line in
                try body(index, unsafeBitCast(line, to: Record.self))
            }
        }
    }

    /// Calls `body` on each record, in order; an error it throws becomes the failure of that record, at
    /// `firstIndex` plus its offset in the batch (with its origin, for a ``LocatedRecord``).
    @inlinable
    func forEachRecord(locatingFrom firstIndex: Int, _ body: (Record) throws -> Void) throws {
        var done = 0
        do {
            try self.forEachRecord { _, record in
                try body(record)
                done += 1
            }
        } catch {
            throw RecordFailure(index: firstIndex + done, underlying: error, record: self.record(at: done))
        }
    }

    /// The record at `index` (a columnar batch makes only that line), or `nil` past the end.
    @usableFromInline
    func record(at index: Int) -> Record? {
        guard index >= 0 && index < self.count else { return nil }
        switch self.storage {
        case .rows(let records): return records[index]
        case .lines: return self.slice(index..<(index + 1)).records.first
        }
    }

    /// The results of `transform` on each record, in order.
    @inlinable
    func mapRecords<Next>(_ transform: (Record) throws -> Next) rethrows -> [Next] {
        var results: [Next] = []
        results.reserveCapacity(self.count)
        try self.forEachRecord { _, record in results.append(try transform(record)) }
        return results
    }

    /// The records at `range`, as a batch (a columnar batch keeps only the buffers those lines use).
    @inlinable
    func slice(_ range: Range<Int>) -> Batch {
        switch self.storage {
        case .rows(let records): return Batch(storage: .rows(Array(records[range])))
        case .lines(let columns): return Batch(storage: .lines(columns.slice(range)))
        }
    }

    /// The records for which `isIncluded` returns `true`; a columnar batch keeps its buffers and selects slots.
    @inlinable
    func filtered(_ isIncluded: (Record) throws -> Bool) rethrows -> Batch {
        switch self.storage {
        case .rows(let records):
            return Batch(storage: .rows(try records.filter(isIncluded)))
        case .lines(let columns):
            return Batch(
                storage: .lines(try columns.filtered { try isIncluded(unsafeBitCast($0, to: Record.self)) })
            )
        }
    }

    /// Appends the records of `other` (two columnar batches stay columnar).
    @inlinable
    mutating func append(_ other: Batch) {
        switch (self.storage, other.storage) {
        case (.lines(var columns), .lines(let more)):
            self.storage = .rows([])  // drops the second reference, so the append does not copy
            columns.append(more)
            self.storage = .lines(columns)
        default:
            var records = self.records
            self.storage = .rows([])
            records.append(contentsOf: other.records)
            self.storage = .rows(records)
        }
    }

    /// The ranges of records that make batches within `limits` (bytes counted with `measure`, for records that
    /// know their size), in order; one range if the whole batch is within them.
    func ranges(within limits: BatchLimits, measure: ((Record) -> Int)?) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var start = 0
        var bytes = 0
        func add(_ index: Int, size: Int) {
            if index > start && (index - start == limits.maxRecords || bytes + size > limits.maxBytes) {
                ranges.append(start..<index)
                start = index
                bytes = 0
            }
            bytes += size
        }
        // One switch for the whole batch: a switch per record would copy the storage, and count references, each time.
        switch self.storage {
        case .rows(let records):
            for index in records.indices {
                add(index, size: measure?(records[index]) ?? 0)
            }
        case .lines(let columns):
            for index in columns.slots.indices {
                add(index, size: columns.slots[index].count)
            }
        }
        ranges.append(start..<self.count)
        return ranges
    }
}

extension Batch: RandomAccessCollection {
    @inlinable public var startIndex: Int { 0 }

    @inlinable
    public var endIndex: Int {
        switch self.storage {
        case .rows(let records): return records.count
        case .lines(let columns): return columns.slots.count
        }
    }

    @inlinable
    public subscript(position: Int) -> Record {
        switch self.storage {
        case .rows(let records): return records[position]
        case .lines(let columns): return unsafeBitCast(columns[position], to: Record.self)
        }
    }

    @inlinable public var count: Int { self.endIndex }
}

extension Batch: Equatable where Record: Equatable {
    @inlinable
    public static func == (lhs: Batch, rhs: Batch) -> Bool {
        lhs.elementsEqual(rhs)
    }
}

/// How large a ``Batch`` may grow: a record count, and a byte count for records that know their size.
///
/// A batch is sent on as soon as either bound is reached, and a partial batch is sent at the end of the input —
/// never held back by a timer. Together with the channel capacity these bound the memory a pipeline holds:
/// about `channelCapacity × maxRecords` records per channel, whatever the input size.
public struct BatchLimits: Sendable, Hashable {
    /// The most records in one batch. Default 4096. A hand-off costs ~1.5 µs through `AsyncStream`, but up to
    /// ~40 µs when it wakes a sleeping thread; with short lines (2 bytes each) batches of 1024 left `wc` at the
    /// speed of `zcat | wc`, batches of 4096 made it 1.9× faster. ``maxBytes`` keeps batches of long records small.
    public var maxRecords: Int
    /// The most bytes in one batch, counted only for records that conform to ``ByteSized``. Default 1 MiB.
    public var maxBytes: Int

    /// Creates batch limits.
    ///
    /// - Parameters:
    ///   - maxRecords: The most records in one batch; at least 1.
    ///   - maxBytes: The most bytes in one batch of ``ByteSized`` records; at least 1. A single record larger
    ///     than this travels in a batch of its own.
    public init(maxRecords: Int = 4096, maxBytes: Int = 1 << 20) {
        self.maxRecords = maxRecords
        self.maxBytes = maxBytes
    }

    func validate() throws(ConfigurationError) {
        try ConfigurationError.requirePositive(self.maxRecords, "batch.maxRecords")
        try ConfigurationError.requirePositive(self.maxBytes, "batch.maxBytes")
    }
}

/// A record that knows how many bytes it holds, so batches of it can be bounded by bytes as well as by count.
public protocol ByteSized {
    /// The bytes this record holds (its payload, not its bookkeeping).
    var byteCount: Int { get }
}

extension String: ByteSized {
    @inlinable public var byteCount: Int { self.utf8.count }
}

extension Substring: ByteSized {
    @inlinable public var byteCount: Int { self.utf8.count }
}

extension Array: ByteSized where Element == UInt8 {
    @inlinable public var byteCount: Int { self.count }
}

extension ContiguousArray: ByteSized where Element == UInt8 {
    @inlinable public var byteCount: Int { self.count }
}
