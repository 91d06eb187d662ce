import CIsal
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

/// A compressed ``GzipBlock``: raw deflate data that ends byte-aligned (a sync flush), its CRC32, its length — or,
/// from a backend that writes members, a whole gzip member.
struct CompressedBlock: Sendable, ByteSized {
    var bytes: [UInt8]
    var crc: UInt32
    var length: Int
    /// The block's place in the run's bytes in flight.
    var held: HeldBytes?

    var byteCount: Int { self.bytes.count }
}

/// Compresses blocks independently so they can be compressed in parallel and joined into one gzip file.
///
/// With zlib and ISA-L each block is raw deflate (no header) primed with the previous block's last 32 KiB and
/// ended with a sync flush, which leaves it byte-aligned and not final: blocks concatenate into one valid deflate
/// stream, which the writer closes with an empty final block, and their CRCs combine with `crc32_combine`. libdeflate
/// compresses whole buffers into final blocks, so each of its blocks is a gzip member of its own (as bgzip writes):
/// the file is then several members, which every gzip reader reads whole.
///
/// Deflate state is costly to set up (zlib's ~300 KiB, ISA-L's level buffer), so streams are kept and reset
/// between blocks (as pigz does) rather than made per block: one per worker at most, released by ``close()``.
final class GzipBlockCompressor: Sendable {
    /// The deflate window: how much of the previous block is useful as a dictionary.
    static let dictionarySize = 32 * 1024

    let level: Int32
    let backend: DeflateBackend
    private let zlibStreams = Locked<[DeflateStream]>([])
    private let isalStreams = Locked<[IsalDeflateStream]>([])
    private let libdeflateCompressors = Locked<[LibdeflateCompressor]>([])

    init(level: Int32, backend: DeflateBackend = .zlib) {
        self.level = level
        self.backend = backend
    }

    /// Frees the idle streams; a stream still in use is freed when it comes back.
    func close() {
        let streams = self.zlibStreams.withLock { streams in
            defer { streams.removeAll() }
            return streams
        }
        for stream in streams { stream.end() }
        self.isalStreams.withLock { $0.removeAll() }
        self.libdeflateCompressors.withLock { $0.removeAll() }
    }

    /// Compresses `block`.
    ///
    /// - Important: CPU-heavy: call it on a ``ComputePool`` (the gzip writer does, through a parallel stage).
    func compress(_ block: GzipBlock) throws -> CompressedBlock {
        let output: [UInt8]
        let level = self.level
        switch self.backend {
        case .zlib:
            output = try Self.borrow(
                self.zlibStreams,
                make: { try DeflateStream(level: level) },
                use: {
                    try Self.compress(block, with: $0.stream)
                }
            )
        case .isal:
            output = try Self.borrow(
                self.isalStreams,
                make: { IsalDeflateStream(level: level) },
                use: {
                    try $0.compress(block)
                }
            )
        case .libdeflate:
            output = try Self.borrow(
                self.libdeflateCompressors,
                make: { try LibdeflateCompressor(level: level) },
                use: {
                    try $0.member(of: block.data)
                }
            )
        }
        // The member of libdeflate carries its own CRC; the others' CRCs are combined by the writer.
        let crc =
            self.backend.writesMembers
            ? 0
            : block.data.withUnsafeBytes { data in
                crc32_gzip_refl(0, data.bindMemory(to: UInt8.self).baseAddress, UInt64(data.count))
            }
        let held = block.held.map { HeldBytes(output.count, in: $0.budget) }
        return CompressedBlock(bytes: output, crc: crc, length: block.data.count, held: held)
    }

    /// Runs `body` with an idle stream from `pool`, or a new one, and puts it back afterwards.
    private static func borrow<Stream, Result>(
        _ pool: Locked<[Stream]>,
        make: () throws -> Stream,
        use body: (Stream) throws -> Result
    ) throws -> Result {
        let stream = try pool.withLock { $0.popLast() } ?? make()
        defer { pool.withLock { $0.append(stream) } }
        return try body(stream)
    }

    /// zlib: raw deflate primed with the block's dictionary, ended by a sync flush.
    private static func compress(
        _ block: GzipBlock,
        with stream: UnsafeMutablePointer<z_stream>
    ) throws
        -> [UInt8]
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
        return output
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
