/// Reads an `AsyncSequence` into a source's output so that a graceful shutdown can interrupt it — even while the
/// sequence is waiting for its next element — without losing an element already read.
///
/// A child task iterates the sequence and races it against the shutdown signal (the `cancelOnGracefulShutdown`
/// pattern of swift-service-lifecycle); elements cross to the source's task through a local channel with a send
/// that cancellation does not abort, so the one element in hand when the shutdown comes is still delivered. Each
/// element is handed over once (about 1.5 µs): for bulk data a `Sequence` or a custom ``Source`` is faster.
/// Records are batched while elements keep coming; when the sequence pauses, the partial batch is sent at once.
@usableFromInline
enum AsyncSequenceReader {
    private struct StopReading: Error {}

    @usableFromInline
    static func forward<S: AsyncSequence & Sendable>(
        _ sequence: S,
        to output: StageOutput<S.Element>
    ) async throws where S.Element: Sendable {
        let local = try BoundedChannel<S.Element>(capacity: output.batchLimits.maxRecords)
        let shutdown = output.shutdown
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await withThrowingTaskGroup(of: Void.self) { reading in
                        reading.addTask {
                            for try await element in sequence {
                                // Read after the shutdown request: not delivered, the source has stopped.
                                if shutdown.isRequested { break }
                                try await local.storage.send(element, cancellable: false)
                            }
                        }
                        reading.addTask {
                            await shutdown.wait()
                            throw StopReading()
                        }
                        // The first to end wins: the sequence's end (or error), or the shutdown.
                        try await reading.next()
                        reading.cancelAll()
                    }
                    local.finish()
                } catch is StopReading {
                    local.finish()
                } catch {
                    local.fail(error)
                }
            }
            var elements = local.makeAsyncIterator()
            // Waiting for the sequence's next element is waiting for input: it is neither work nor a reason to
            // name the source when a drain overruns its deadline.
            while let element = try await output.waitingForInput({ try await elements.next() }) {
                try await output.emit(element)
                if local.storage.buffered == 0 {
                    // Nothing else is waiting: send what was gathered now rather than hold it for a full batch
                    // (a live stream may not produce the rest for a long time). Under load, batches fill up.
                    try await output.flush()
                }
            }
        }
    }
}
