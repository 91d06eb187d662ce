import Logging
import Testing

@testable import Sluice

#if canImport(Glibc)
import Glibc
#endif

/// Faults from the system — a full device, an I/O error, few descriptors, files changed or taken away during a run,
/// a file that may not be read — each fail the run with an error naming the file, and lose nothing before it.
@Suite("Faults", .timeLimit(.minutes(2)))
struct FaultTests {
    /// The sinks a run writes.
    enum Sink: String, CaseIterable, Sendable {
        case plainOutput, gzipOutput, standardOutput, deadLetters, statistics

        /// The `sluice run` arguments that write this sink to `path`.
        func arguments(_ path: String) -> String {
            switch self {
            case .plainOutput: "--on-error skip -o '\(path)'"
            case .gzipOutput: "--on-error skip -o '\(path)' --gzip-level 1"
            case .standardOutput: "--on-error skip > '\(path)'"
            case .deadLetters: "--on-error dead-letter --dead-letter '\(path)' -o /dev/null"
            case .statistics: "--on-error skip --stats-json '\(path)' -o /dev/null"
            }
        }

        /// How the error names `path`.
        func shown(_ path: String) -> String {
            self == .standardOutput ? "standard output" : path
        }
    }

    /// NDJSON with one malformed line, so that every sink, dead letters included, has something to write.
    static func writeInput(in directory: borrowing TemporaryDirectory) throws -> String {
        let input = directory.file("in.ndjson")
        try writeFile(input, Array("{\"level\":\"error\"}\nnot json\n{\"level\":\"info\"}\n".utf8))
        return input
    }

    @Test(arguments: Sink.allCases)
    func everySink_onAFullDevice_failsNamingIt(sink: Sink) async throws {
        let directory = TemporaryDirectory()
        let input = try Self.writeInput(in: directory)
        // A .gz name that is /dev/full, for the gzip writer.
        let full = directory.file("full.gz")
        try await Shell.check("ln -s /dev/full '\(full)'")
        let target = sink == .gzipOutput ? full : "/dev/full"
        let errors = directory.file("errors.txt")
        let status = try await runSluice(
            "run json-filter --field level --equals error '\(input)' \(sink.arguments(target)) 2> '\(errors)'"
        )
        let message = String(decoding: try readFile(errors), as: UTF8.self)
        #expect(status == 1, "\(message)")
        #expect(message.contains("\(sink.shown(target)): noSpace"), "\(message)")
    }

    /// Bad input on standard input is named so (not `-`), whichever stage finds it: the reader (gzip cut short) or
    /// the framing (a line over the limit).
    @Test func badStandardInput_isNamedSo() async throws {
        let directory = TemporaryDirectory()
        try await Shell.check("printf 'a\\nb\\n' | gzip -c | head -c 20 > '\(directory.file("cut.gz"))'")
        try writeFile(directory.file("long.txt"), [UInt8](repeating: 0x78, count: 5_000) + [0x0a])
        for (input, options, shown) in [
            ("cut.gz", "", "standard input: truncatedGzip"),
            ("long.txt", "--max-record-bytes 1000", "standard input: recordTooLong"),
        ] {
            let errors = directory.file("errors.txt")
            let status = try await runSluice(
                "run wc \(options) - < '\(directory.file(input))' > /dev/null 2> '\(errors)'"
            )
            let message = String(decoding: try readFile(errors), as: UTF8.self)
            #expect(status == 1, "\(message)")
            #expect(message.contains(shown), "\(message)")
        }
    }

    /// A small library, preloaded, that fails every `write` to one path with EIO: the disk error a test cannot
    /// otherwise make on demand.
    private static let failingWrites: String = {
        let directory = "/tmp/sluice-test-eio-\(getpid())"
        let source = """
            #define _GNU_SOURCE
            #include <dlfcn.h>
            #include <errno.h>
            #include <stdio.h>
            #include <stdlib.h>
            #include <string.h>
            #include <unistd.h>

            static int failing(int fd) {
                const char *target = getenv("SLUICE_TEST_EIO_PATH");
                if (target == NULL) return 0;
                char link[64], path[4096];
                snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
                ssize_t length = readlink(link, path, sizeof path - 1);
                if (length < 0) return 0;
                path[length] = 0;
                return strcmp(path, target) == 0;
            }

            ssize_t write(int fd, const void *buffer, size_t count) {
                static ssize_t (*real)(int, const void *, size_t);
                if (real == NULL) real = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
                if (failing(fd)) { errno = EIO; return -1; }
                return real(fd, buffer, count);
            }
            """
        do {
            _ = try Shell.runBlocking("mkdir -p '\(directory)'")
            try writeFile("\(directory)/eio.c", Array(source.utf8))
            let status = try Shell.runBlocking(
                "cc -shared -fPIC -o '\(directory)/eio.so' '\(directory)/eio.c' -ldl"
            )
            precondition(status == 0, "cannot build the EIO library (is a C compiler installed?)")
        } catch {
            fatalError("cannot build the EIO library: \(error)")
        }
        return "\(directory)/eio.so"
    }()

    @Test(arguments: Sink.allCases)
    func everySink_onAnIOError_failsNamingIt(sink: Sink) async throws {
        let directory = TemporaryDirectory()
        let input = try Self.writeInput(in: directory)
        let target = directory.file(sink == .gzipOutput ? "out.gz" : "out.txt")
        let errors = directory.file("errors.txt")
        // Built once; the compiler runs on a thread of BlockingThreads, never on the cooperative pool.
        let library = try await BlockingThreads.run { Self.failingWrites }
        let status = try await Shell.run(
            "LD_PRELOAD='\(library)' SLUICE_TEST_EIO_PATH='\(target)' '\(sluice)' "
                + "run json-filter --field level --equals error '\(input)' \(sink.arguments(target)) 2> '\(errors)'"
        )
        let message = String(decoding: try readFile(errors), as: UTF8.self)
        #expect(status == 1, "\(message)")
        #expect(message.contains("\(sink.shown(target)): systemError"), "\(message)")
        #expect(message.contains("Input/output error"), "\(message)")
    }

    /// Files are opened one at a time: ten thousand inputs run within 16 descriptors (three of them the standard
    /// streams; the run's own pipes take the rest). A hundred are named on the command line, the rest in a list
    /// (`--files-from`: argument-parser takes time quadratic in the number of arguments).
    @Test func tenThousandInputs_keepFewDescriptorsOpen() async throws {
        let directory = TemporaryDirectory()
        var list: [UInt8] = []
        for index in 0..<10_000 {
            try writeFile(directory.file("f\(index)"), Array("line \(index)\n".utf8))
            if index >= 100 { list += Array("f\(index)\n".utf8) }
        }
        try writeFile(directory.file("list.txt"), list)
        // Descriptors the test process leaves open to its children are closed first: they would count too.
        let status = try await Shell.run(
            "cd '\(directory.path)' && bash -c 'for fd in /proc/$$/fd/*; do fd=${fd##*/}; "
                + "[ \"$fd\" -gt 2 ] && eval \"exec $fd>&-\"; done; ulimit -n 16 && "
                + "exec \"$0\" run wc f? f?? --files-from list.txt > wc.txt 2> errors.txt' '\(sluice)'"
        )
        let errors = String(decoding: try readFile(directory.file("errors.txt")), as: UTF8.self)
        #expect(status == 0, "\(errors)")
        #expect(String(decoding: try readFile(directory.file("wc.txt")), as: UTF8.self).hasPrefix("10000 20000 "))
    }

    /// Reads `path` with a reader of 4 KiB chunks: the first chunk, then `change`, then the rest (or the error).
    static func readChangingMidway(
        _ path: String,
        change: () throws -> Void
    ) throws -> (bytes: [UInt8], error: FileError?) {
        let waiter = try InputWaiter(shutdown: ShutdownSignal(), path: path)
        let reader = FileChunkReader(
            paths: [path],
            chunkSize: 4096,
            waiter: waiter,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        defer { reader.close() }
        var bytes = try reader.next().flatMap(\.bytes)
        #expect(bytes.count == 4096)
        try change()
        do {
            while case let chunks = try reader.next(), !chunks.isEmpty {
                bytes += chunks.flatMap(\.bytes)
            }
        } catch let error as FileError {
            return (bytes, error)
        }
        return (bytes, nil)
    }

    @Test func aFileTruncatedWhileItIsRead_failsTheRunNamingIt() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("in.txt")
        try writeFile(path, sampleText(lines: 2_000))
        let outcome = try Self.readChangingMidway(path) {
            #expect(truncate(path, 1_000) == 0)
        }
        #expect(outcome.bytes.count == 4096)
        #expect(outcome.error?.code == .changedWhileInUse)
        #expect(outcome.error?.path == path)
        #expect(outcome.error?.offset == 1_000)
    }

    @Test func aFileReplacedWhileItIsRead_isReadToItsEnd() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("in.txt")
        let text = sampleText(lines: 2_000)
        try writeFile(path, text)
        let outcome = try Self.readChangingMidway(path) {
            // A log rotated by rename: the path names a new file, the reader keeps the one it opened.
            try writeFile(directory.file("new.txt"), Array("another file\n".utf8))
            #expect(rename(directory.file("new.txt"), path) == 0)
        }
        #expect(outcome.error == nil)
        #expect(outcome.bytes == text)
    }

    @Test func anOutputRemovedWhileItIsWritten_failsTheRunNamingIt() throws {
        let directory = TemporaryDirectory()
        try #require(mkdir(directory.file("out"), 0o755) == 0)
        let path = directory.file("out/result.txt")
        let writer = try BufferedFileWriter(path: path)
        try writer.write(Array("written before\n".utf8))
        try writer.flush()
        // The output directory goes, with the file in it: what was written is lost.
        _ = try Shell.runBlocking("rm -rf '\(directory.file("out"))'")
        try writer.write(Array("written after\n".utf8))
        #expect {
            try writer.close(synchronize: false)
        } throws: { error in
            (error as? FileError)?.code == .changedWhileInUse && (error as? FileError)?.path == path
        }
    }

    /// An input that may not be read, between two that may: the lines of the first are written, the run fails naming
    /// the second, and the third is not read. Run as an unprivileged user, since root may read anything.
    @Test func anUnreadableFileInAList_failsNamingIt_afterWritingTheFilesBefore() async throws {
        let directory = TemporaryDirectory()
        try writeFile(directory.file("a.txt"), Array("a1\na2\n".utf8))
        try writeFile(directory.file("b.txt"), Array("b1\n".utf8))
        try writeFile(directory.file("c.txt"), Array("c1\n".utf8))
        #expect(chmod(directory.file("b.txt"), 0) == 0)
        // The unprivileged user needs the directory and its own copy of the binary.
        #expect(chmod(directory.path, 0o777) == 0)
        try await Shell.check("cp '\(sluice)' '\(directory.file("sluice"))' && chmod 755 '\(directory.file("sluice"))'")
        let asUser = getuid() == 0 ? "setpriv --reuid=65534 --regid=65534 --clear-groups " : ""
        let status = try await Shell.run(
            "cd '\(directory.path)' && \(asUser)./sluice run cat a.txt b.txt c.txt -o out.txt 2> errors.txt"
        )
        let errors = String(decoding: try readFile(directory.file("errors.txt")), as: UTF8.self)
        #expect(status == 1, "\(errors)")
        #expect(errors.contains("b.txt: permissionDenied"), "\(errors)")
        #expect(try readFile(directory.file("out.txt")) == Array("a1\na2\n".utf8))
    }
}
