import CGlibcExtras
import Testing

@testable import Sluice

#if canImport(Glibc)
import Glibc
#endif

@Suite("Standard streams and device errors", .timeLimit(.minutes(1)))
struct StandardStreamTests {
    @Test func dash_readsStandardInput_gzipIncluded() async throws {
        // The test process's own standard input is replaced by a pipe for the duration of the test.
        let directory = TemporaryDirectory()
        let text = sampleText(lines: 2_000)
        try writeFile(directory.file("in.txt"), text)
        try await Shell.check("gzip -c '\(directory.file("in.txt"))' > '\(directory.file("in.gz"))'")
        let compressed = try readFile(directory.file("in.gz"))

        var ends: [Int32] = [0, 0]
        #expect(pipe2(&ends, O_CLOEXEC) == 0)
        let saved = dup(STDIN_FILENO)
        dup2(ends[0], STDIN_FILENO)
        close(ends[0])
        defer {
            dup2(saved, STDIN_FILENO)
            close(saved)
        }
        let writer = ends[1]
        let feeding = Task.detached {
            // A writer that trickles: the reader must cope with short reads, the magic bytes split included.
            var offset = 0
            while offset < compressed.count {
                let size = offset == 0 ? 1 : min(4_096, compressed.count - offset)
                _ = compressed[offset..<(offset + size)].withUnsafeBytes { write(writer, $0.baseAddress, size) }
                offset += size
            }
            close(writer)
        }
        // Read once (standard input cannot be read again), with the default codec: ISA-L, alone on a pipe.
        let lines = try await Pipeline.lines(from: ["-"])
            .map { Array($0.bytes) }
            .collect()
            .run(RunOptions(computeThreads: 2))
            .result
        await feeding.value
        #expect(lines == splitLines(text))
    }

    @Test func aFullDevice_failsTheWrite_namingThePath() async throws {
        let error = await #expect(throws: PipelineError.self) {
            try await Pipeline.from((0..<200_000).map { "line \($0)" }).write(to: "/dev/full").run()
        }
        let failure = try #require(error?.underlying as? FileError)
        #expect(failure.code == .noSpace)
        #expect(failure.path == "/dev/full")
        #expect(error?.stage == "write")
    }
}
