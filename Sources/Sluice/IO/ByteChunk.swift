/// Decoded bytes of one input file, as they travel from the reading stage to the line framer.
struct ByteChunk: Sendable, ByteSized {
    /// The bytes, counted in the run's bytes in flight until the last line framed from them is let go of.
    var buffer: LineBuffer
    /// The file the bytes come from, as given.
    var path: String
    /// The position of the first byte in the file's decoded data.
    var offset: Int
    /// Whether this is the file's last chunk (it may be empty).
    var endOfFile: Bool
    /// Whether reading stopped early (a graceful shutdown): a line cut short at the end is not a record.
    var stopped = false

    var bytes: [UInt8] { self.buffer.bytes }
    var byteCount: Int { self.buffer.bytes.count }
}
