import CLineScan

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Splits decoded bytes into lines on `\n`, carrying a partial line from one chunk to the next.
///
/// Lines go into columns, cut into batches at the run's limits: each chunk's buffer is added once per batch and each
/// line is a slot (offsets, number, file) into it — no copy and no reference count per line. Only a line that spans
/// chunks is copied, into a buffer of its own. Newlines are found many at a time (`CLineScan`: 32 bytes a step with
/// AVX2, a mask of matches), not with a call per line: lines are often a few dozen bytes. A line longer than
/// `maxRecordBytes` is an error naming the file and the line's offset — memory never grows without bound.
struct LineFramer {
    let maxRecordBytes: Int
    /// The run's budget of bytes in flight, which lines copied out of several chunks count in.
    private let budget: ByteBudget?
    /// How large a batch of lines grows before it is ready.
    private let limits: BatchLimits
    /// Lines framed and not yet in a ready batch, and their bytes.
    private var current = LineColumns()
    private var currentBytes = 0
    /// Batches of lines within the limits, in order, waiting to be taken.
    private var ready: [LineColumns] = []
    private var carry: [UInt8] = []
    private var carryStart = 0
    /// The current file, its id in ``LineSources``, and the number of the next line.
    private var path = ""
    private var source: Int32 = -1
    private var nextNumber = 1
    /// Room for the offsets of the newlines found by one scan.
    private let newlines = NewlineOffsets()

    init(maxRecordBytes: Int, limits: BatchLimits = BatchLimits(), budget: ByteBudget? = nil) {
        self.maxRecordBytes = maxRecordBytes
        self.limits = limits
        self.budget = budget
        self.current.slots.reserveCapacity(min(limits.maxRecords, 4096))
    }

    /// The lines framed so far, as batches within the limits (the last one may be partial); none are kept back.
    mutating func takeBatches() -> [LineColumns] {
        self.cutBatch()
        defer { self.ready = [] }
        return self.ready
    }

    /// Ends the current batch.
    private mutating func cutBatch() {
        guard !self.current.slots.isEmpty else { return }
        self.ready.append(self.current)
        self.current = LineColumns()
        self.current.slots.reserveCapacity(min(self.limits.maxRecords, 4096))
        self.currentBytes = 0
    }

    /// Whether a line of `length` bytes would take the current batch past the limits (a batch always takes one).
    @inline(__always)
    private func isFull(adding length: Int) -> Bool {
        self.current.slots.count == self.limits.maxRecords
            || (self.currentBytes + length > self.limits.maxBytes && !self.current.slots.isEmpty)
    }

    /// Adds one line's slot to the current batch, cutting it first if the line would take it past the limits.
    private mutating func append(_ slot: LineSlot, buffer: LineBuffer) {
        let count = slot.end - slot.start
        if self.isFull(adding: count) {
            self.cutBatch()
        }
        var slot = slot
        slot.buffer = self.current.add(buffer)
        self.current.slots.append(slot)
        self.currentBytes += count
    }

    /// Frames the complete lines of `chunk`; at the end of a file, its last line too (with or without a final
    /// `\n`). Take them with ``takeBatches()``.
    mutating func frame(_ chunk: ByteChunk) throws {
        if chunk.path != self.path {  // a new file (the end of each file resets the path)
            self.startFile(chunk.path)
        }
        let bytes = chunk.bytes
        let count = bytes.count
        var start = 0
        var number = self.nextNumber
        let source = self.source
        defer { self.nextNumber = number }
        try bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            if !self.carry.isEmpty {
                // The line carried from the previous chunk ends at this chunk's first newline.
                guard let end = Self.newline(in: base, from: 0, to: count) else { return }
                try self.check(length: self.carry.count + end, at: self.carryStart, in: chunk.path)
                self.carry.append(contentsOf: raw[0..<end])
                self.appendCarry(number: number)
                number += 1
                start = end + 1
            }
            // The lines inside the chunk: the hot loop. The chunk's buffer joins the current batch with its first
            // line there, and again after each cut. A scan's slots are written to room of their own, unchecked, and
            // added to the batch at once (before a cut, and after the scan).
            var bufferIndex: Int32 = -1
            let offsets = self.newlines.offsets
            let scratch = self.newlines.slots
            var pending = 0
            var records = self.current.slots.count  // in the current batch, pending slots included
            var scanned = start
            while scanned < count {
                let (found, next) = self.newlines.scan(base, from: scanned, to: count)
                scanned = next
                for index in 0..<found {
                    let end = Int(offsets[index])
                    let length = end - start
                    if length > self.maxRecordBytes {
                        self.current.slots.append(contentsOf: UnsafeBufferPointer(start: scratch, count: pending))
                        pending = 0
                        try self.check(length: length, at: chunk.offset + start, in: chunk.path)
                    }
                    if records == self.limits.maxRecords
                        || (self.currentBytes + length > self.limits.maxBytes && records > 0)
                    {
                        self.current.slots.append(contentsOf: UnsafeBufferPointer(start: scratch, count: pending))
                        pending = 0
                        self.cutBatch()
                        bufferIndex = -1
                        records = 0
                    }
                    if bufferIndex < 0 {
                        bufferIndex = self.current.add(chunk.buffer)
                    }
                    (scratch + pending).initialize(
                        to: LineSlot(start: start, end: end, number: number, buffer: bufferIndex, source: source)
                    )
                    pending += 1
                    records += 1
                    self.currentBytes += length
                    number += 1
                    start = end + 1
                }
                self.current.slots.append(contentsOf: UnsafeBufferPointer(start: scratch, count: pending))
                pending = 0
            }
        }
        if start < count {
            if self.carry.isEmpty {
                self.carryStart = chunk.offset + start
            }
            try self.check(length: self.carry.count + count - start, at: self.carryStart, in: chunk.path)
            self.carry.append(contentsOf: bytes[start...])
        }
        if chunk.endOfFile && chunk.stopped {
            // Reading stopped in the middle of the input: a partial last line was never a whole record.
            self.carry = []
            self.path = ""
        } else if chunk.endOfFile {
            self.nextNumber = number
            self.finish()
            number = self.nextNumber
            self.path = ""
        }
    }

    /// Hands out the partial line still carried, as a last line without `\n`.
    mutating func finish() {
        guard !self.carry.isEmpty else { return }
        self.appendCarry(number: self.nextNumber)
        self.nextNumber += 1
    }

    private mutating func appendCarry(number: Int) {
        self.append(
            LineSlot(start: 0, end: self.carry.count, number: number, buffer: 0, source: self.source),
            buffer: LineBuffer(self.carry, budget: self.budget)
        )
        self.carry = []
    }

    /// The position of the first `\n` in `base[from..<to]`. Lines are often short, so the first 16 bytes are
    /// checked a word at a time, before the call to `memchr` that long lines need.
    @inline(__always)
    static func newline(in base: UnsafeRawPointer, from: Int, to: Int) -> Int? {
        var index = from
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let newlines: UInt64 = 0x0A0A_0A0A_0A0A_0A0A
        let quick = min(to, from + 16)
        while index + 8 <= quick {
            // A byte equal to `\n` becomes 0 here; the lowest zero byte sets the lowest flag (little endian).
            let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: index, as: UInt64.self)) ^ newlines
            let flags = (word &- ones) & ~word & highs
            if flags != 0 {
                return index + flags.trailingZeroBitCount / 8
            }
            index += 8
        }
        guard index < to, let found = memchr(base + index, 0x0A, to - index) else { return nil }
        return UnsafeRawPointer(found) - base
    }

    private mutating func startFile(_ path: String) {
        self.path = path
        self.source = LineSources.shared.id(for: path)
        self.nextNumber = 1
    }

    private func check(length: Int, at offset: Int, in path: String) throws(FileError) {
        guard length > self.maxRecordBytes else { return }
        throw Self.tooLong(limit: self.maxRecordBytes, at: offset, in: path)
    }

    /// The error for a line longer than `limit`, starting at `offset` in the file's decoded data.
    static func tooLong(limit: Int, at offset: Int, in path: String) -> FileError {
        FileError(
            code: .recordTooLong,
            path: path,
            offset: offset,
            detail: "a line is longer than the maximum record size of \(limit) bytes"
        )
    }
}

/// Room for the offsets of the newlines one scan finds: memory of its own, so that the framer's hot loop reads them
/// without an array's checks (a framer is used by one stage at a time).
final class NewlineOffsets: @unchecked Sendable {
    static let capacity = 1024
    let offsets: UnsafeMutablePointer<UInt32>
    /// Room for the slots of the lines one scan finds, before they join a batch.
    let slots: UnsafeMutablePointer<LineSlot>

    init() {
        self.offsets = .allocate(capacity: Self.capacity)
        self.slots = .allocate(capacity: Self.capacity)
    }

    deinit {
        self.offsets.deallocate()
        self.slots.deallocate()
    }

    /// Writes the offsets of the newlines in `base[from..<to]` to ``offsets`` (at most ``capacity`` of them);
    /// returns how many, and the first byte not scanned (`to` unless the room filled up first).
    @inline(__always)
    func scan(_ base: UnsafeRawPointer, from: Int, to: Int) -> (found: Int, next: Int) {
        var next = 0
        let found = sluice_find_newlines(
            base.assumingMemoryBound(to: UInt8.self),
            from,
            to,
            self.offsets,
            Self.capacity,
            &next
        )
        return (found, next)
    }
}
