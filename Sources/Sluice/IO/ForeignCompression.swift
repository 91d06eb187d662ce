/// Compressed formats other than gzip, told by their first bytes.
///
/// The reader decodes gzip and passes anything else through as text; a file in one of these formats would then give
/// garbage records and a success. Each signature is one no text starts with: control bytes, or (bzip2) a block
/// header of ten bytes. Only the bytes at hand are compared — a pipe's first read shorter than a signature is text,
/// as the reader must not wait for more bytes before handing on a live input's first line.
struct ForeignCompression: Sendable, Hashable {
    /// The format's name, as its tools say it.
    let name: String
    /// How to turn it into something Sluice reads.
    let advice: String
    private let signatures: [[UInt8]]

    static let all: [ForeignCompression] = [
        ForeignCompression(name: "zstd", advice: "zstd -dc", signatures: [[0x28, 0xB5, 0x2F, 0xFD]]),
        ForeignCompression(name: "xz", advice: "xz -dc", signatures: [[0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]]),
        ForeignCompression(
            name: "bzip2",
            advice: "bzip2 -dc",
            // "BZh", the block size, then a block's magic (π) or the end of stream's (√π), for an empty file.
            signatures: (0x31...0x39).flatMap { level -> [[UInt8]] in
                [
                    [0x42, 0x5A, 0x68, level, 0x31, 0x41, 0x59, 0x26, 0x53, 0x59],
                    [0x42, 0x5A, 0x68, level, 0x17, 0x72, 0x45, 0x38, 0x50, 0x90],
                ]
            }
        ),
        ForeignCompression(name: "lz4", advice: "lz4 -dc", signatures: [[0x04, 0x22, 0x4D, 0x18]]),
        // zlib's header at the levels that give a control byte second ('x^', levels 2 to 5, can start text).
        ForeignCompression(
            name: "zlib",
            advice: "pigz -dcz",
            signatures: [[0x78, 0x01], [0x78, 0x9C], [0x78, 0xDA]]
        ),
        ForeignCompression(name: "compress (.Z)", advice: "gzip -dc", signatures: [[0x1F, 0x9D]]),
        ForeignCompression(name: "zip", advice: "unzip -p", signatures: [[0x50, 0x4B, 0x03, 0x04]]),
    ]

    /// The format whose signature `head` starts with, if any.
    static func format(of head: some Collection<UInt8>) -> ForeignCompression? {
        Self.all.first { format in format.signatures.contains { head.starts(with: $0) } }
    }
}
