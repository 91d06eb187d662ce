/// How ``Pipeline/lines(from:options:)`` reads its inputs.
public struct ReadOptions: Sendable, Hashable {
    /// How many bytes each read asks for (and the size of decoded chunks). Default 256 KiB. Larger chunks save a
    /// little (512 KiB: ~2.5% on a gzip `grep`), but the framing stage holds a slot per line of a whole chunk, so on
    /// dense input (1e9 newlines) peak memory grows with them: 48 MiB at 256 KiB, 66 MiB at 512 KiB (measured with a
    /// 4-chunk ``readAhead``; 52 MiB at 256 KiB with the default 16).
    public var chunkSize: Int
    /// The longest line accepted, in bytes. A longer line is an error naming the file and its offset — never
    /// unbounded memory. Default 8 MiB (it enters ``RunReport/bytesInFlightBound`` up to three times).
    public var maxRecordBytes: Int
    /// The library that inflates gzip input. Default ``Codec/automatic`` (ISA-L); ``Codec/libdeflate`` cannot read
    /// streams and is a ``ConfigurationError``.
    public var codec: Codec
    /// How many chunks the reader may have ready before the framing stage takes them: the capacity of the channel
    /// between the two (at least ``RunOptions/channelCapacity``). Default 16 (4 MiB of 256 KiB chunks).
    ///
    /// The reader is a pipeline's one serial stage, on a thread of its own; the stages after it share the compute
    /// pool with the rest of the run (a gzip writer's deflate jobs). A deeper channel lets reading run on while the
    /// framing waits for a core, instead of stopping at every such wait: a gzip `grep --invert` into a level-1
    /// `.gz` on 200 MB of real text, on 2 cores, took 0.428 s with 4 chunks and 0.413 s with 16 (medians of 15
    /// alternating runs), its reader blocked 21% → 8% of the run. It does not raise the memory bound: what the
    /// reader holds is counted in ``RunOptions/maxBytesInFlight`` either way.
    public var readAhead: Int

    /// Creates read options.
    public init(
        chunkSize: Int = 256 * 1024,
        maxRecordBytes: Int = 8 * 1024 * 1024,
        codec: Codec = .automatic,
        readAhead: Int = 16
    ) {
        self.chunkSize = chunkSize
        self.maxRecordBytes = maxRecordBytes
        self.codec = codec
        self.readAhead = readAhead
    }

    func validate() throws(ConfigurationError) {
        try ConfigurationError.requirePositive(self.chunkSize, "chunkSize")
        try ConfigurationError.requirePositive(self.maxRecordBytes, "maxRecordBytes")
        try ConfigurationError.requirePositive(self.readAhead, "readAhead")
        _ = try self.codec.inflater()
    }
}

/// How ``Pipeline/write(to:options:)`` writes its output.
public struct WriteOptions: Sendable, Hashable {
    /// Whether the output is compressed.
    public struct Compression: Sendable, Hashable {
        enum Base: Hashable, Sendable {
            case automatic
            case none
            case gzip
        }

        let base: Base

        /// gzip if the path ends in `.gz`, plain otherwise (the default).
        public static let automatic = Compression(base: .automatic)
        /// Plain bytes, whatever the name.
        public static let none = Compression(base: .none)
        /// gzip, whatever the name.
        public static let gzip = Compression(base: .gzip)
    }

    /// Whether the output is compressed. Default ``Compression/automatic``.
    public var compression: Compression
    /// The gzip level, 0 (stored) to 9 (smallest). Default 6, as `gzip`.
    public var gzipLevel: Int
    /// How many bytes of output are compressed as one job (at a line boundary at or past this size). `nil` (the
    /// default): 512 KiB — for zlib and ISA-L each block is primed with the previous 32 KiB; for libdeflate each is
    /// an independent gzip member.
    public var gzipBlockSize: Int?
    /// The library that deflates gzip output. Default ``Codec/automatic``: ISA-L at levels 1–3, libdeflate at 4–9,
    /// zlib at 0. ISA-L above level 3 is a ``ConfigurationError`` when the output is gzip (a plain output has no level).
    public var codec: Codec
    /// How many blocks are compressed at once; defaults to the compute pool's thread count.
    public var compressionConcurrency: Int?
    /// Whether to `fsync` the file before closing it. Default `false`.
    public var synchronize: Bool

    /// Creates write options.
    public init(
        compression: Compression = .automatic,
        gzipLevel: Int = 6,
        gzipBlockSize: Int? = nil,
        compressionConcurrency: Int? = nil,
        synchronize: Bool = false,
        codec: Codec = .automatic
    ) {
        self.compression = compression
        self.gzipLevel = gzipLevel
        self.gzipBlockSize = gzipBlockSize
        self.codec = codec
        self.compressionConcurrency = compressionConcurrency
        self.synchronize = synchronize
    }

    /// Checks the settings; the codec only against a gzip output's level (a plain file has none: a codec forced for
    /// the inputs, as `--codec isal` does, leaves it be).
    func validate(compressing: Bool) throws(ConfigurationError) {
        guard (0...9).contains(self.gzipLevel) else {
            throw ConfigurationError(setting: "gzipLevel", value: self.gzipLevel, requirement: "must be 0 to 9")
        }
        if let blockSize = self.gzipBlockSize {
            try ConfigurationError.requirePositive(blockSize, "gzipBlockSize")
        }
        if compressing { _ = try self.codec.deflater(level: self.gzipLevel) }
        if let concurrency = self.compressionConcurrency {
            try ConfigurationError.requirePositive(concurrency, "compressionConcurrency")
        }
    }

    /// The deflate backend and block size this output uses.
    func deflateSettings() throws(ConfigurationError) -> (backend: DeflateBackend, blockSize: Int) {
        let backend = try self.codec.deflater(level: self.gzipLevel)
        return (backend, self.gzipBlockSize ?? backend.defaultBlockSize)
    }

    func compresses(_ path: String) -> Bool {
        switch self.compression.base {
        case .automatic: path.hasSuffix(".gz")
        case .none: false
        case .gzip: true
        }
    }
}
