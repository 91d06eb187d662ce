/// Writes lines to a plain file.
enum LineFileSink {
    static func write(_ input: StageInput<Line>, to path: String, synchronize: Bool) async throws {
        let writer = try BufferedFileWriter(path: path)  // blocks: this stage has a thread of its own
        var iterator = input.makeAsyncIterator()
        var flush = FlushSchedule(input)
        do {
            while true {
                if iterator.isIdle && writer.hasBuffered {
                    // Nothing more is coming for now: what was written so far goes out, not at end of input.
                    try writer.flush()
                }
                guard let batch = try await iterator.next() else { break }
                flush.holding()
                var bytes = 0
                try batch.forEachRun { run, terminated in
                    try writer.write(raw: run, newline: !terminated)
                    bytes += run.count + (terminated ? 0 : 1)
                }
                input.countBytes(in: bytes, out: bytes)
                if flush.isDue {
                    try writer.flush()  // under a steady trickle the input is never idle: bound the wait anyway
                }
                if !writer.hasBuffered { flush.released() }
            }
        } catch {
            // Keep every whole line received so far.
            try? writer.close(synchronize: false)
            throw error
        }
        try writer.close(synchronize: synchronize)
    }
}
