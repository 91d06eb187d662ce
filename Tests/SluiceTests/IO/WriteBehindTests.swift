import Testing

@testable import Sluice

#if canImport(Glibc)
import Glibc
#endif

/// The writers start the write-back of what they wrote every few MiB, so a large output does not pile up as dirty
/// pages to be flushed all at once on close.
@Suite struct WriteBehindTests {
    @Test func aRegularFile_startsWriteBackEveryWriteBehindBytes_andKeepsEveryByte() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("out.bin")
        let writer = try BufferedFileWriter(path: path, capacity: 16 * 1024, writeBehind: 64 * 1024)
        var expected: [UInt8] = []
        var backs: [Int] = []
        for index in 0..<100 {
            let piece = [UInt8](repeating: UInt8(index), count: 3_000 + index)
            expected += piece
            try writer.write(piece)
            if let back = writer.writtenBack, back != backs.last ?? 0 { backs.append(back) }
        }
        // Started each time 64 KiB more had been handed to the system, up to what was written then: what is left
        // is less than one step.
        #expect(backs.count >= 3)
        #expect(writer.written - (backs.last ?? 0) < 64 * 1024 + 16 * 1024 + 3_100)
        // Each step: at least 64 KiB, at most that plus one buffer and one piece.
        let steps = zip(backs, backs.dropFirst()).map { $1 - $0 }
        #expect(steps.allSatisfy { $0 >= 64 * 1024 && $0 < 64 * 1024 + 16 * 1024 + 3_100 })
        try writer.close(synchronize: false)
        #expect(try readFile(path) == expected)
    }

    @Test func aFileThatCannotWriteBack_isWrittenAsBefore() throws {
        // A character device: no page cache to write back, so the writer does not try.
        let writer = try BufferedFileWriter(path: "/dev/null", capacity: 1024, writeBehind: 4096)
        for _ in 0..<20 { try writer.write([UInt8](repeating: 7, count: 1000)) }
        #expect(writer.writtenBack == nil)
        #expect(writer.written >= 19_000)
        try writer.close(synchronize: false)
    }

    @Test func aFifo_isWrittenAsBefore() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("fifo")
        try #require(mkfifo(path, 0o600) == 0)
        let reader = Task.detached {
            let descriptor = open(path, O_RDONLY)  // waits for the writer
            defer { close(descriptor) }
            var received: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count <= 0 { break }
                received += chunk[..<count]
            }
            return received
        }
        let writer = try BufferedFileWriter(path: path, capacity: 1024, writeBehind: 4096)  // waits for the reader
        let expected = (0..<20_000).map { UInt8(truncatingIfNeeded: $0) }
        try writer.write(expected)
        #expect(writer.writtenBack == nil)
        try writer.close(synchronize: false)
        #expect(await reader.value == expected)
    }
}
