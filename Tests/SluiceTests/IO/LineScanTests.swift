import CLineScan
import Testing

/// The newline scan the line framer runs on every chunk: every `\n` found, in order, whatever the buffer's length,
/// where the scan starts and ends, and how little room there is for the offsets.
@Suite("Newline scan")
struct LineScanTests {
    /// The offsets `sluice_find_newlines` reports for `bytes[from..<to]`, calling it again after each fill of
    /// `capacity` offsets, as the framer does.
    private func scan(_ bytes: [UInt8], from: Int, to: Int, capacity: Int) -> [Int] {
        var found: [Int] = []
        var offsets = [UInt32](repeating: 0, count: capacity)
        var position = from
        while position < to {
            var next = 0
            let count = bytes.withUnsafeBufferPointer { data in
                offsets.withUnsafeMutableBufferPointer { room in
                    sluice_find_newlines(data.baseAddress!, position, to, room.baseAddress!, capacity, &next)
                }
            }
            #expect(count <= capacity)
            #expect(next > position || count > 0, "no progress at \(position)")
            found += offsets[..<count].map { Int($0) }
            position = next
        }
        return found
    }

    @Test func findsEveryNewline_likeAByteByByteScan() {
        var generator = SplitMix(seed: 3)
        for _ in 0..<300 {
            let length = Int(generator.next() % 300)
            // Newlines dense or sparse, sometimes at every byte.
            let density = 1 + generator.next() % 40
            let bytes = (0..<length).map { _ in generator.next() % density == 0 ? UInt8(0x0A) : UInt8(0x61) }
            let from = length == 0 ? 0 : Int(generator.next() % UInt64(length))
            let to = from + Int(generator.next() % UInt64(length - from + 1))
            let capacity = [1, 2, 7, 16, 17, 1024][Int(generator.next() % 6)]
            let expected = (from..<to).filter { bytes[$0] == 0x0A }
            #expect(self.scan(bytes, from: from, to: to, capacity: capacity) == expected)
        }
    }

    @Test func aBufferOfNewlinesOnly_withRoomForOne_givesThemOneByOne() {
        let bytes = [UInt8](repeating: 0x0A, count: 40)
        #expect(self.scan(bytes, from: 0, to: 40, capacity: 1) == Array(0..<40))
    }
}
