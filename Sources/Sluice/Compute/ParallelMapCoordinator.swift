import Synchronization

struct ParallelMapSettings: Sendable {
    let pool: ComputePool?
    let workers: Int
    let window: Int
    let ordered: Bool
    let onWindowFull: (@Sendable () -> Void)?
}

/// Runs a parallel map stage: a dispatcher task reads the input, worker tasks transform batches on the pool, and
/// the stage's own task sends the results on (re-sequenced when ordered).
///
/// Only the stage's own task may use its `StageOutput`, and only a task group's owner may add tasks to it, so the
/// stage's task is both the collector and the one that starts workers; the dispatcher asks it to, through the
/// same event channel the workers report on. The child tasks never throw to the group: their failures travel as
/// events, so the stage's task — which the group does not cancel — never waits for a result that cannot come.
/// Two token channels bound the work:
/// - `slots` (one token per worker): the dispatcher takes one before handing out a batch, a worker returns it.
/// - `permits` (one token per window place): the dispatcher puts one in before handing out a batch, the
///   collector takes one out each time it sends a batch on.
enum ParallelMapCoordinator {
    private enum Event<Input: Sendable, Output: Sendable>: Sendable {
        case dispatch(sequence: Int, records: Batch<Input>, firstIndex: Int)
        case done(sequence: Int, inputCount: Int, result: Result<[Output], any Error>)
        case inputEnded(batches: Int)
        case inputFailed(any Error, batches: Int)
    }

    static func run<Input: Sendable, Output: Sendable>(
        input: StageInput<Input>,
        output: StageOutput<Output>,
        settings: ParallelMapSettings,
        recorder: StageRecorder,
        work: @escaping @Sendable (Batch<Input>, Int) async throws -> [Output]
    ) async throws {
        let events = try BoundedChannel<Event<Input, Output>>(capacity: settings.workers + 1)
        let slots = try BoundedChannel<Void>(capacity: settings.workers)
        let permits = try BoundedChannel<Void>(capacity: settings.window)
        for _ in 0..<settings.workers {
            try await slots.send(())
        }

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
                    try? await events.send(.inputFailed(error, batches: dispatched.withLock { $0 }))
                }
            }

            var eventIterator = events.makeAsyncIterator()
            var permitIterator = permits.makeAsyncIterator()
            var finished: [Int: (records: [Output], inputCount: Int)] = [:]
            var nextToSend = 0
            var totalBatches: Int?
            var inputFailure: (any Error)?
            while totalBatches.map({ nextToSend < $0 }) ?? true {
                guard let event = try await eventIterator.next() else { break }
                switch event {
                case .dispatch(let sequence, let records, let firstIndex):
                    let inputCount = records.count
                    group.addTask(executorPreference: settings.pool) {
                        recorder.beginWork()
                        let start = monotonicNanoseconds()
                        let result: Result<[Output], any Error>
                        do {
                            result = .success(try await work(records, firstIndex))
                        } catch {
                            result = .failure(error)
                        }
                        let took = monotonicNanoseconds() &- start
                        recorder.worked(took)
                        recorder.took(took)
                        recorder.endWork()
                        // Neither send may throw out of the task: a child's error (a cancellation, once a worker's
                        // failure ends the stage) could then win over the stage's own error, the failing record's.
                        do {
                            try await events.send(.done(sequence: sequence, inputCount: inputCount, result: result))
                            try await slots.send(())
                        } catch {
                            // The stage is ending, or the dispatcher read the whole input and needs no more workers.
                        }
                    }
                case .done(let sequence, let inputCount, let result):
                    // A worker's error ends the stage here; leaving the group cancels the dispatcher and workers.
                    let records = try result.get()
                    if settings.ordered {
                        finished[sequence] = (records, inputCount)
                        while let ready = finished.removeValue(forKey: nextToSend) {
                            try await output.send(Batch(ready.records), releasing: ready.inputCount)
                            _ = try await permitIterator.next()
                            nextToSend += 1
                        }
                    } else {
                        try await output.send(Batch(records), releasing: inputCount)
                        _ = try await permitIterator.next()
                        nextToSend += 1
                    }
                case .inputEnded(let batches):
                    totalBatches = batches
                case .inputFailed(let error, let batches):
                    // Send on what was handed out before the input failed, then pass the failure on.
                    totalBatches = batches
                    inputFailure = error
                }
            }
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
        var firstIndex = 0
        while let batch = try await iterator.next() {
            try await permits.storage.send((), onPark: onWindowFull)  // waits while `window` batches are out
            _ = try await slotIterator.next()  // waits for a free worker
            _ = iterator.takeHeld()  // the batch stays counted in flight until its result is sent on
            try await events.send(.dispatch(sequence: sequence, records: batch, firstIndex: firstIndex))
            sequence += 1
            dispatched.withLock { $0 = sequence }
            firstIndex += batch.count
        }
        try await events.send(.inputEnded(batches: sequence))
    }
}
