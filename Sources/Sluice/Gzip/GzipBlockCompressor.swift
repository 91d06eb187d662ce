import CZlib
import Synchronization

/// A piece of the output to compress on its own, as pigz does: the bytes, and the 32 KiB before them as the
/// deflate dictionary, so cutting the stream into blocks costs almost nothing in compression ratio.
struct GzipBlock: Sendable, ByteSized {
    var data: [UInt8]
    var dictionary: [UInt8]
    /// The block's place in the run's bytes in flight.
    var held: HeldBytes?

    var byteCount: Int { self.data.count }
}

/// A compressed ``GzipBlock``: raw deflate data that ends byte-aligned (a sync flush), its CRC32, its length.
struct CompressedBlock: Sendable, ByteSized {
    var bytes: [UInt8]
    var crc: UInt32
    var length: Int
    /// The block's place in the run's bytes in flight.
    var held: HeldBytes?

    var byteCount: Int { self.bytes.count }
}

/// Compresses blocks independently so they can be compressed in parallel and joined into one gzip member.
///
/// Each block is raw deflate (no header) primed with the previous block's last 32 KiB and ended with
/// `Z_SYNC_FLUSH`, which leaves it byte-aligned and not final: blocks concatenate into one valid deflate stream,
/// which the writer closes with an empty final block. Their CRCs combine with `crc32_combine`.
///
/// zlib's deflate state is ~300 KiB to allocate and clear, so streams are kept and reset between blocks (as pigz
/// does) rather than made per block: one per worker at most, released by ``close()``.
final class GzipBlockCompressor: Sendable {
    /// The deflate window: how much of the previous block is useful as a dictionary.
    static let dictionarySize = 32 * 1024

    let level: Int32
    private let idle = Locked<[DeflateStream]>([])

    init(level: Int32) {
        self.level = level
    }

    /// Frees the idle streams; a stream still in use is freed when it comes back.
    func close() {
        let streams = self.idle.withLock { streams in
            defer { streams.removeAll() }
            return streams
        }
        for stream in streams { stream.end() }
    }

    /// Compresses `block`.
    ///
    /// - Important: CPU-heavy: call it on a ``ComputePool`` (the gzip writer does, through a parallel stage).
    func compress(_ block: GzipBlock) throws -> CompressedBlock {
        let deflater = try self.idle.withLock { $0.popLast() } ?? DeflateStream(level: self.level)
        defer { self.idle.withLock { $0.append(deflater) } }
        return try Self.compress(block, with: deflater.stream)
    }

    private static func compress(
        _ block: GzipBlock,
        with stream: UnsafeMutablePointer<z_stream>
    ) throws
        -> CompressedBlock
    {
        deflateReset(stream)
        if !block.dictionary.isEmpty {
            _ = block.dictionary.withUnsafeBytes { dictionary in
                deflateSetDictionary(stream, dictionary.bindMemory(to: Bytef.self).baseAddress, uInt(dictionary.count))
            }
        }
        // deflateBound covers the data; a sync flush adds at most a few bytes more.
        // Not cleared first: zlib writes the bytes, and the array is cut to what it wrote.
        let bound = Int(deflateBound(stream, uLong(block.data.count))) + 64
        var output = [UInt8](unsafeUninitializedCapacity: bound) { _, initialized in initialized = bound }
        var produced = 0
        block.data.withUnsafeBytes { input in
            stream.pointee.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
            stream.pointee.avail_in = uInt(input.count)
            repeat {
                if produced == output.count {
                    output.append(contentsOf: repeatElement(0, count: output.count))
                }
                output.withUnsafeMutableBytes { buffer in
                    stream.pointee.next_out = buffer.bindMemory(to: Bytef.self).baseAddress! + produced
                    stream.pointee.avail_out = uInt(buffer.count - produced)
                    _ = deflate(stream, Z_SYNC_FLUSH)
                    produced = buffer.count - Int(stream.pointee.avail_out)
                }
            } while stream.pointee.avail_out == 0
        }
        output.removeLast(output.count - produced)
        let crc = block.data.withUnsafeBytes { data in
            UInt32(crc32(0, data.bindMemory(to: Bytef.self).baseAddress, uInt(data.count)))
        }
        let held = block.held.map { HeldBytes(output.count, in: $0.budget) }
        return CompressedBlock(bytes: output, crc: crc, length: block.data.count, held: held)
    }

    /// The 10-byte gzip header: deflate, no flags, no time, Unix.
    static let header: [UInt8] = [0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03]

    /// An empty final deflate block (fixed Huffman, end-of-block only), closing the stream of sync-flushed blocks.
    static let finalBlock: [UInt8] = [0x03, 0x00]

    /// The 8-byte trailer: CRC32 and the length modulo 2³², little-endian.
    static func trailer(crc: UInt32, length: Int) -> [UInt8] {
        let size = UInt32(truncatingIfNeeded: length)
        return [
            UInt8(truncatingIfNeeded: crc), UInt8(truncatingIfNeeded: crc >> 8),
            UInt8(truncatingIfNeeded: crc >> 16), UInt8(truncatingIfNeeded: crc >> 24),
            UInt8(truncatingIfNeeded: size), UInt8(truncatingIfNeeded: size >> 8),
            UInt8(truncatingIfNeeded: size >> 16), UInt8(truncatingIfNeeded: size >> 24),
        ]
    }

    /// The CRC32 of two pieces joined, from their CRCs and the second's length.
    static func combine(_ first: UInt32, _ second: UInt32, secondLength: Int) -> UInt32 {
        UInt32(crc32_combine(uLong(first), uLong(second), off_t(secondLength)))
    }
}

/// One zlib deflate stream, used by one worker at a time (handed out under the compressor's lock).
final class DeflateStream: @unchecked Sendable {
    let stream: UnsafeMutablePointer<z_stream>
    private var ended = false

    init(level: Int32) throws {
        self.stream = .allocate(capacity: 1)
        self.stream.initialize(to: z_stream())
        // -15: raw deflate with the largest window; memory level 8 and the default strategy, as gzip uses.
        let status = CZlib_deflateInit2(self.stream, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY)
        guard status == Z_OK else {
            self.stream.deallocate()
            self.ended = true
            throw FileError(code: .systemError, path: "-", detail: "zlib deflateInit2 failed (\(status))")
        }
    }

    func end() {
        guard !self.ended else { return }
        self.ended = true
        deflateEnd(self.stream)
        self.stream.deallocate()
    }

    deinit {
        self.end()
    }
}
