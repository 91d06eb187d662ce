/// What a stage does when its closure throws for a record.
///
/// ```swift
/// lines.map(onError: .skip) { try parse($0) }                               // drop it, count it
/// lines.stage("enrich", onError: .retry(.exponential(maxAttempts: 4))) { try await lookup($0) }
/// lines.map(onError: .deadLetter(.file("bad.ndjson"))) { try parse($0) }     // keep it aside, go on
/// ```
///
/// The default, ``stop``, fails the run with the record's error, as any stage error does.
public struct ErrorPolicy: Sendable {
    indirect enum Base: Sendable {
        case stop
        case skip
        case retry(RetryPolicy, otherwise: Base)
        case deadLetter(DeadLetters)
    }

    let base: Base

    /// Fail the run (the default).
    public static let stop = ErrorPolicy(base: .stop)

    /// Drop the record and go on; the run report counts it (``StageReport/skipped``).
    public static let skip = ErrorPolicy(base: .skip)

    /// Call the closure again after a delay, up to the policy's number of attempts; then follow `fallback`.
    ///
    /// Retry only work that is safe to repeat. Delays are slept on the run's clock (``RunOptions/clock``).
    ///
    /// - Parameters:
    ///   - retry: How many attempts, and how long to wait between them.
    ///   - fallback: What to do once the attempts are used up: ``stop`` (the default), ``skip`` or
    ///     ``deadLetter(_:)``. A retry as the fallback counts as ``stop``.
    public static func retry(_ retry: RetryPolicy, otherwise fallback: ErrorPolicy = .stop) -> ErrorPolicy {
        let fallback: Base =
            switch fallback.base {
            case .retry: .stop
            default: fallback.base
            }
        return ErrorPolicy(base: .retry(retry, otherwise: fallback))
    }

    /// Send the record, its error, the stage and where the record came from to `destination`, and go on.
    public static func deadLetter(_ destination: DeadLetters) -> ErrorPolicy {
        ErrorPolicy(base: .deadLetter(destination))
    }

    @usableFromInline
    var isStop: Bool {
        if case .stop = self.base { return true }
        return false
    }
}

/// How often to retry, and how long to wait in between: exponential backoff with jitter.
///
/// The wait before attempt `n + 1` is `initialDelay × multiplierⁿ⁻¹`, at most `maxDelay`, then shortened by a
/// random share of at most `jitter` (so many workers failing together do not retry in lock step).
public struct RetryPolicy: Sendable, Hashable {
    /// How many times the closure is called in all, the first call included; at least 1.
    public var maxAttempts: Int
    /// The wait before the second attempt.
    public var initialDelay: Duration
    /// How much each wait grows over the one before.
    public var multiplier: Double
    /// The longest wait.
    public var maxDelay: Duration
    /// The largest share (0 to 1) by which a wait is randomly shortened.
    public var jitter: Double

    /// Exponential backoff.
    ///
    /// - Parameters:
    ///   - maxAttempts: Calls in all, the first included. Default 3.
    ///   - initialDelay: The first wait. Default 100 ms.
    ///   - multiplier: The growth of each wait. Default 2.
    ///   - maxDelay: The longest wait. Default 10 s.
    ///   - jitter: The largest random share taken off a wait, 0 to 1. Default 0.2.
    public static func exponential(
        maxAttempts: Int = 3,
        initialDelay: Duration = .milliseconds(100),
        multiplier: Double = 2,
        maxDelay: Duration = .seconds(10),
        jitter: Double = 0.2
    ) -> RetryPolicy {
        RetryPolicy(
            maxAttempts: maxAttempts,
            initialDelay: initialDelay,
            multiplier: multiplier,
            maxDelay: maxDelay,
            jitter: min(max(jitter, 0), 1)
        )
    }

    /// The wait after failed attempt `attempt` (1-based), before jitter.
    func baseDelay(after attempt: Int) -> Duration {
        var delay = self.initialDelay
        for _ in 1..<max(attempt, 1) {
            delay = delay * self.multiplier
            if delay >= self.maxDelay { return self.maxDelay }
        }
        return min(delay, self.maxDelay)
    }

    /// The wait after failed attempt `attempt`, with jitter drawn from `random` (in 0..<1).
    package func delay(after attempt: Int, random: Double) -> Duration {
        self.baseDelay(after: attempt) * (1 - self.jitter * random)
    }
}

/// A stage's asynchronous operation took longer than the stage's timeout.
public struct StageTimeoutError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The stage's name.
    public var stage: String
    /// The timeout that was exceeded.
    public var timeout: Duration

    public var description: String {
        "stage '\(self.stage)' timed out after \(self.timeout) on one record"
    }
}
