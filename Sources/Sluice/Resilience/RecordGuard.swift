import Logging

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
    let logger: Logger

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
                if error is StageTimeoutError { self.recorder.timedOutCall() }
                guard case .retry(let retry, let fallback) = self.policy else {
                    return try await self.follow(self.policy, record: record, index: index, error: error)
                }
                guard attempt < retry.maxAttempts else {
                    return try await self.follow(fallback, record: record, index: index, error: error)
                }
                self.recorder.retried()
                let delay = retry.delay(after: attempt, random: Double.random(in: 0..<1))
                self.logger.info(
                    "retrying a record",
                    metadata: [
                        "stage": "\(self.stage)", "record-index": "\(index)", "attempt": "\(attempt + 1)",
                        "delay": "\(delay)", "error": "\(error)",
                    ]
                )
                try await self.clock.sleep(for: delay)
                attempt += 1
            }
        }
    }

    /// Runs `operation` — one call for one record — failing with ``StageTimeoutError`` if the stage's timeout passes
    /// first. The call's time goes into the stage's latency histogram, whatever its outcome.
    @usableFromInline
    func withTimeout<Value: Sendable>(_ operation: @escaping @Sendable () async throws -> Value) async throws -> Value {
        let start = monotonicNanoseconds()
        defer { self.recorder.took(monotonicNanoseconds() &- start) }
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

    /// Handles a record's error under `policy` (not a retry: retries are used up or not configured).
    private func follow<Record: Sendable>(
        _ policy: ErrorPolicy.Base,
        record: Record,
        index: Int,
        error: any Error
    ) async throws {
        switch policy {
        case .skip:
            self.recorder.skippedRecord()
        case .deadLetter(let destination):
            let letter = DeadLetter.make(record, error: error, stage: self.stage)
            try await destination.send(letter, pool: self.pool)
            self.recorder.deadLetteredRecord()
            var metadata: Logger.Metadata = ["stage": "\(self.stage)", "record-index": "\(index)", "error": "\(error)"]
            if let source = letter.source { metadata["source"] = "\(source)" }
            if let line = letter.line { metadata["line"] = "\(line)" }
            self.logger.warning("record sent to dead letters", metadata: metadata)
        case .stop, .retry:
            throw RecordFailure(index: index, underlying: error, record: record)
        }
    }
}
