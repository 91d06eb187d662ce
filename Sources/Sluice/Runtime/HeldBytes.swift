/// Counts a buffer's bytes in the run's ``ByteBudget`` for as long as the engine holds it: made with the buffer,
/// it adds them; when the last copy of the value that carries it goes away, it releases them.
final class HeldBytes: Sendable {
    let count: Int
    let budget: ByteBudget

    init(_ count: Int, in budget: ByteBudget) {
        self.count = count
        self.budget = budget
        budget.add(count)
    }

    deinit {
        self.budget.release(self.count)
    }
}
