/// The run's clock (``RunOptions/clock``), opened once, as time elapsed since the run began.
///
/// `any Clock<Duration>` hides its `Instant` type; stages that track how old a held record is read the clock once
/// per batch, so the existential is opened here once per run rather than at every reading.
struct RunClock: Sendable {
    /// Time elapsed since the run began.
    let elapsed: @Sendable () -> Duration
    /// Sleeps until `elapsed()` reaches the given value. Throws `CancellationError` if the task is cancelled.
    let sleepUntil: @Sendable (Duration) async throws -> Void

    init(_ clock: any Clock<Duration>) {
        self = Self.opening(clock)
    }

    private init(
        elapsed: @escaping @Sendable () -> Duration,
        sleepUntil: @escaping @Sendable (Duration) async throws -> Void
    ) {
        self.elapsed = elapsed
        self.sleepUntil = sleepUntil
    }

    private static func opening<C: Clock>(_ clock: C) -> RunClock where C.Duration == Duration {
        let origin = clock.now
        return RunClock(
            elapsed: { origin.duration(to: clock.now) },
            sleepUntil: { try await clock.sleep(until: origin.advanced(by: $0), tolerance: nil) }
        )
    }
}
