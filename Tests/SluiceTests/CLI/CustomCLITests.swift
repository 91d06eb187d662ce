import Testing

#if canImport(Glibc)
import Glibc
#endif

/// README's "Your own CLI", built as the outside package it is (`Examples/CustomCLI`, depending on this checkout by
/// path) and run end to end.
@Suite("Your own CLI", .serialized, .timeLimit(.minutes(10)))
struct CustomCLITests {
    static let root = "/" + #filePath.split(separator: "/").dropLast(4).joined(separator: "/")
    static let example = root + "/Examples/CustomCLI"

    /// The example's binary, built (incrementally: CI builds it before the tests) from the current checkout, once.
    /// The build blocks: read it through ``builtBinary()``, which waits on a thread of ``BlockingThreads``.
    private static let binary: String = {
        do {
            let status = try Shell.runBlocking(
                "swift build --package-path '\(example)' > '\(example)/.build-log.txt' 2>&1"
            )
            precondition(status == 0, "building \(example) failed: see \(example)/.build-log.txt")
        } catch {
            fatalError("cannot build \(example): \(error)")
        }
        return example + "/.build/debug/my-sluice"
    }()

    /// The example's binary, built off the cooperative pool.
    static func builtBinary() async throws -> String {
        try await BlockingThreads.run { Self.binary }
    }

    @Test func theREADMEShowsTheExampleVerbatim() throws {
        let readme = String(decoding: try readFile(Self.root + "/README.md"), as: UTF8.self)
        for file in ["Package.swift", "Sources/my-sluice/main.swift"] {
            let text = String(decoding: try readFile(Self.example + "/" + file), as: UTF8.self)
            #expect(readme.contains("```swift\n" + text), "README's copy of \(file) differs from the example's")
        }
    }

    @Test func itsOwnPipelineAndTheReadyOnes_runWithEveryStandardOption() async throws {
        let directory = TemporaryDirectory()
        let input = directory.file("in.txt")
        try writeFile(input, Array((1...100).map { "line \($0)\n" }.joined().utf8))
        let out = directory.path
        let run = "'\(try await Self.builtBinary())'"
        #expect(try await Shell.run("\(run) list > '\(out)/list.txt'") == 0)
        try await Shell.check("grep -q '^head ' '\(out)/list.txt' && grep -q '^grep ' '\(out)/list.txt'")
        #expect(try await Shell.run("\(run) describe head > '\(out)/describe.txt'") == 0)
        try await Shell.check("grep -q -- '--lines <lines>' '\(out)/describe.txt'")
        // Its own pipeline, to a gzip file, with its own option and a standard one.
        #expect(try await Shell.run("\(run) run head --lines 7 --workers 1 '\(input)' -o '\(out)/head.gz'") == 0)
        try await Shell.check(
            "head -7 '\(input)' > '\(out)/expected' && gzip -dc '\(out)/head.gz' | cmp -s - '\(out)/expected'"
        )
        // A ready one.
        #expect(try await Shell.run("\(run) run grep --pattern 'line 9' '\(input)' > '\(out)/grep.txt'") == 0)
        try await Shell.check("grep -F 'line 9' '\(input)' | cmp -s - '\(out)/grep.txt'")
        // Usage errors: 64.
        #expect(try await Shell.run("\(run) run head --lines x '\(input)' 2> /dev/null") == 64)
        #expect(try await Shell.run("\(run) run nosuch 2> /dev/null") == 64)
    }

    @Test func sigint_drainsGracefully_leavingAValidGzip() async throws {
        let directory = TemporaryDirectory()
        let output = directory.file("out.gz")
        let binary = try await Self.builtBinary()
        let process = try SpawnedProcess([binary, "run", "cat", "-", "-o", output, "--gzip-level", "1"])
        process.write(sampleText(lines: 150_000, seed: 5))
        try await waitForFile(output, toHold: 1_000)
        kill(process.pid, SIGINT)
        #expect(await process.wait() == 130)
        try await Shell.check("gzip -t '\(output)'")
        process.closeInput()
    }
}
