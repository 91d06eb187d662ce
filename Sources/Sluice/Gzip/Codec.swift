/// Which library does the gzip work of a read or a write: zlib (the reference), ISA-L (igzip) or libdeflate.
///
/// All three give the same records and the same errors; they differ in speed. ``automatic`` (the default) takes the
/// fastest for each job, as measured on this project's benchmark text:
///
/// | job | zlib | ISA-L | libdeflate |
/// |---|---|---|---|
/// | inflate a stream | yes | **default** (2.3×) | no: whole buffers only |
/// | deflate, levels 1–3 | yes | **default** (~5× at level 1) | yes |
/// | deflate, levels 4–9 | yes | no: levels 1–3 only | **default** (~2× at level 6) |
///
/// Level 0 (stored) is zlib's. A job a backend cannot do — libdeflate for reading, ISA-L at level 0 (its level 0
/// compresses: it has no stored level) or above 3 — is a ``ConfigurationError`` before the run starts.
public struct Codec: Sendable, Hashable, CustomStringConvertible {
    enum Base: String, Sendable, Hashable, CaseIterable {
        case automatic
        case zlib
        case isal
        case libdeflate
    }

    let base: Base

    /// The fastest backend for each job (the default).
    public static let automatic = Codec(base: .automatic)
    /// zlib (`libz-dev`): the reference, every job.
    public static let zlib = Codec(base: .zlib)
    /// ISA-L's igzip (`libisal-dev`): streaming inflate, and deflate at levels 1–3.
    public static let isal = Codec(base: .isal)
    /// libdeflate (`libdeflate-dev`): deflate at levels 0–9 (whole blocks, each written as a gzip member).
    public static let libdeflate = Codec(base: .libdeflate)

    /// Every codec, `automatic` first.
    public static let all: [Codec] = Base.allCases.map { Codec(base: $0) }

    /// The codec named `name` (`automatic`, `zlib`, `isal`, `libdeflate`), or `nil`.
    public init?(name: String) {
        guard let base = Base(rawValue: name) else { return nil }
        self.base = base
    }

    init(base: Base) {
        self.base = base
    }

    public var description: String { self.base.rawValue }

    /// The backend that inflates gzip input.
    func inflater() throws(ConfigurationError) -> InflateBackend {
        switch self.base {
        case .automatic, .isal: return .isal
        case .zlib: return .zlib
        case .libdeflate:
            throw ConfigurationError(
                setting: "codec",
                text: "libdeflate",
                requirement: "cannot read: it inflates whole buffers only, not streams (use zlib or isal)"
            )
        }
    }

    /// The backend that deflates gzip output at `level`.
    func deflater(level: Int) throws(ConfigurationError) -> DeflateBackend {
        switch self.base {
        case .automatic:
            return level == 0 ? .zlib : level <= 3 ? .isal : .libdeflate
        case .zlib: return .zlib
        case .libdeflate: return .libdeflate
        case .isal:
            guard (1...3).contains(level) else {
                throw ConfigurationError(
                    setting: "codec",
                    text: "isal",
                    requirement: "cannot write gzip level \(level): ISA-L has levels 1 to 3 (use zlib or libdeflate)"
                )
            }
            return .isal
        }
    }
}

/// A library that inflates gzip streams.
enum InflateBackend: Sendable, Hashable {
    case zlib
    case isal
}

/// A library that deflates gzip blocks.
enum DeflateBackend: Sendable, Hashable {
    case zlib
    case isal
    case libdeflate

    /// Whether each block is a whole gzip member (libdeflate compresses whole buffers into final blocks, which
    /// cannot be joined into one deflate stream) rather than sync-flushed raw deflate joined into one member.
    var writesMembers: Bool { self == .libdeflate }

    /// The default block size. 512 KiB for every backend. For libdeflate's independent members it keeps the output
    /// no larger than `gzip -N`'s (measured on the benchmark text). For ISA-L, whose level 1 deflates ~600 MB/s, a
    /// 128 KiB block (pigz's size) is a job of ~0.2 ms, and the compressors spent 41% of a run waiting for the next
    /// one: on real text `cat` to a level-1 `.gz` took 0.40 s with 128 KiB blocks, 0.29 s with 512 KiB (the output
    /// 0.05% larger).
    var defaultBlockSize: Int { 512 * 1024 }
}
