/// The gzip file ``GzipFileSink`` writes: its framing around the blocks, and their combined CRC32 and length.
final class GzipFile {
    private let writer: BufferedFileWriter
    private let members: Bool
    private var crc: UInt32 = 0
    private var length = 0
    private var wroteBlock = false

    init(path: String, members: Bool) throws {
        self.writer = try BufferedFileWriter(path: path)
        self.members = members
    }

    /// Writes what comes before the blocks; returns its size.
    func begin() throws -> Int {
        guard !self.members else { return 0 }
        try self.writer.write(GzipBlockCompressor.header)
        return GzipBlockCompressor.header.count
    }

    func append(_ block: CompressedBlock) throws {
        try self.writer.write(block.bytes)
        self.wroteBlock = true
        guard !self.members else { return }  // a member carries its own CRC32 and length
        self.crc = GzipBlockCompressor.combine(self.crc, block.crc, secondLength: block.length)
        self.length += block.length
    }

    /// Hands what is buffered to the system.
    func flush() throws {
        if self.writer.hasBuffered { try self.writer.flush() }
    }

    /// Writes what comes after the blocks and closes the file; returns the size of what it wrote.
    func finish(synchronize: Bool) throws -> Int {
        var closing: [UInt8] = []
        if !self.members {
            closing = GzipBlockCompressor.finalBlock + GzipBlockCompressor.trailer(crc: self.crc, length: self.length)
        } else if !self.wroteBlock {
            // No input: one empty member, so the file is still gzip.
            closing =
                GzipBlockCompressor.header + GzipBlockCompressor.finalBlock
                + GzipBlockCompressor.trailer(crc: 0, length: 0)
        }
        try self.writer.write(closing)
        try self.writer.close(synchronize: synchronize)
        return closing.count
    }
}
