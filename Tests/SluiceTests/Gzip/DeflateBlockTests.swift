import Testing

@testable import Sluice

/// Deflate data written bit by bit (RFC 1951), to make the blocks no gzip writer makes: Huffman codes zlib refuses
/// or allows by exception, and blocks of every type in one member.
struct DeflateWriter {
    private(set) var bytes: [UInt8] = []
    private var used = 0  // bits used in the last byte

    /// `count` bits of `value`, the least significant first (header fields, extra bits).
    mutating func bits(_ value: Int, _ count: Int) {
        for index in 0..<count {
            if self.used == 0 { self.bytes.append(0) }
            self.bytes[self.bytes.count - 1] |= UInt8((value >> index) & 1) << self.used
            self.used = (self.used + 1) % 8
        }
    }

    /// A Huffman code: its most significant bit first.
    mutating func code(_ code: Int, _ length: Int) {
        for index in stride(from: length - 1, through: 0, by: -1) { self.bits((code >> index) & 1, 1) }
    }

    mutating func alignToByte() { self.used = 0 }

    /// The canonical codes for `lengths` (RFC 1951, 3.2.2).
    static func codes(_ lengths: [Int]) -> [Int] {
        var count = [Int](repeating: 0, count: 16)
        for length in lengths where length > 0 { count[length] += 1 }
        var next = [Int](repeating: 0, count: 16)
        var code = 0
        for length in 1..<16 {
            code = (code + count[length - 1]) << 1
            next[length] = code
        }
        return lengths.map { length in
            guard length > 0 else { return 0 }
            defer { next[length] += 1 }
            return next[length]
        }
    }

    enum Symbol {
        case literal(Int)
        /// Length symbol 257 (a length of 3), then the distance symbol (0-3: a distance of 1-4, no extra bits).
        case match(distanceSymbol: Int)
    }

    /// A block with the fixed code.
    mutating func fixedBlock(final: Bool, _ symbols: [Symbol]) {
        self.bits(final ? 1 : 0, 1)
        self.bits(1, 2)
        func literal(_ symbol: Int) {
            switch symbol {
            case ..<144: self.code(0x30 + symbol, 8)
            case ..<256: self.code(0x190 + symbol - 144, 9)
            case ..<280: self.code(symbol - 256, 7)
            default: self.code(0xC0 + symbol - 280, 8)
            }
        }
        for symbol in symbols {
            switch symbol {
            case .literal(let value): literal(value)
            case .match(let distance):
                literal(257)
                self.code(distance, 5)
            }
        }
        literal(256)
    }

    /// A block with a dynamic code of the given code lengths (257 or more literal/length ones), its header's HLIT
    /// field as `literalCount` says (which may claim more codes than follow). The code-length code gives every length
    /// 0-15 four bits, unless `codeLengthLengths` (19, by symbol) says otherwise.
    mutating func dynamicBlock(
        final: Bool,
        literalLengths: [Int],
        distanceLengths: [Int],
        literalCount: Int? = nil,
        codeLengthLengths: [Int]? = nil,
        _ symbols: [Symbol]
    ) {
        self.bits(final ? 1 : 0, 1)
        self.bits(2, 2)
        self.bits((literalCount ?? literalLengths.count) - 257, 5)
        self.bits(distanceLengths.count - 1, 5)
        self.bits(19 - 4, 4)
        let order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
        let codeLengths = codeLengthLengths ?? (0..<19).map { $0 < 16 ? 4 : 0 }
        for symbol in order { self.bits(codeLengths[symbol], 3) }
        let codeLengthCodes = Self.codes(codeLengths)
        for length in literalLengths + distanceLengths { self.code(codeLengthCodes[length], 4) }
        let literalCodes = Self.codes(literalLengths)
        let distanceCodes = Self.codes(distanceLengths)
        for symbol in symbols {
            switch symbol {
            case .literal(let value): self.code(literalCodes[value], literalLengths[value])
            case .match(let distance):
                self.code(literalCodes[257], literalLengths[257])
                self.code(distanceCodes[distance], distanceLengths[distance])
            }
        }
        self.code(literalCodes[256], literalLengths[256])
    }

    /// What `symbols` decode to after `output` (a match copies 3 bytes from `distanceSymbol + 1` back).
    static func decode(_ symbols: [Symbol], after output: inout [UInt8]) {
        for symbol in symbols {
            switch symbol {
            case .literal(let value): output.append(UInt8(value))
            case .match(let distance):
                for _ in 0..<3 { output.append(output[output.count - distance - 1]) }
            }
        }
    }

    /// A stored block.
    mutating func storedBlock(final: Bool, _ content: [UInt8], lengthComplement: Int? = nil) {
        self.bits(final ? 1 : 0, 1)
        self.bits(0, 2)
        self.alignToByte()
        self.bits(content.count, 16)
        self.bits(lengthComplement ?? (~content.count & 0xFFFF), 16)
        for byte in content { self.bits(Int(byte), 8) }
    }

    /// A gzip member of this deflate data, whose trailer says it decodes to `content`.
    func member(decodingTo content: [UInt8]) -> [UInt8] {
        [0x1F, 0x8B, 0x08, 0, 0, 0, 0, 0, 0, 0x03] + self.bytes + littleEndian(crc32Of(content))
            + littleEndian(UInt32(content.count))
    }
}

/// Code lengths with the given symbols' lengths set, the others 0.
private func lengths(_ count: Int, _ set: [Int: Int]) -> [Int] {
    (0..<count).map { set[$0] ?? 0 }
}

private let a = Int(UInt8(ascii: "a"))
private let b = Int(UInt8(ascii: "b"))

/// Blocks that test where ISA-L and zlib could differ: a Huffman code ISA-L accepts and zlib refuses, and distances
/// across blocks (ISA-L is stopped at every block's end and given the history back).
@Suite("Deflate blocks: ISA-L refuses what zlib refuses", .timeLimit(.minutes(2)))
struct DeflateBlockTests {
    /// Members zlib refuses for their Huffman code (and `gzip -t` too), each with data that never uses a missing code
    /// — so ISA-L alone would decode them and find the CRC right.
    static let refusedCodes: [(name: String, member: [UInt8])] = {
        var cases: [(String, [UInt8])] = []
        var writer = DeflateWriter()
        // Two literal/length codes of 2 bits: half the bit patterns unused.
        writer.dynamicBlock(
            final: true,
            literalLengths: lengths(257, [a: 2, 256: 2]),
            distanceLengths: [1],
            [.literal(a)]
        )
        cases.append(("incomplete literal/length code", writer.member(decodingTo: [UInt8(a)])))
        writer = DeflateWriter()
        writer.dynamicBlock(
            final: true,
            literalLengths: lengths(257, [a: 1, 256: 1]),
            distanceLengths: [2, 2],
            [.literal(a)]
        )
        cases.append(("incomplete distance code", writer.member(decodingTo: [UInt8(a)])))
        writer = DeflateWriter()
        // One code, but of two bits: zlib allows a single code of one bit only.
        writer.dynamicBlock(final: true, literalLengths: lengths(257, [256: 2]), distanceLengths: [1], [])
        cases.append(("a lone end-of-block code of 2 bits", writer.member(decodingTo: [])))
        writer = DeflateWriter()
        writer.dynamicBlock(final: true, literalLengths: lengths(257, [256: 1]), distanceLengths: [2], [])
        cases.append(("a lone distance code of 2 bits", writer.member(decodingTo: [])))
        writer = DeflateWriter()
        // The code-length code itself incomplete: lengths 0 and 1 get 2 bits each, nothing else.
        writer.dynamicBlock(
            final: true,
            literalLengths: lengths(257, [a: 1, 256: 1]),
            distanceLengths: [1],
            codeLengthLengths: lengths(19, [0: 2, 1: 2]),
            [.literal(a)]
        )
        cases.append(("an incomplete code-length code", writer.member(decodingTo: [UInt8(a)])))
        writer = DeflateWriter()
        // A good first block, then the incomplete code: the first block's byte is delivered, then the error.
        writer.fixedBlock(final: false, [.literal(a)])
        writer.dynamicBlock(
            final: true,
            literalLengths: lengths(257, [b: 2, 256: 2]),
            distanceLengths: [1],
            [.literal(b)]
        )
        cases.append(("an incomplete code in the second block", writer.member(decodingTo: [UInt8(a), UInt8(b)])))
        return cases
    }()

    /// Members both refuse, whatever the reason.
    static let refusedByBoth: [(name: String, member: [UInt8])] = {
        var cases: [(String, [UInt8])] = []
        var writer = DeflateWriter()
        writer.dynamicBlock(
            final: true,
            literalLengths: lengths(257, [a: 1, b: 1, 256: 1]),
            distanceLengths: [1],
            [.literal(a)]
        )
        cases.append(("over-subscribed literal/length code", writer.member(decodingTo: [UInt8(a)])))
        writer = DeflateWriter()
        writer.dynamicBlock(
            final: true,
            literalLengths: lengths(287, [a: 1, 256: 1]),
            distanceLengths: [1],
            [.literal(a)]
        )
        cases.append(("287 literal/length codes", writer.member(decodingTo: [UInt8(a)])))
        writer = DeflateWriter()
        writer.storedBlock(final: true, [UInt8(a)], lengthComplement: 0)
        cases.append(("stored lengths that do not match", writer.member(decodingTo: [UInt8(a)])))
        writer = DeflateWriter()
        writer.fixedBlock(final: false, [.literal(a), .literal(b)])
        writer.fixedBlock(final: true, [.match(distanceSymbol: 3)])
        cases.append(("a distance before the member's start, in its second block", writer.member(decodingTo: [])))
        writer = DeflateWriter()
        writer.fixedBlock(final: true, [.literal(a), .literal(286)])
        cases.append(("literal/length symbol 286", writer.member(decodingTo: [UInt8(a)])))
        return cases
    }()

    /// Members both read: zlib's exceptions for incomplete codes, and blocks of every type whose matches reach into
    /// the blocks before.
    static let accepted: [(name: String, member: [UInt8], content: [UInt8])] = {
        var cases: [(String, [UInt8], [UInt8])] = []
        var writer = DeflateWriter()
        writer.dynamicBlock(final: true, literalLengths: lengths(257, [256: 1]), distanceLengths: [1], [])
        cases.append(("a lone end-of-block code of 1 bit", writer.member(decodingTo: []), []))
        writer = DeflateWriter()
        let twoAs = [UInt8(a), UInt8(a)]
        writer.dynamicBlock(
            final: true,
            literalLengths: lengths(257, [a: 1, 256: 1]),
            distanceLengths: [0],
            [.literal(a), .literal(a)]
        )
        cases.append(("no distance codes at all", writer.member(decodingTo: twoAs), twoAs))
        writer = DeflateWriter()
        var content = Array("ab".utf8)
        writer.storedBlock(final: false, content)
        let second: [DeflateWriter.Symbol] = [.match(distanceSymbol: 1), .literal(0x0A)]
        writer.fixedBlock(final: false, second)
        DeflateWriter.decode(second, after: &content)
        let third: [DeflateWriter.Symbol] = [.match(distanceSymbol: 3), .literal(a), .literal(0x0A)]
        writer.dynamicBlock(
            final: false,
            literalLengths: lengths(258, [a: 2, 0x0A: 2, 256: 2, 257: 2]),
            distanceLengths: [0, 0, 1, 1],
            third
        )
        DeflateWriter.decode(third, after: &content)
        writer.storedBlock(final: false, [])
        writer.fixedBlock(final: true, [.match(distanceSymbol: 2)])
        DeflateWriter.decode([.match(distanceSymbol: 2)], after: &content)
        cases.append(("stored, fixed and dynamic blocks reaching back", writer.member(decodingTo: content), content))
        return cases
    }()

    @Test func zlibsRefusedCodes_areRefusedUnderEveryCodec_atTheSameOffset() async throws {
        let directory = TemporaryDirectory()
        for (index, (name, member)) in (Self.refusedCodes + Self.refusedByBoth).enumerated() {
            let path = directory.file("refused-\(index).gz")
            try writeFile(path, member)
            let outcome = await readUntilFailure([path])  // every codec: the same lines, the same error and offset
            #expect(describe(outcome.error).hasPrefix("corruptGzip \(path) "), "\(name): \(describe(outcome.error))")
        }
    }

    @Test func zlibsExceptions_andBlocksOfEveryType_areReadUnderEveryCodec() async throws {
        let directory = TemporaryDirectory()
        for (index, (name, member, content)) in Self.accepted.enumerated() {
            let path = directory.file("accepted-\(index).gz")
            try writeFile(path, member + member)
            let lines = try await readLines([path])
            #expect(lines == splitLines(content + content), "\(name)")
        }
    }

    /// From a pipe (no second read, so ISA-L's own verdict), in pieces that cut the block headers anywhere: the same
    /// bytes and the same error kind as zlib. (Of data both refuse, ISA-L may write the bytes of the match it then
    /// refuses: from a pipe, up to a match's 258 bytes more than zlib; from a file zlib's verdict drops them.)
    @Test(arguments: [1, 2, 3, 7, 64])
    func inPieces_fromAPipe_everyBackendAgrees(piece: Int) throws {
        let exact = Self.refusedCodes.map { ($0.name, $0.member) } + Self.accepted.map { ($0.name, $0.member) }
        for (name, member) in exact + Self.refusedByBoth.map({ ($0.name, $0.member) }) {
            let zlib = try FuzzFindingsTests.decodeAsPipe(member + member, piece: piece, backend: .zlib)
            let isal = try FuzzFindingsTests.decodeAsPipe(member + member, piece: piece, backend: .isal)
            #expect(isal.error?.code == zlib.error?.code, "\(name): \(String(describing: isal.error))")
            if exact.contains(where: { $0.0 == name }) {
                #expect(isal.bytes == zlib.bytes, "\(name)")
            } else {
                #expect(isal.bytes.starts(with: zlib.bytes) && isal.bytes.count <= zlib.bytes.count + 258, "\(name)")
            }
        }
    }

    /// Real writers' members of many blocks — stored (random bytes), fixed and dynamic, from `gzip -1`, `-6` and
    /// `-9` — read by ISA-L as a pipe in pieces of every size and into small chunks, so that block ends, the
    /// history handed back to ISA-L and chunk ends fall everywhere: the bytes must be the input's.
    @Test func manyBlocksInPieces_decodeToTheInput() async throws {
        var generator = SplitMix(seed: 23)
        var input: [UInt8] = []
        for part in 0..<12 {
            let length = 2_000 + Int(generator.next() % 30_000)
            if part % 3 == 2 {
                input += (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }  // stored blocks
            } else {
                let words = ["alpha", "beta", "gamma", "delta", "\n", " ", "200", "GET /x"]
                let end = input.count + length
                while input.count < end { input += Array(words[Int(generator.next() % 8)].utf8) }
            }
        }
        let directory = TemporaryDirectory()
        try writeFile(directory.file("in"), input)
        for level in [1, 6, 9] {
            try await Shell.check("gzip -\(level) -c '\(directory.file("in"))' > '\(directory.file("in.gz"))'")
            let member = try readFile(directory.file("in.gz"))
            for piece in [1, 13, 4096, member.count] {
                let outcome = try FuzzFindingsTests.decodeAsPipe(member + member, piece: piece, backend: .isal)
                #expect(
                    outcome.error == nil,
                    "gzip -\(level), pieces of \(piece): \(String(describing: outcome.error))"
                )
                #expect(outcome.bytes == input + input, "gzip -\(level), pieces of \(piece)")
            }
        }
    }
}
