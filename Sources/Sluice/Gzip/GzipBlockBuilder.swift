#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Gathers lines, each followed by `\n`, into gzip blocks that end at a line boundary.
///
/// Lines come as runs of contiguous bytes (``Batch/forEachRun(_:)``): a run is copied with one `memcpy`, and cut
/// only where a block fills up, at the first line end at or past the block size.
struct GzipBlockBuilder {
    let size: Int
    /// The run's budget of bytes in flight, which the blocks count in.
    private let budget: ByteBudget?
    private var data: [UInt8] = []
    private var dictionary: [UInt8] = []

    /// Whether each block carries the 32 KiB before it as its dictionary (not for independent gzip members).
    private let dictionaries: Bool
    /// The lines added through ``add(_:into:)``, for the run report.
    var lineCount = 0

    init(size: Int, dictionaries: Bool = true, budget: ByteBudget? = nil) {
        self.size = size
        self.dictionaries = dictionaries
        self.budget = budget
        self.data.reserveCapacity(size + size / 8)
    }

    /// Adds a run of lines (`terminated`: it ends with its `\n`; otherwise it is one line, and a `\n` is added),
    /// appending the blocks completed to `blocks`.
    mutating func append(_ run: UnsafeRawBufferPointer, terminated: Bool, into blocks: inout [GzipBlock]) {
        var rest = run
        while terminated, let base = rest.baseAddress, self.data.count + rest.count >= self.size {
            // The block is full at the first `\n` at or past the size: the run's last byte is one.
            let from = max(self.size - self.data.count - 1, 0)
            guard let found = memchr(base + from, 0x0A, rest.count - from) else { break }
            let cut = UnsafeRawPointer(found) - base + 1
            self.data.append(
                contentsOf: UnsafeRawBufferPointer(rebasing: rest[..<cut]).assumingMemoryBound(to: UInt8.self)
            )
            blocks.append(self.takeBlock())
            rest = UnsafeRawBufferPointer(rebasing: rest[cut...])
        }
        self.data.append(contentsOf: rest.assumingMemoryBound(to: UInt8.self))
        if !terminated {
            self.data.append(0x0A)
            if self.data.count >= self.size { blocks.append(self.takeBlock()) }
        }
    }

    /// Whether no line waits for a block.
    var isEmpty: Bool { self.data.isEmpty }

    /// The last, partial block, if any.
    mutating func finish() -> GzipBlock? {
        self.data.isEmpty ? nil : self.takeBlock()
    }

    private mutating func takeBlock() -> GzipBlock {
        let held = self.budget.map { HeldBytes(self.data.count + self.dictionary.count, in: $0) }
        let block = GzipBlock(data: self.data, dictionary: self.dictionary, held: held)
        if self.dictionaries {
            self.dictionary = Array(self.data.suffix(GzipBlockCompressor.dictionarySize))
        }
        self.data = []
        self.data.reserveCapacity(self.size + self.size / 8)
        return block
    }
}
