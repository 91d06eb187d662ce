/// Where a stage's code runs.
///
/// ```swift
/// pipeline
///     .map(on: .compute) { parse($0) }          // the run's compute pool
///     .map(on: .pool(hashingPool)) { hash($0) } // a pool of your own
///     .map { $0.summary }                       // the cooperative pool (the default)
/// ```
///
/// A stage placed on a pool runs there as a whole, under a task-executor preference: its loop, the user's
/// closure and its channel hand-offs all run on the pool's threads, so the placement costs nothing per record.
/// Put CPU-heavy or blocking stages on a pool; leave light stages on the cooperative pool.
public struct Placement: Sendable {
    enum Base: Sendable {
        case cooperative
        case compute
        case pool(ComputePool)
    }

    let base: Base

    /// Swift's cooperative thread pool: for stages that do little work per record or only await.
    public static let cooperative = Placement(base: .cooperative)

    /// The run's compute pool: ``RunOptions/computePool`` if set, otherwise a pool the run creates (sized by
    /// ``RunOptions/computeThreads``) and shuts down when it ends.
    public static let compute = Placement(base: .compute)

    /// A pool the caller owns; the run does not shut it down.
    public static func pool(_ pool: ComputePool) -> Placement {
        Placement(base: .pool(pool))
    }
}
