#if canImport(Glibc)
import Glibc
#endif

/// Ends the run with a message, as a crash that libFuzzer records with the input that caused it.
public func fuzzFailure(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    let text = Array("FUZZ FAILURE (\(file):\(line)): \(message)\n".utf8)
    _ = text.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    abort()
}

/// Stops with a failure unless `condition` holds.
public func fuzzCheck(
    _ condition: Bool,
    _ message: @autoclosure () -> String,
    file: StaticString = #fileID,
    line: UInt = #line
) {
    if !condition { fuzzFailure(message(), file: file, line: line) }
}

/// The fuzzer's input as an array.
public func fuzzInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> [UInt8] {
    guard let start, count > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: start, count: count))
}

/// A file of this process's own for inputs that must be read from disk: in memory (`/dev/shm`) when it exists.
public let fuzzScratchPath: String = {
    let directory = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
    return "\(directory)/sluice-fuzz-\(getpid())"
}()

/// Replaces the scratch file's contents with `bytes`.
public func writeScratch(_ bytes: [UInt8]) {
    let descriptor = open(fuzzScratchPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    fuzzCheck(descriptor >= 0, "cannot create \(fuzzScratchPath): errno \(errno)")
    defer { close(descriptor) }
    var written = 0
    bytes.withUnsafeBytes { buffer in
        while written < buffer.count {
            let result = write(descriptor, buffer.baseAddress! + written, buffer.count - written)
            fuzzCheck(result > 0, "cannot write \(fuzzScratchPath): errno \(errno)")
            written += result
        }
    }
}

/// libFuzzer's driver, which parses its flags from the command line and calls the test function for each input.
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ test: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// Runs libFuzzer with the process's arguments on `test` (which returns 0), and exits with its status.
public func runFuzzer(_ test: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, test))
}
