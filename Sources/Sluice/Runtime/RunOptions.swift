/// Settings for one run of a pipeline.
///
/// ```swift
/// var options = RunOptions()
/// options.channelCapacity = 8
/// options.batch = BatchLimits(maxRecords: 4096)
/// let report = try await pipeline.run(options)
/// ```
public struct RunOptions: Sendable {
    /// How many batches each channel between two stages holds before the upstream stage waits. Default 4.
    public var channelCapacity: Int
    /// How large each batch may grow.
    public var batch: BatchLimits

    /// Hooks for tests and instrumentation; internal so the public surface stays small.
    var hooks = Hooks()

    /// Creates run options.
    ///
    /// - Parameters:
    ///   - channelCapacity: How many batches each channel holds; at least 1.
    ///   - batch: How large each batch may grow.
    public init(channelCapacity: Int = 4, batch: BatchLimits = BatchLimits()) {
        self.channelCapacity = channelCapacity
        self.batch = batch
    }

    func validate() throws(ConfigurationError) {
        try ConfigurationError.requirePositive(self.channelCapacity, "channelCapacity")
        try self.batch.validate()
    }

    struct Hooks: Sendable {
        /// Called when a stage's send has to wait for room, once the sender is parked, with the stage's name.
        var onSendSuspended: (@Sendable (String) -> Void)?
    }
}
