struct AsyncMapSettings: Sendable {
    /// Calls in flight at most.
    let concurrency: Int
    /// Records started and not yet sent on (or dropped) at most: in ordered mode, how far past a slow call the
    /// stage may go on.
    let window: Int
    let ordered: Bool
    let onWindowFull: (@Sendable () -> Void)?
}

/// Runs a `mapAsync` stage: a dispatcher task reads the input a record at a time, a child task per record makes
/// the call on the cooperative pool, and the stage's own task starts those children and sends their results on —
/// in input order, or as they complete.
///
/// As in ``ParallelMapCoordinator``, only the stage's own task uses its `StageOutput` and adds tasks to the group;
/// the dispatcher asks it to through the event channel the calls report on, and children never throw to the group.
/// Two token channels bound the work:
/// - `slots` (one token per call in flight): the dispatcher takes one before a call starts, the call returns it.
/// - `permits` (one per window place): the dispatcher puts one in before a call starts, the stage's task takes one
///   out each time a record is done (sent on, skipped or dead-lettered).
///
/// Results are gathered into batches; the stage's task sends what it has whenever no event is waiting for it, so
/// on a live input each result goes on as soon as it is in order, and under load the batches fill.
enum AsyncMapCoordinator {
    private enum Event<Input: Sendable, Output: Sendable>: Sendable {
        case start(sequence: Int, record: Input)
        case done(sequence: Int, result: Result<Output?, any Error>)
        case inputEnded(records: Int)
        case inputFailed(any Error, records: Int)
    }

    /// A finished call's result, `nil` when the error policy dropped the record.
    private struct Finished<Output> {
        let value: Output?
    }

    static func run<Input: Sendable, Output: Sendable>(
        input: StageInput<Input>,
        output: StageOutput<Output>,
        settings: AsyncMapSettings,
        recorder: StageRecorder,
        call: @escaping @Sendable (Input, Int) async throws -> Output?
    ) async throws {
        // Never full: at most `concurrency` starts and as many results are unread at once, then the input's end.
        let events = try BoundedChannel<Event<Input, Output>>(capacity: 2 * settings.concurrency + 2)
        let slots = try BoundedChannel<Void>(capacity: settings.concurrency)
        let permits = try BoundedChannel<Void>(capacity: settings.window)
        for _ in 0..<settings.concurrency {
            try await slots.send(())
        }
        let maxRecords = output.batchLimits.maxRecords

        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                let dispatched = Locked(0)
                do {
                    try await self.dispatch(
                        input: input,
                        events: events,
                        slots: slots,
                        permits: permits,
                        dispatched: dispatched,
                        onWindowFull: settings.onWindowFull
                    )
                } catch {
                    // If even this cannot be sent, the stage is already ending: nothing is left to tell.
                    try? await events.send(.inputFailed(error, records: dispatched.withLock { $0 }))
                }
            }

            var eventIterator = events.makeAsyncIterator()
            var permitIterator = permits.makeAsyncIterator()
            var finished: [Int: Finished<Output>] = [:]
            var gathered: [Output] = []
            var done = 0  // input records finished since the last send
            var nextInOrder = 0
            var totalRecords: Int?
            var inputFailure: (any Error)?

            /// Takes a finished record: its result joins the batch being gathered, which goes on once full.
            func finish(_ value: Output?) async throws {
                _ = try await permitIterator.next()
                done += 1
                nextInOrder += 1
                guard let value else { return }
                gathered.append(value)
                if gathered.count >= maxRecords { try await sendGathered() }
            }

            func sendGathered() async throws {
                let batch = Batch(gathered)
                gathered = []
                gathered.reserveCapacity(min(maxRecords, 1024))
                defer { done = 0 }
                try await output.send(batch, releasing: done)
            }

            while totalRecords.map({ nextInOrder < $0 }) ?? true {
                if events.storage.isAwaitingElements && (!gathered.isEmpty || done > 0) {
                    try await sendGathered()  // nothing else to do now: what is finished goes on
                }
                guard let event = try await eventIterator.next() else { break }
                switch event {
                case .start(let sequence, let record):
                    group.addTask {
                        recorder.beginWork()
                        let start = monotonicNanoseconds()
                        let result: Result<Output?, any Error>
                        do {
                            result = .success(try await call(record, sequence))
                        } catch {
                            result = .failure(error)
                        }
                        recorder.worked(monotonicNanoseconds() &- start)
                        recorder.endWork()
                        // Neither send may throw out of the task: a child's error (a cancellation, once a call's
                        // failure ends the stage) could then win over the stage's own error, the failing record's.
                        do {
                            try await events.send(.done(sequence: sequence, result: result))
                            try await slots.send(())
                        } catch {
                            // The stage is ending, or the dispatcher read the whole input and needs no more calls.
                        }
                    }
                case .done(let sequence, let result):
                    // A call's error (the policy stopped) ends the stage here; leaving the group cancels the rest.
                    let value = try result.get()
                    if settings.ordered {
                        finished[sequence] = Finished(value: value)
                        while let ready = finished.removeValue(forKey: nextInOrder) {
                            try await finish(ready.value)
                        }
                    } else {
                        try await finish(value)
                    }
                case .inputEnded(let records):
                    totalRecords = records
                case .inputFailed(let error, let records):
                    // Finish what was started before the input failed, then pass the failure on.
                    totalRecords = records
                    inputFailure = error
                }
            }
            try await sendGathered()
            if let inputFailure { throw inputFailure }
        }
    }

    private static func dispatch<Input: Sendable, Output: Sendable>(
        input: StageInput<Input>,
        events: BoundedChannel<Event<Input, Output>>,
        slots: BoundedChannel<Void>,
        permits: BoundedChannel<Void>,
        dispatched: Locked<Int>,
        onWindowFull: (@Sendable () -> Void)?
    ) async throws {
        var iterator = input.makeAsyncIterator()
        var slotIterator = slots.makeAsyncIterator()
        var sequence = 0
        while let batch = try await iterator.next() {
            _ = iterator.takeHeld()  // each record stays counted in flight until it is done
            for record in batch {
                try await permits.storage.send((), onPark: onWindowFull)  // waits while `window` records are out
                _ = try await slotIterator.next()  // waits for a call to end
                try await events.send(.start(sequence: sequence, record: record))
                sequence += 1
                dispatched.withLock { $0 = sequence }
            }
        }
        try await events.send(.inputEnded(records: sequence))
    }
}
