/// Applies a stage's ``ErrorPolicy`` (and timeout) to one record at a time.
///
/// Only stages with a policy other than `.stop`, or a timeout, go through it: the per-batch fast path of the
/// operators is untouched otherwise.
@usableFromInline
struct RecordGuard: Sendable {
    let policy: ErrorPolicy.Base
    let stage: String
    let clock: any Clock<Duration>
    let timeout: Duration?
    let recorder: StageRecorder
    /// The pool that dead-letter files are written on.
    let pool: ComputePool?

    /// Runs `body` for `record`, following the policy if it throws.
    ///
    /// Returns once the record was processed, skipped or sent to the dead letters.
    ///
    /// - Throws: A ``RecordFailure`` (the record's position and error) when the policy stops the run;
    ///   `CancellationError` when the run is cancelled, also while waiting to retry.
    @usableFromInline
    func run<Record: Sendable>(_ record: Record, index: Int, _ body: () async throws -> Void) async throws {
        var attempt = 1
        while true {
            do {
                try await body()
                return
            } catch let error where !(error is CancellationError) {
                switch self.policy {
                case .stop:
                    throw RecordFailure(index: index, underlying: error)
                case .skip:
                    self.recorder.skipped.wrappingAdd(1, ordering: .relaxed)
                    return
                case .deadLetter(let destination):
                    try await destination.send(
                        DeadLetter.make(record, error: error, stage: self.stage),
                        pool: self.pool
                    )
                    self.recorder.deadLettered.wrappingAdd(1, ordering: .relaxed)
                    return
                case .retry(let retry, let fallback):
                    guard attempt < retry.maxAttempts else {
                        try await self.follow(fallback, record: record, index: index, error: error)
                        return
                    }
                    self.recorder.retries.wrappingAdd(1, ordering: .relaxed)
                    try await self.clock.sleep(for: retry.delay(after: attempt, random: Double.random(in: 0..<1)))
                    attempt += 1
                }
            }
        }
    }

    /// Runs `operation` for one record, failing with ``StageTimeoutError`` if the stage's timeout passes first.
    @usableFromInline
    func withTimeout<Value: Sendable>(_ operation: @escaping @Sendable () async throws -> Value) async throws -> Value {
        guard let timeout = self.timeout else { return try await operation() }
        let clock = self.clock
        let stage = self.stage
        return try await withThrowingTaskGroup(of: Value.self) { group in
            group.addTask { try await operation() }
            group.addTask {
                try await clock.sleep(for: timeout)
                throw StageTimeoutError(stage: stage, timeout: timeout)
            }
            defer { group.cancelAll() }
            guard let value = try await group.next() else { throw CancellationError() }
            return value
        }
    }

    private func follow<Record: Sendable>(
        _ fallback: ErrorPolicy.Base,
        record: Record,
        index: Int,
        error: any Error
    ) async throws {
        switch fallback {
        case .skip:
            self.recorder.skipped.wrappingAdd(1, ordering: .relaxed)
        case .deadLetter(let destination):
            try await destination.send(DeadLetter.make(record, error: error, stage: self.stage), pool: self.pool)
            self.recorder.deadLettered.wrappingAdd(1, ordering: .relaxed)
        case .stop, .retry:
            throw RecordFailure(index: index, underlying: error)
        }
    }
}
