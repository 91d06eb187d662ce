import CLibdeflate

/// One libdeflate compressor, used by one worker at a time: it turns a whole block into a whole gzip member.
package final class LibdeflateCompressor: @unchecked Sendable {
    private let compressor: OpaquePointer

    package init(level: Int32) throws(FileError) {
        guard let compressor = libdeflate_alloc_compressor(level) else {
            throw FileError(code: .systemError, path: "-", detail: "libdeflate_alloc_compressor(\(level)) failed")
        }
        self.compressor = compressor
    }

    deinit {
        libdeflate_free_compressor(self.compressor)
    }

    /// `data` as one gzip member: header, deflate data, CRC32 and length.
    package func member(of data: [UInt8]) throws(FileError) -> [UInt8] {
        let bound = libdeflate_gzip_compress_bound(self.compressor, data.count)
        var output = [UInt8](unsafeUninitializedCapacity: bound) { _, initialized in initialized = bound }
        let written = data.withUnsafeBytes { input in
            output.withUnsafeMutableBytes { buffer in
                libdeflate_gzip_compress(self.compressor, input.baseAddress, input.count, buffer.baseAddress, bound)
            }
        }
        guard written > 0 else {
            throw FileError(code: .systemError, path: "-", detail: "libdeflate_gzip_compress failed")
        }
        output.removeLast(bound - written)
        return output
    }
}
