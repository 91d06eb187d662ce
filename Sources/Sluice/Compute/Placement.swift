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
/// Put CPU-heavy stages on a pool, stages that block on I/O on ``io``; leave light stages on the cooperative pool.
public struct Placement: Sendable {
    enum Base: Sendable {
        case cooperative
        case compute
        case pool(ComputePool)
        case io
    }

    let base: Base

    /// Swift's cooperative thread pool: for stages that do little work per record or only await.
    public static let cooperative = Placement(base: .cooperative)

    /// The run's compute pool: ``RunOptions/computePool`` if set, otherwise a pool the run creates (sized by
    /// ``RunOptions/computeThreads``) and shuts down when it ends.
    public static let compute = Placement(base: .compute)

    /// A thread of the stage's own, for blocking I/O: reads and writes of files, pipes and sockets, and waits on
    /// them. It is never a compute-pool or cooperative thread, so a read blocked on a silent pipe holds up nothing
    /// else; the run starts the thread with the stage and joins it when the run ends. Sluice's file sources and
    /// sinks run there.
    public static let io = Placement(base: .io)

    /// A pool the caller owns; the run does not shut it down.
    public static func pool(_ pool: ComputePool) -> Placement {
        Placement(base: .pool(pool))
    }
}
