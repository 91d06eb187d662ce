@testable import Sluice

#if canImport(Glibc)
import Glibc
#endif

/// A directory of its own for one test, removed at the end.
struct TemporaryDirectory: ~Copyable {
    let path: String

    init() {
        var template = Array("/tmp/sluice-test-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        self.path = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
    }

    deinit {
        _ = try? Shell.runBlocking("rm -rf '\(self.path)'")
    }

    func file(_ name: String) -> String {
        "\(self.path)/\(name)"
    }
}

enum Shell {
    struct Failed: Error, CustomStringConvertible {
        var command: String
        var status: Int32
        var description: String { "`\(self.command)` exited with \(self.status)" }
    }

    /// Runs `command` with `/bin/sh -c` and returns its exit status.
    ///
    /// The wait for the command runs on ``BlockingThreads``, never on the cooperative pool: tests run in parallel,
    /// and two of them blocked in `waitpid` would stall every other test's tasks. A test that runs out of time
    /// (cancelled) kills the command, so that a hung one cannot hang the suite.
    @discardableResult
    static func run(_ command: String) async throws -> Int32 {
        await waitForExit(try self.spawn(command))
    }

    /// Runs `command` and throws unless it exits with 0.
    static func check(_ command: String) async throws {
        let status = try await self.run(command)
        guard status == 0 else { throw Failed(command: command, status: status) }
    }

    /// ``run(_:)`` on the calling thread, for places that cannot await (a `deinit`).
    @discardableResult
    static func runBlocking(_ command: String) throws -> Int32 {
        waitForExitBlocking(try self.spawn(command))
    }

    /// Starts `command` with `/bin/sh -c`; returns its process id.
    private static func spawn(_ command: String) throws -> pid_t {
        var pid: pid_t = 0
        let arguments = ["/bin/sh", "-c", command]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        let spawned = posix_spawn(&pid, "/bin/sh", nil, nil, &argv, environ)
        guard spawned == 0 else { throw Failed(command: command, status: -1) }
        return pid
    }
}

/// Waits for the child `pid` to end, on a thread of ``BlockingThreads``; returns its exit status (128 + the signal
/// if a signal ended it). If the waiting task is cancelled — a test past its time limit — the child is killed, so
/// the wait ends: a hung child fails its test instead of hanging the whole run.
func waitForExit(_ pid: pid_t) async -> Int32 {
    // The wait itself runs in a task of its own, which the test's cancellation does not reach (the pool refuses
    // work for a cancelled task): it returns once the child is gone, killed or not.
    let wait = Task.detached { (try? await BlockingThreads.run { waitForExitBlocking(pid) }) ?? -1 }
    return await withTaskCancellationHandler {
        await wait.value
    } onCancel: {
        kill(pid, SIGKILL)
    }
}

/// ``waitForExit(_:)`` on the calling thread.
func waitForExitBlocking(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    // WIFEXITED / WEXITSTATUS are macros.
    return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
}

/// Threads for the tests' blocking waits (child processes, inotify), apart from the cooperative pool.
enum BlockingThreads {
    private static let pool: ComputePool = {
        do {
            return try ComputePool(threads: 16, name: "test-blocking")
        } catch {
            fatalError("test threads: \(error)")
        }
    }()

    static func run<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await self.pool.run(body)
    }
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    guard let file = fopen(path, "wb") else { throw Shell.Failed(command: "fopen \(path)", status: errno) }
    defer { fclose(file) }
    _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
}

func readFile(_ path: String) throws -> [UInt8] {
    guard let file = fopen(path, "rb") else { throw Shell.Failed(command: "fopen \(path)", status: errno) }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let count = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
        if count == 0 { break }
        bytes += buffer[..<count]
    }
    return bytes
}

/// Reproducible log-like text: mixed line lengths, CRLF, a NUL and invalid UTF-8 now and then.
func sampleText(lines: Int, seed: UInt64 = 1) -> [UInt8] {
    var state = seed
    func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state >> 33
    }
    let words = ["GET", "POST", "/api/v1/items", "user=42", "latency_ms=17", "status=200", "error", "timeout", "ok"]
    var text: [UInt8] = []
    for index in 0..<lines {
        text += Array("2026-11-21T05:\(index % 60) req=\(index)".utf8)
        for _ in 0..<(next() % 12) {
            text.append(0x20)
            text += Array(words[Int(next() % UInt64(words.count))].utf8)
        }
        switch index % 97 {
        case 13: text += [0x20, 0xff, 0xfe, 0xc3]  // invalid UTF-8
        case 29: text += [0x20, 0x00, 0x01]  // NUL
        case 41: text.append(0x0d)  // CRLF
        default: break
        }
        text.append(0x0a)
    }
    return text
}

/// The lines of `bytes` split on `\n` (a last line without `\n` included), as `Line`s would carry them.
func splitLines(_ bytes: [UInt8]) -> [[UInt8]] {
    var lines = bytes.split(separator: 0x0a, omittingEmptySubsequences: false).map(Array.init)
    if bytes.last == 0x0a || bytes.isEmpty { lines.removeLast() }
    return lines
}

/// CRC-32 (IEEE), for building gzip members byte by byte.
func crc32Of(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xffff_ffff
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = (crc >> 1) ^ (0xedb8_8320 & (0 &- (crc & 1))) }
    }
    return ~crc
}

func littleEndian(_ value: UInt32) -> [UInt8] {
    [UInt8(value & 0xff), UInt8((value >> 8) & 0xff), UInt8((value >> 16) & 0xff), UInt8(value >> 24)]
}

/// Returns once the file at `path` holds at least `count` bytes: each look is woken by inotify on its directory (a
/// write, a creation, a rename), on a thread of ``BlockingThreads`` — no polling.
func waitForFile(_ path: String, toHold count: Int) async throws {
    try await BlockingThreads.run {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let watch = inotify_init1(Int32(IN_CLOEXEC))
        guard watch >= 0 else { throw Shell.Failed(command: "inotify_init1", status: errno) }
        defer { close(watch) }
        let events = UInt32(IN_MODIFY) | UInt32(IN_CREATE) | UInt32(IN_CLOSE_WRITE) | UInt32(IN_MOVED_TO)
        guard inotify_add_watch(watch, directory, events) >= 0 else {
            throw Shell.Failed(command: "inotify_add_watch \(directory)", status: errno)
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            var info = stat()
            if stat(path, &info) == 0 && Int(info.st_size) >= count { return }
            // Until something changes in the directory; a writer silent for 20 s has failed (or hung).
            var descriptor = pollfd(fd: watch, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 20_000) == 1 else {
                throw Shell.Failed(command: "wait for \(count) bytes in \(path)", status: -1)
            }
            _ = read(watch, &buffer, buffer.count)
        }
    }
}
