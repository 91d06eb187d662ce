/// Joins compressed blocks into the gzip file: header, blocks, an empty final block, CRC32 and length — or, for
/// blocks that are whole gzip members (libdeflate's), the members one after the other.
///
/// Each block ends with a sync flush (or a member's end), so whenever the input is idle the writer hands what it has
/// to the system: a reader of the growing file (`zcat`) then sees every line written so far.
enum GzipFileSink {
    static func write(
        _ input: StageInput<CompressedBlock>,
        to path: String,
        members: Bool,
        synchronize: Bool
    ) async throws {
        let file = try GzipFile(path: path, members: members)  // blocks: this stage has a thread of its own
        var iterator = input.makeAsyncIterator()
        do {
            input.countBytes(in: 0, out: try file.begin())
            while true {
                if iterator.isIdle { try file.flush() }
                guard let batch = try await iterator.next() else { break }
                var plain = 0
                var stored = 0
                for block in batch {
                    try file.append(block)
                    plain += block.length
                    stored += block.bytes.count
                }
                input.countBytes(in: plain, out: stored)
            }
        } catch {
            // Whatever happened upstream, the file ends as valid gzip holding the blocks written.
            if let closing = try? file.finish(synchronize: false) { input.countBytes(in: 0, out: closing) }
            throw error
        }
        input.countBytes(in: 0, out: try file.finish(synchronize: synchronize))
    }
}
