/// When a stage that holds records back must pass them on: once the oldest has waited ``RunOptions/maxDelay``
/// on the run's clock. Read once per batch, never per record.
struct FlushSchedule {
    private let clock: RunClock
    private let maxDelay: Duration
    /// When the oldest record held back arrived, on the run's clock.
    private(set) var oldest: Duration?

    init<Record>(_ input: StageInput<Record>) {
        self.clock = input.clock
        self.maxDelay = input.maxDelay
    }

    /// Records are held back from now on, unless some already were.
    mutating func holding() {
        if self.oldest == nil { self.oldest = self.clock.elapsed() }
    }

    /// Nothing is held back any more.
    mutating func released() {
        self.oldest = nil
    }

    /// When what is held must go on at the latest, or `nil` when nothing is held.
    var deadline: Duration? { self.oldest.map { $0 + self.maxDelay } }

    /// Whether what is held has waited long enough.
    var isDue: Bool {
        guard let deadline = self.deadline else { return false }
        return self.clock.elapsed() >= deadline
    }
}
