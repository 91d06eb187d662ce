extension Batch where Record == Line {
    /// A columnar batch of the lines in `columns`.
    @inlinable
    init(columns: LineColumns) {
        self.storage = .lines(columns)
    }

    /// Calls `body` with the lines as runs of contiguous bytes, in order — what writers copy with one `memcpy`.
    ///
    /// Lines that lie back to back in one buffer, each followed there by its `\n`, come as one run that ends with
    /// the last one's `\n` (`terminated`). A line without its `\n` in its buffer (a file's last line, a line made
    /// by the user) comes alone, unterminated: the caller adds the `\n`.
    func forEachRun(_ body: (_ bytes: UnsafeRawBufferPointer, _ terminated: Bool) throws -> Void) rethrows {
        switch self.storage {
        case .rows(let lines):
            for line in lines {
                try line.withUnsafeBytes { try body($0, false) }
            }
        case .lines(let columns):
            let slots = columns.slots
            var index = 0
            while index < slots.count {
                let first = slots[index]
                let bytes = columns.buffers[Int(first.buffer)].bytes
                index += 1
                var end = first.end
                let terminated = end < bytes.count && bytes[end] == 0x0A
                if terminated {
                    end += 1
                    while index < slots.count {
                        let next = slots[index]
                        guard next.buffer == first.buffer, next.start == end, next.end < bytes.count,
                            bytes[next.end] == 0x0A
                        else { break }
                        end = next.end + 1
                        index += 1
                    }
                }
                try bytes.withUnsafeBytes { all in
                    try body(UnsafeRawBufferPointer(rebasing: all[first.start..<end]), terminated)
                }
            }
        }
    }
}
