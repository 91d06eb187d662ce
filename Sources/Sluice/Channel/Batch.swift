/// The unit that crosses a channel: a run of records, bounded by ``BatchLimits``.
///
/// Handing a batch from one stage to the next costs about as much as handing over a single value, so batching
/// turns a per-record cost into a per-batch one. Users rarely see batches — per-record closures are applied to
/// them by the engine — but custom ``Source``, ``Stage`` and ``Sink`` types work with them directly.
public struct Batch<Record: Sendable>: Sendable {
    /// The records, in order.
    public var records: [Record]

    /// Creates a batch of `records`.
    @inlinable
    public init(_ records: [Record]) {
        self.records = records
    }

    /// Creates a batch of the records of `sequence`.
    @inlinable
    public init(_ sequence: some Sequence<Record>) {
        self.records = Array(sequence)
    }
}

extension Batch: RandomAccessCollection {
    @inlinable public var startIndex: Int { self.records.startIndex }
    @inlinable public var endIndex: Int { self.records.endIndex }
    @inlinable public subscript(position: Int) -> Record { self.records[position] }
    @inlinable public var count: Int { self.records.count }
}

extension Batch: Equatable where Record: Equatable {}

/// How large a ``Batch`` may grow: a record count, and a byte count for records that know their size.
///
/// A batch is sent on as soon as either bound is reached, and a partial batch is sent at the end of the input —
/// never held back by a timer. Together with the channel capacity these bound the memory a pipeline holds:
/// about `channelCapacity × maxRecords` records per channel, whatever the input size.
public struct BatchLimits: Sendable, Hashable {
    /// The most records in one batch. Default 1024: enough to make the hand-off cost negligible
    /// (about 1.5 µs per batch through `AsyncStream`, so ~1.5 ns per record) while keeping batches cache-sized.
    public var maxRecords: Int
    /// The most bytes in one batch, counted only for records that conform to ``ByteSized``. Default 1 MiB.
    public var maxBytes: Int

    /// Creates batch limits.
    ///
    /// - Parameters:
    ///   - maxRecords: The most records in one batch; at least 1.
    ///   - maxBytes: The most bytes in one batch of ``ByteSized`` records; at least 1. A single record larger
    ///     than this travels in a batch of its own.
    public init(maxRecords: Int = 1024, maxBytes: Int = 1 << 20) {
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
