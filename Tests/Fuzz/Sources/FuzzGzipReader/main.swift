// The gzip reader, under every inflate backend, on any bytes.
//
// Properties: no crash, hang or unbounded memory; ISA-L on a regular file (where a member it refuses is judged again by
// zlib) gives zlib's bytes and zlib's error (kind and compressed offset), after at most a few bytes more of a damaged
// member; ISA-L on input that cannot be read again (a pipe) succeeds exactly when zlib does, with the same bytes.
import FuzzSupport
import Logging

@testable import Sluice

private let logger = Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })
private let shutdown = ShutdownSignal()
private let waiter: InputWaiter = {
    do { return try InputWaiter(shutdown: shutdown, path: "fuzz") } catch { fuzzFailure("no waiter: \(error)") }
}()

/// Decoded bytes, and the error that ended the reading, if any.
private struct Outcome: Equatable {
    var bytes: [UInt8] = []
    var error: FileError?

    /// The same bytes, and the same error kind at the same offset (the wording may differ).
    static func == (a: Outcome, b: Outcome) -> Bool {
        a.bytes == b.bytes && a.error?.code == b.error?.code && a.error?.offset == b.error?.offset
    }

    var summary: String {
        "\(self.bytes.count) bytes, "
            + (self.error.map { "\($0.code) at \($0.offset.map(String.init) ?? "-")" } ?? "ok")
    }
}

/// Reads the scratch file the way a run does: `FileChunkReader`, chunk by chunk.
private func readFile(chunkSize: Int, backend: InflateBackend) -> Outcome {
    let reader = FileChunkReader(
        paths: [fuzzScratchPath],
        chunkSize: chunkSize,
        waiter: waiter,
        inflate: backend,
        logger: logger
    )
    defer { reader.close() }
    var outcome = Outcome()
    do {
        while true {
            let chunks = try reader.next()
            if chunks.isEmpty { break }
            for chunk in chunks {
                fuzzCheck(chunk.offset == outcome.bytes.count, "chunk at \(chunk.offset) after \(outcome.bytes.count)")
                fuzzCheck(chunk.byteCount <= chunkSize, "a chunk of \(chunk.byteCount) bytes over \(chunkSize)")
                outcome.bytes += chunk.bytes
            }
        }
    } catch let error as FileError {
        outcome.error = error
    } catch {
        fuzzFailure("not a FileError: \(error)")
    }
    return outcome
}

/// Decodes `input` as a pipe delivers it (pieces of `piece` bytes), with no way to read it again.
private func decodeStream(_ input: [UInt8], chunkSize: Int, piece: Int, backend: InflateBackend) -> Outcome {
    var outcome = Outcome()
    do {
        let decoder = try GzipDecoder(path: "fuzz", chunkSize: chunkSize, backend: backend)
        defer { decoder.end() }
        var start = 0
        var pending: [UInt8] = []
        do {
            while start < input.count || decoder.isHoldingOutput || !pending.isEmpty {
                if pending.isEmpty && start < input.count {
                    pending = Array(input[start..<min(start + piece, input.count)])
                    start += pending.count
                }
                let used = try pending.withUnsafeBytes { try decoder.decode($0) }
                pending.removeFirst(used)
                for chunk in decoder.takeChunks() { outcome.bytes += chunk }
                if used == 0 && !decoder.isHoldingOutput && start >= input.count && !pending.isEmpty {
                    fuzzFailure("the decoder takes none of \(pending.count) bytes and holds no output")
                }
            }
            try decoder.finish()
        } catch let error as FileError {
            outcome.error = error
        } catch {
            fuzzFailure("not a FileError: \(error)")
        }
        for chunk in decoder.takeRemainingChunks() { outcome.bytes += chunk }
    } catch {
        outcome.error = error
    }
    return outcome
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = fuzzInput(start, count)
    let chunkSize = [61, 1000, 4096, 65536][input.count % 4]
    writeScratch(input)
    let zlib = readFile(chunkSize: chunkSize, backend: .zlib)
    let isal = readFile(chunkSize: chunkSize, backend: .isal)
    // A damaged member can be decoded a little further by ISA-L than by zlib before it stops (a block whose Huffman
    // code zlib's stricter checks refuse): the error is zlib's, and zlib's bytes come first.
    let sameVerdict = zlib.error?.code == isal.error?.code && zlib.error?.offset == isal.error?.offset
    let sameBytes = zlib.error == nil ? zlib.bytes == isal.bytes : isal.bytes.starts(with: zlib.bytes)
    fuzzCheck(sameVerdict && sameBytes, "zlib read \(zlib.summary), ISA-L \(isal.summary) (chunk size \(chunkSize))")

    if let format = ForeignCompression.format(of: input) {
        fuzzCheck(
            zlib.error?.code == .unsupportedCompression && zlib.error?.offset == 0 && zlib.bytes.isEmpty,
            "\(format.name) data was not refused at byte 0: \(zlib.summary)"
        )
        return 0
    }
    let isGzip = input.count >= 2 && input[0] == 0x1f && input[1] == 0x8b
    guard isGzip else {
        fuzzCheck(zlib.bytes == input && zlib.error == nil, "plain input came out changed: \(zlib.summary)")
        return 0
    }
    let piece = [1, 7, 512, 4096][(input.count / 4) % 4]
    let zlibStream = decodeStream(input, chunkSize: chunkSize, piece: piece, backend: .zlib)
    let isalStream = decodeStream(input, chunkSize: chunkSize, piece: piece, backend: .isal)
    fuzzCheck(zlibStream == zlib, "zlib on a stream read \(zlibStream.summary), on a file \(zlib.summary)")
    fuzzCheck(
        (zlibStream.error == nil) == (isalStream.error == nil),
        "on a stream, zlib read \(zlibStream.summary), ISA-L \(isalStream.summary)"
    )
    if zlibStream.error == nil {
        fuzzCheck(zlibStream.bytes == isalStream.bytes, "on a stream, ISA-L decoded other bytes than zlib")
    } else {
        fuzzCheck(isalStream.error?.offset != nil, "ISA-L's error names no offset: \(isalStream.summary)")
    }
    return 0
}

runFuzzer { fuzz($0, $1) }
