import CIsal

/// One ISA-L (igzip) deflate stream with its level buffer, used by one worker at a time.
///
/// Like zlib's streams it is kept and reset between blocks: the level buffer (up to ~1 MiB at level 3) is
/// allocated once per worker, not per block.
final class IsalDeflateStream: @unchecked Sendable {
    private let stream: UnsafeMutablePointer<isal_zstream>
    private let level: UInt32
    private let levelBuffer: UnsafeMutableRawBufferPointer

    init(level: Int32) {
        self.level = UInt32(level)
        self.stream = .allocate(capacity: 1)
        self.stream.initialize(to: isal_zstream())
        self.levelBuffer = .allocate(byteCount: Int(CIsal_levelBufferSize(UInt32(level))), alignment: 16)
        isal_deflate_init(self.stream)
    }

    deinit {
        self.stream.deallocate()
        self.levelBuffer.deallocate()
    }

    /// `block` as raw deflate primed with its dictionary, ended by a sync flush (byte-aligned, not final).
    func compress(_ block: GzipBlock) throws(FileError) -> [UInt8] {
        isal_deflate_reset(self.stream)
        self.stream.pointee.level = self.level
        self.stream.pointee.level_buf = self.levelBuffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
        self.stream.pointee.level_buf_size = UInt32(self.levelBuffer.count)
        self.stream.pointee.flush = UInt16(SYNC_FLUSH)
        self.stream.pointee.end_of_stream = 0
        self.stream.pointee.gzip_flag = UInt16(IGZIP_DEFLATE)
        if !block.dictionary.isEmpty {
            let status = block.dictionary.withUnsafeBytes { dictionary in
                isal_deflate_set_dict(
                    self.stream,
                    UnsafeMutablePointer(mutating: dictionary.bindMemory(to: UInt8.self).baseAddress),
                    UInt32(dictionary.count)
                )
            }
            guard status == COMP_OK else { throw Self.failure("isal_deflate_set_dict", status) }
        }
        // Deflate never grows data by more than a few bytes per 64 KiB stored block; the loop grows it anyway.
        var output = [UInt8](unsafeUninitializedCapacity: block.data.count + block.data.count / 8 + 1024) {
            _,
            initialized in initialized = block.data.count + block.data.count / 8 + 1024
        }
        var produced = 0
        let status = block.data.withUnsafeBytes { input -> Int32 in
            self.stream.pointee.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: UInt8.self).baseAddress)
            self.stream.pointee.avail_in = UInt32(input.count)
            while true {
                let status = output.withUnsafeMutableBytes { buffer in
                    self.stream.pointee.next_out = buffer.bindMemory(to: UInt8.self).baseAddress! + produced
                    self.stream.pointee.avail_out = UInt32(buffer.count - produced)
                    defer { produced = buffer.count - Int(self.stream.pointee.avail_out) }
                    return isal_deflate(self.stream)
                }
                guard status == COMP_OK else { return status }
                // All input taken and room left over: the sync flush is complete.
                if self.stream.pointee.avail_in == 0 && produced < output.count { return COMP_OK }
                output.append(contentsOf: repeatElement(0, count: output.count))
            }
        }
        guard status == COMP_OK else { throw Self.failure("isal_deflate", status) }
        output.removeLast(output.count - produced)
        return output
    }

    private static func failure(_ call: String, _ status: Int32) -> FileError {
        FileError(code: .systemError, path: "-", detail: "ISA-L \(call) failed (\(status))")
    }
}
