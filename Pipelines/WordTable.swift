public import Sluice

/// Counts of case-folded words, built without allocating per word: an open-addressing hash table whose keys live
/// in one byte arena.
///
/// A word is a maximal run of ASCII letters and digits; letters are folded to lower case as they are hashed, so no
/// `String` and no per-word array is made. A word is looked up through the bytes of the line it is in, compared
/// with the arena's copy byte by byte (folding as it goes), and copied into the arena only the first time it is
/// seen. Memory grows with the number of distinct words, never with the input.
public struct WordTable: Sendable {
    /// Slot `i` holds an entry index + 1, or 0 when empty. Its size is a power of two, at most three quarters full.
    private var slots: [UInt32]
    /// Each entry's hash (its low 32 bits: enough to place it in any table this size can reach).
    private var hashes: [UInt32] = []
    private var starts: [UInt32] = []
    private var lengths: [UInt32] = []
    private var counts: [Int] = []
    /// Every distinct word's bytes, lower case, back to back.
    private var arena: [UInt8] = []

    public init() {
        self.slots = [UInt32](repeating: 0, count: 1024)
    }

    /// How many distinct words were counted.
    public var count: Int { self.counts.count }

    /// Counts every word of `line`.
    public mutating func addWords(of line: Line) {
        Self.folded.withUnsafeBufferPointer { folded in
            line.withUnsafeBytes { bytes in
                guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
                let end = bytes.count
                var index = 0
                while index < end {
                    // Skip to the next word.
                    while index < end && folded[Int(base[index])] == 0 { index += 1 }
                    guard index < end else { break }
                    let start = index
                    var hash = Self.hashSeed
                    while index < end {
                        let byte = folded[Int(base[index])]
                        if byte == 0 { break }
                        hash = (hash ^ UInt64(byte)) &* Self.hashPrime
                        index += 1
                    }
                    let word = UnsafeBufferPointer(start: base + start, count: index - start)
                    self.add(word, hash: UInt32(truncatingIfNeeded: hash), count: 1, folded: folded)
                }
            }
        }
    }

    /// Adds the counts of `other` (for merging the tables of parallel workers).
    public mutating func merge(_ other: WordTable) {
        if self.counts.isEmpty && self.slots.count <= other.slots.count {
            self = other
            return
        }
        Self.folded.withUnsafeBufferPointer { folded in
            other.arena.withUnsafeBufferPointer { arena in
                for entry in other.counts.indices {
                    let word = UnsafeBufferPointer(
                        rebasing: arena[Int(other.starts[entry])..<Int(other.starts[entry] + other.lengths[entry])]
                    )
                    self.add(word, hash: other.hashes[entry], count: other.counts[entry], folded: folded)
                }
            }
        }
    }

    /// Adds `count` to `word` (any case: it is folded). For counts made elsewhere, such as a unit's partial result.
    public mutating func add(_ word: UnsafeBufferPointer<UInt8>, count: Int) {
        Self.folded.withUnsafeBufferPointer { folded in
            var hash = Self.hashSeed
            for byte in word { hash = (hash ^ UInt64(folded[Int(byte)])) &* Self.hashPrime }
            self.add(word, hash: UInt32(truncatingIfNeeded: hash), count: count, folded: folded)
        }
    }

    /// Every word with its count as `COUNT WORD\n` lines, in no particular order, in chunks of about a MiB: the
    /// text of a result with every count (no array, string or `Line` per word), for
    /// ``Invocation/writeResult(text:)``.
    public var countText: [[UInt8]] {
        var chunks: [[UInt8]] = []
        var chunk: [UInt8] = []
        chunk.reserveCapacity(1 << 20 + 256)
        var digits = [UInt8](repeating: 0, count: 20)
        for entry in self.counts.indices {
            // The count's decimal digits, last first.
            var value = self.counts[entry]
            var first = digits.count
            repeat {
                first -= 1
                digits[first] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
            } while value > 0
            chunk.append(contentsOf: digits[first...])
            chunk.append(UInt8(ascii: " "))
            chunk.append(contentsOf: self.word(entry))
            chunk.append(UInt8(ascii: "\n"))
            if chunk.count >= 1 << 20 {
                chunks.append(chunk)
                chunk = []
                chunk.reserveCapacity(1 << 20 + 256)
            }
        }
        if !chunk.isEmpty { chunks.append(chunk) }
        return chunks
    }

    /// The `limit` most frequent words, most frequent first, then by their bytes.
    public func top(_ limit: Int) -> [(word: [UInt8], count: Int)] {
        let order = self.counts.indices.sorted { lhs, rhs in
            if self.counts[lhs] != self.counts[rhs] { return self.counts[lhs] > self.counts[rhs] }
            return self.word(lhs).lexicographicallyPrecedes(self.word(rhs))
        }
        return order.prefix(max(limit, 0)).map { (Array(self.word($0)), self.counts[$0]) }
    }

    /// The count of `word` (as given: lower case), 0 if it was never seen.
    public func count(of word: String) -> Int {
        var hash = Self.hashSeed
        for byte in word.utf8 { hash = (hash ^ UInt64(byte)) &* Self.hashPrime }
        let bytes = Array(word.utf8)
        let entry = Self.folded.withUnsafeBufferPointer { folded in
            bytes.withUnsafeBufferPointer { self.find($0, hash: UInt32(truncatingIfNeeded: hash), folded: folded) }
        }
        return entry.map { self.counts[$0] } ?? 0
    }

    private func word(_ entry: Int) -> ArraySlice<UInt8> {
        self.arena[Int(self.starts[entry])..<Int(self.starts[entry] + self.lengths[entry])]
    }

    /// Adds `count` to `word`, whose bytes may be in any case (they are folded when compared and stored).
    private mutating func add(
        _ word: UnsafeBufferPointer<UInt8>,
        hash: UInt32,
        count: Int,
        folded: UnsafeBufferPointer<UInt8>
    ) {
        if let entry = self.find(word, hash: hash, folded: folded) {
            self.counts[entry] += count
            return
        }
        let entry = self.counts.count
        self.hashes.append(hash)
        self.starts.append(UInt32(self.arena.count))
        self.lengths.append(UInt32(word.count))
        self.counts.append(count)
        for byte in word { self.arena.append(folded[Int(byte)]) }
        self.insert(entry)
        if self.counts.count * 4 > self.slots.count * 3 { self.grow() }
    }

    /// The entry holding `word`, if any.
    private func find(
        _ word: UnsafeBufferPointer<UInt8>,
        hash: UInt32,
        folded: UnsafeBufferPointer<UInt8>
    ) -> Int? {
        self.slots.withUnsafeBufferPointer { slots in
            self.arena.withUnsafeBufferPointer { arena in
                let mask = slots.count - 1
                var slot = Int(hash) & mask
                while true {
                    let stored = slots[slot]
                    if stored == 0 { return nil }
                    let entry = Int(stored - 1)
                    if self.hashes[entry] == hash && Int(self.lengths[entry]) == word.count
                        && Self.equalFolded(word, arena, from: Int(self.starts[entry]), folded: folded)
                    {
                        return entry
                    }
                    slot = (slot + 1) & mask
                }
            }
        }
    }

    private static func equalFolded(
        _ word: UnsafeBufferPointer<UInt8>,
        _ arena: UnsafeBufferPointer<UInt8>,
        from start: Int,
        folded: UnsafeBufferPointer<UInt8>
    ) -> Bool {
        for offset in 0..<word.count where folded[Int(word[offset])] != arena[start + offset] {
            return false
        }
        return true
    }

    private mutating func insert(_ entry: Int) {
        let mask = self.slots.count - 1
        var slot = Int(self.hashes[entry]) & mask
        while self.slots[slot] != 0 { slot = (slot + 1) & mask }
        self.slots[slot] = UInt32(entry + 1)
    }

    private mutating func grow() {
        self.slots = [UInt32](repeating: 0, count: self.slots.count * 2)
        for entry in self.counts.indices { self.insert(entry) }
    }

    /// FNV-1a, 64 bits, over the folded bytes (of which the table keeps the low 32).
    private static let hashSeed: UInt64 = 0xcbf2_9ce4_8422_2325
    private static let hashPrime: UInt64 = 0x0000_0100_0000_01b3

    /// Each byte's lower-case form if it belongs to a word (ASCII letters and digits), else 0.
    private static let folded: [UInt8] = (0...255).map { byte in
        switch UInt8(byte) {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): UInt8(byte)
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): UInt8(byte) | 0x20
        default: 0
        }
    }
}
