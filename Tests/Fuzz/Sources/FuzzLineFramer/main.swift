// The line framer on any bytes, cut into chunks anywhere, under any batch limits and record limit.
//
// Properties: the lines are exactly the input split on `\n` (a last line without one included), numbered from 1,
// each batch within the limits; a line over the record limit is a `recordTooLong` error at that line's offset, after
// every line before it.
// The same for the framer that gathers lines straight into gzip blocks (a file's lines to gzip): the blocks hold the
// lines each with its `\n`, every block but the last ends at the first line end at or past the block size, and it
// fails at the same offset after the same lines.
import FuzzSupport

@testable import Sluice

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = fuzzInput(start, count)
    guard data.count >= 3 else { return 0 }
    // The first three bytes choose the limits and where chunks are cut; the rest is the text.
    let maxRecordBytes = Int(data[0] % 64) + 1
    let limits = BatchLimits(maxRecords: Int(data[1] % 8) + 1, maxBytes: Int(data[1] / 8) + 1)
    let cutEvery = Int(data[2] % 32) + 1
    let text = Array(data[3...])

    // What the lines must be.
    var expected: [ArraySlice<UInt8>] = []
    var offsets: [Int] = []
    var lineStart = 0
    for (index, byte) in text.enumerated() where byte == UInt8(ascii: "\n") {
        expected.append(text[lineStart..<index])
        offsets.append(lineStart)
        lineStart = index + 1
    }
    if lineStart < text.count {
        expected.append(text[lineStart...])
        offsets.append(lineStart)
    }
    let tooLong = expected.firstIndex { $0.count > maxRecordBytes }

    var framer = LineFramer(maxRecordBytes: maxRecordBytes, limits: limits)
    var lines: [[UInt8]] = []
    var failure: FileError?
    func collect() {
        for batch in framer.takeBatches() {
            let records = Batch<Line>(columns: batch).records
            fuzzCheck(!records.isEmpty && records.count <= limits.maxRecords, "a batch of \(records.count) lines")
            let bytes = records.reduce(0) { $0 + $1.bytes.count }
            fuzzCheck(records.count == 1 || bytes <= limits.maxBytes, "a batch of \(bytes) bytes over the limit")
            for line in records {
                fuzzCheck(line.lineNumber == lines.count + 1, "line \(line.lineNumber ?? 0) after \(lines.count) lines")
                fuzzCheck(line.sourcePath == "fuzz", "a line from \(line.sourcePath ?? "nowhere")")
                lines.append(Array(line.bytes))
            }
        }
    }
    for chunk in chunks(of: text, every: cutEvery) where failure == nil {
        do {
            try framer.frame(chunk)
        } catch let error as FileError {
            failure = error
        } catch {
            fuzzFailure("not a FileError: \(error)")
        }
        collect()
    }

    if let tooLong {
        fuzzCheck(
            failure?.code == .recordTooLong,
            "line \(tooLong + 1) is too long but framing gave \(String(describing: failure))"
        )
        fuzzCheck(
            failure?.offset == offsets[tooLong],
            "too long at \(offsets[tooLong]), reported at \(failure?.offset ?? -1)"
        )
        fuzzCheck(lines.count <= tooLong, "\(lines.count) lines came out before line \(tooLong + 1), which is too long")
        fuzzCheck(
            lines.elementsEqual(expected.prefix(lines.count).map(Array.init)),
            "the lines before the long one differ"
        )
    } else {
        fuzzCheck(failure == nil, "framing failed: \(String(describing: failure))")
        fuzzCheck(lines.elementsEqual(expected.map(Array.init)), "\(lines.count) lines, expected \(expected.count)")
    }
    checkBlocks(text: text, expected: expected, tooLong: tooLong, offsets: offsets, data: data)
    return 0
}

func checkBlocks(text: [UInt8], expected: [ArraySlice<UInt8>], tooLong: Int?, offsets: [Int], data: [UInt8]) {
    let maxRecordBytes = Int(data[0] % 64) + 1
    let blockSize = Int(data[1]) + 1
    let cutEvery = Int(data[2] / 32) * 7 + 1
    var framer = LineBlockFramer(
        maxRecordBytes: maxRecordBytes,
        builder: GzipBlockBuilder(size: blockSize, dictionaries: false)
    )
    var blocks: [GzipBlock] = []
    var failure: FileError?
    for chunk in chunks(of: text, every: cutEvery) where failure == nil {
        do {
            try framer.frame(chunk, into: &blocks)
        } catch {
            failure = error
        }
    }
    let complete = blocks.count
    if let last = framer.finish() { blocks.append(last) }

    let written = expected.prefix(tooLong ?? expected.count)
    let lines = framer.lineCount
    fuzzCheck(lines == written.count, "the block framer counted \(lines) lines, expected \(written.count)")
    fuzzCheck(
        blocks.flatMap(\.data) == written.flatMap { Array($0) + [0x0A] },
        "the blocks do not hold the \(written.count) lines"
    )
    for (index, block) in blocks.enumerated() {
        fuzzCheck(block.data.last == 0x0A, "block \(index) does not end a line")
        guard index < complete else { continue }
        let lastLineStart = (block.data.dropLast().lastIndex(of: 0x0A) ?? -1) + 1
        fuzzCheck(
            block.data.count >= blockSize && lastLineStart < blockSize,
            "block \(index) of \(block.data.count) bytes is not cut at the first line end past \(blockSize)"
        )
    }
    if let tooLong {
        fuzzCheck(
            failure?.code == .recordTooLong && failure?.offset == offsets[tooLong],
            "the block framer: too long at \(offsets[tooLong]), gave \(String(describing: failure))"
        )
    } else {
        fuzzCheck(failure == nil, "the block framer failed: \(String(describing: failure))")
    }
}

/// `text` cut into chunks of `size` bytes (the last one shorter), as a reader hands them out; an empty text is one
/// empty chunk at the end of the file.
func chunks(of text: [UInt8], every size: Int) -> [ByteChunk] {
    var chunks: [ByteChunk] = []
    var offset = 0
    repeat {
        let end = min(offset + size, text.count)
        chunks.append(
            ByteChunk(
                buffer: LineBuffer(Array(text[offset..<end]), budget: nil),
                path: "fuzz",
                offset: offset,
                endOfFile: end == text.count
            )
        )
        offset = end
    } while offset < text.count
    return chunks
}

runFuzzer { fuzz($0, $1) }
