/// The lines of a columnar ``Batch``: the byte buffers they were framed from, and one ``LineSlot`` per line.
///
/// Copying a batch, slicing it or filtering it counts one reference per buffer, never one per line; a ``Line`` is
/// made only when the batch is read.
@usableFromInline
struct LineColumns: Sendable {
    @usableFromInline var buffers: [LineBuffer]
    @usableFromInline var slots: [LineSlot]

    @inlinable
    init(buffers: [LineBuffer] = [], slots: [LineSlot] = []) {
        self.buffers = buffers
        self.slots = slots
    }

    @inlinable
    subscript(index: Int) -> Line {
        let slot = self.slots[index]
        return Line(
            storage: self.buffers[Int(slot.buffer)].bytes,
            start: slot.start,
            end: slot.end,
            number: slot.number,
            source: slot.source
        )
    }

    /// Calls `body` with each line and its index, in order.
    ///
    /// Each run of slots in one buffer shares one reference to it, and each line built from that borrowed reference
    /// is lent to `body`: where the optimiser sees `body` (a closure specialised in the caller) a line costs no
    /// reference count; through an opaque call it costs one retain and release, on this thread only. A `Line`
    /// returned by `self[index]` always costs them.
    @inlinable
    func forEachLine(_ body: (Int, Line) throws -> Void) rethrows {
        var index = 0
        while index < self.slots.count {
            // The slots of one buffer in a row share one reference to it; each line built from that borrowed
            // reference is lent to `body`, with no reference count of its own.
            let buffer = self.slots[index].buffer
            let storage = self.buffers[Int(buffer)].bytes
            repeat {
                let slot = self.slots[index]
                try body(
                    index,
                    Line(storage: storage, start: slot.start, end: slot.end, number: slot.number, source: slot.source)
                )
                index += 1
            } while index < self.slots.count && self.slots[index].buffer == buffer
        }
    }

    /// Every line, as an array.
    @usableFromInline
    var lines: [Line] {
        self.slots.indices.map { self[$0] }
    }

    /// Adds `buffer` (unless it is the last one added already) and returns its index.
    @inlinable
    mutating func add(_ buffer: LineBuffer) -> Int32 {
        if let last = self.buffers.last, last === buffer {
            return Int32(self.buffers.count - 1)
        }
        self.buffers.append(buffer)
        return Int32(self.buffers.count - 1)
    }

    /// The lines at `range`, with only the buffers they use.
    @usableFromInline
    func slice(_ range: Range<Int>) -> LineColumns {
        guard !range.isEmpty else { return LineColumns() }
        var lowest = Int32.max
        var highest = Int32.min
        for slot in self.slots[range] {
            lowest = min(lowest, slot.buffer)
            highest = max(highest, slot.buffer)
        }
        var slots = Array(self.slots[range])
        if lowest > 0 {
            for index in slots.indices { slots[index].buffer -= lowest }
        }
        return LineColumns(buffers: Array(self.buffers[Int(lowest)...Int(highest)]), slots: slots)
    }

    /// The lines for which `isIncluded` returns `true`, over the same buffers.
    @inlinable
    func filtered(_ isIncluded: (Line) throws -> Bool) rethrows -> LineColumns {
        var kept: [LineSlot] = []
        kept.reserveCapacity(self.slots.count)
        try self.forEachLine { index, line in
            if try isIncluded(line) { kept.append(self.slots[index]) }
        }
        return LineColumns(buffers: kept.isEmpty ? [] : self.buffers, slots: kept)
    }

    /// The lines whose bytes satisfy `isIncluded`, over the same buffers. The bytes are read in place, a buffer at a
    /// time: no `Line` is made, so no reference is counted per line, whatever `isIncluded` is.
    @inlinable
    func filteredBytes(_ isIncluded: (UnsafeRawBufferPointer) throws -> Bool) rethrows -> LineColumns {
        var kept: [LineSlot] = []
        kept.reserveCapacity(self.slots.count)
        var index = 0
        while index < self.slots.count {
            let buffer = self.slots[index].buffer
            try self.buffers[Int(buffer)].bytes.withUnsafeBytes { bytes in
                repeat {
                    let slot = self.slots[index]
                    if try isIncluded(UnsafeRawBufferPointer(rebasing: bytes[slot.start..<slot.end])) {
                        kept.append(slot)
                    }
                    index += 1
                } while index < self.slots.count && self.slots[index].buffer == buffer
            }
        }
        return LineColumns(buffers: kept.isEmpty ? [] : self.buffers, slots: kept)
    }

    /// The lines that contain `needle` (not empty; with `invert`, the lines that do not), over the same buffers.
    ///
    /// Lines that lie back to back in a buffer (as framed) are searched as one run: the search goes from one
    /// occurrence of the needle to the next, not line by line — in text, most lines hold no candidate at all. An
    /// occurrence never spans two lines: a needle with a `\n` in it is in no line.
    func filtered(containing needle: UnsafeRawBufferPointer, invert: Bool) -> LineColumns {
        var kept: [LineSlot] = []
        kept.reserveCapacity(self.slots.count)
        let searchable = !needle.contains(0x0A)
        var index = 0
        while index < self.slots.count {
            // A run: slots of one buffer, each starting right after the newline that ends the one before.
            let buffer = self.slots[index].buffer
            var end = index + 1
            while end < self.slots.count && self.slots[end].buffer == buffer
                && self.slots[end].start == self.slots[end - 1].end + 1
            {
                end += 1
            }
            let first = index
            self.buffers[Int(buffer)].bytes.withUnsafeBytes { bytes in
                var line = first
                var from = self.slots[first].start
                let to = self.slots[end - 1].end
                while searchable, line < end, from < to {
                    guard
                        let found = Line.firstOccurrence(
                            of: needle,
                            in: UnsafeRawBufferPointer(rebasing: bytes[from..<to])
                        )
                    else { break }
                    let at = from + found
                    // The lines before the one the occurrence is in hold none.
                    while self.slots[line].end < at {
                        if invert { kept.append(self.slots[line]) }
                        line += 1
                    }
                    if !invert { kept.append(self.slots[line]) }
                    from = self.slots[line].end + 1
                    line += 1
                }
                if invert {
                    while line < end {
                        kept.append(self.slots[line])
                        line += 1
                    }
                }
            }
            index = end
        }
        return LineColumns(buffers: kept.isEmpty ? [] : self.buffers, slots: kept)
    }

    /// Appends the lines of `other`, sharing buffers the two have in common at the seam.
    @usableFromInline
    mutating func append(_ other: LineColumns) {
        guard !other.slots.isEmpty else { return }
        var shift = Int32(self.buffers.count)
        var otherBuffers = other.buffers[...]
        if let last = self.buffers.last, let first = otherBuffers.first, last === first {
            shift -= 1
            otherBuffers = otherBuffers.dropFirst()
        }
        self.buffers.append(contentsOf: otherBuffers)
        self.slots.reserveCapacity(self.slots.count + other.slots.count)
        for var slot in other.slots {
            slot.buffer += shift
            self.slots.append(slot)
        }
    }
}

/// Where one line of a columnar batch lies: its buffer, its bytes there, its number and file.
@usableFromInline
struct LineSlot: Sendable {
    @usableFromInline var start: Int
    @usableFromInline var end: Int
    @usableFromInline var number: Int
    @usableFromInline var buffer: Int32
    @usableFromInline var source: Int32

    @inlinable
    init(start: Int, end: Int, number: Int, buffer: Int32, source: Int32) {
        self.start = start
        self.end = end
        self.number = number
        self.buffer = buffer
        self.source = source
    }

    @inlinable var count: Int { self.end - self.start }
}

/// Decoded bytes that lines are framed from, counted in the run's bytes in flight while the engine holds them.
@usableFromInline
final class LineBuffer: Sendable {
    @usableFromInline let bytes: [UInt8]
    private let budget: ByteBudget?

    init(_ bytes: [UInt8], budget: ByteBudget?) {
        self.bytes = bytes
        self.budget = budget
        budget?.add(bytes.count)
    }

    deinit {
        self.budget?.release(self.bytes.count)
    }
}
