import CLineScan
import Testing

/// The newline scan the line framer runs on every chunk: every `\n` found, in order, whatever the buffer's length,
/// where the scan starts and ends, and how little room there is for the offsets — by each implementation this
/// machine runs (the portable one always; AVX2 where the CPU has it), and by the dispatching entry point.
@Suite("Newline scan")
struct LineScanTests {
    /// The scans to check: `nil` is the entry point the framer calls; numbers are `sluice_find_newlines_using`'s.
    static let implementations: [Int32?] = [nil] + [0, 1].filter { sluice_line_scan_available($0) != 0 }

    /// The offsets a scan reports for `bytes[from..<to]`, calling it again after each fill of `capacity` offsets,
    /// as the framer does.
    private func scan(
        _ bytes: [UInt8],
        from: Int,
        to: Int,
        capacity: Int,
        using implementation: Int32? = nil
    ) -> [Int] {
        var found: [Int] = []
        var offsets = [UInt32](repeating: 0, count: capacity)
        var position = from
        while position < to {
            var next = 0
            let count = bytes.withUnsafeBufferPointer { data in
                offsets.withUnsafeMutableBufferPointer { room in
                    if let implementation {
                        sluice_find_newlines_using(
                            implementation,
                            data.baseAddress!,
                            position,
                            to,
                            room.baseAddress!,
                            capacity,
                            &next
                        )
                    } else {
                        sluice_find_newlines(data.baseAddress!, position, to, room.baseAddress!, capacity, &next)
                    }
                }
            }
            #expect(count <= capacity)
            #expect(next > position || count > 0, "no progress at \(position)")
            found += offsets[..<count].map { Int($0) }
            position = next
        }
        return found
    }

    @Test(arguments: Self.implementations)
    func findsEveryNewline_likeAByteByByteScan(implementation: Int32?) {
        var generator = SplitMix(seed: 3)
        for _ in 0..<2_000 {
            let length = Int(generator.next() % 300)
            // Newlines dense or sparse, sometimes at every byte.
            let density = 1 + generator.next() % 40
            let bytes = (0..<length).map { _ in generator.next() % density == 0 ? UInt8(0x0A) : UInt8(0x61) }
            let from = length == 0 ? 0 : Int(generator.next() % UInt64(length))
            let to = from + Int(generator.next() % UInt64(length - from + 1))
            // Room for fewer offsets than a vector step's bytes, exactly as many, one or two more, and plenty.
            let capacity = [1, 2, 7, 16, 17, 31, 32, 33, 34, 1024][Int(generator.next() % 10)]
            let expected = (from..<to).filter { bytes[$0] == 0x0A }
            #expect(self.scan(bytes, from: from, to: to, capacity: capacity, using: implementation) == expected)
        }
    }

    @Test(arguments: Self.implementations)
    func aBufferOfNewlinesOnly_withRoomForOne_givesThemOneByOne(implementation: Int32?) {
        let bytes = [UInt8](repeating: 0x0A, count: 40)
        #expect(self.scan(bytes, from: 0, to: 40, capacity: 1, using: implementation) == Array(0..<40))
    }

    @Test(arguments: Self.implementations)
    func aBufferOfNewlinesOnly_withRoomForAll_givesThemAll(implementation: Int32?) {
        let bytes = [UInt8](repeating: 0x0A, count: 1_000)
        #expect(self.scan(bytes, from: 3, to: 1_000, capacity: 1024, using: implementation) == Array(3..<1_000))
    }

    @Test func theMachinesScans_includeThePortableOne() {
        #expect(sluice_line_scan_available(0) != 0)
        #expect(sluice_line_scan_available(7) == 0)
    }
}
