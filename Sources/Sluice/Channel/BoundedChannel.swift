/// An asynchronous channel that holds at most `capacity` elements: a sender waits while it is full.
///
/// Elements travel through an `AsyncStream` to the consumer; a capacity gate in front of it makes `send(_:)`
/// suspend instead of buffering without bound, and nothing is ever dropped silently. Any number of tasks may send
/// (fan-in); one task consumes by iterating the channel.
///
/// ```swift
/// let channel = try BoundedChannel<Int>(capacity: 4)
/// try await withThrowingTaskGroup(of: Void.self) { group in
///     group.addTask {
///         for value in 0..<100 { try await channel.send(value) }
///         channel.finish()
///     }
///     for try await value in channel { print(value) }
/// }
/// ```
///
/// Ending the channel:
/// - The producer calls ``finish()``: the consumer receives everything already sent, then the iteration ends.
/// - The producer calls ``fail(_:)``: the consumer receives everything already sent, then the iteration throws.
/// - The consumer goes away — its task is cancelled, it stops iterating, or its iterator is discarded — and every
///   suspended sender is resumed at once with ``ChannelError/Code/consumerGone``; later sends throw it too.
///
/// - Important: A channel has a single consumer. A second iterator throws ``ChannelError/Code/alreadyIterated``.
///   Pipelines send ``Batch``es rather than single records, so the cost of a hand-off is paid once per batch.
public struct BoundedChannel<Element: Sendable>: Sendable {
    let storage: BoundedChannelStorage<Element>

    /// Creates a channel that holds at most `capacity` elements.
    ///
    /// - Parameter capacity: How many elements the channel holds before `send(_:)` suspends; at least 1.
    /// - Throws: ``ConfigurationError`` if `capacity` is less than 1 (a channel that holds nothing could never
    ///   accept an element, so every send would hang).
    public init(capacity: Int) throws(ConfigurationError) {
        try ConfigurationError.requirePositive(capacity, "capacity")
        self.storage = BoundedChannelStorage(capacity: capacity)
    }

    /// How many elements the channel holds before a sender waits.
    public var capacity: Int { self.storage.capacity }

    /// Sends `element`, suspending while the channel holds `capacity` elements.
    ///
    /// Senders that had to wait are let in one at a time, in the order they arrived.
    ///
    /// - Parameter element: The element to deliver.
    /// - Throws: `CancellationError` if the calling task is cancelled before or while it waits (the element is
    ///   not delivered); ``ChannelError`` with ``ChannelError/Code/consumerGone`` if the consumer went away, or
    ///   ``ChannelError/Code/finished`` if the channel was finished or failed before the element got in.
    public func send(_ element: Element) async throws {
        try await self.storage.send(element)
    }

    /// Ends the channel normally: the consumer receives everything already sent, then its iteration ends.
    ///
    /// Senders still waiting for room are resumed with ``ChannelError/Code/finished``: their elements were not
    /// sent. Calling `finish()` or `fail(_:)` again has no effect.
    public func finish() {
        self.storage.finish(failure: nil)
    }

    /// Ends the channel with an error: the consumer receives everything already sent, then its iteration throws
    /// `error`.
    ///
    /// Senders still waiting for room are resumed with ``ChannelError/Code/finished``. Calling `finish()` or
    /// `fail(_:)` again has no effect.
    public func fail(_ error: any Error) {
        self.storage.finish(failure: error)
    }
}

extension BoundedChannel: AsyncSequence {
    public typealias Failure = any Error

    public func makeAsyncIterator() -> Iterator {
        Iterator(storage: self.storage)
    }

    /// The consumer's side of a ``BoundedChannel``.
    ///
    /// Discarding the iterator before the end tells the producers that the consumer is gone.
    public struct Iterator: AsyncIteratorProtocol {
        public typealias Failure = any Error

        private var base: AsyncStream<Element>.Iterator?
        private let lifetime: ConsumerLifetime<Element>

        init(storage: BoundedChannelStorage<Element>) {
            self.base = storage.makeStreamIterator()
            self.lifetime = ConsumerLifetime(storage: storage, isConsumer: self.base != nil)
        }

        /// The next element, or `nil` once the channel is finished and everything sent was received.
        ///
        /// - Throws: The error given to ``BoundedChannel/fail(_:)`` once everything before it was received;
        ///   `CancellationError` if the consumer's task was cancelled (elements not yet received are dropped);
        ///   ``ChannelError/Code/alreadyIterated`` if another iterator already consumes the channel.
        public mutating func next() async throws -> Element? {
            guard self.base != nil else { throw ChannelError(.alreadyIterated) }
            if Task.isCancelled {
                // A cancelled consumer stops here rather than keep admitting parked senders it will never serve.
                self.lifetime.storage.consumerTerminated()
                throw CancellationError()
            }
            if let element = await self.base!.next() {
                self.lifetime.storage.elementConsumed()
                return element
            }
            return try self.lifetime.storage.streamEnded()
        }
    }
}

@available(*, unavailable)
extension BoundedChannel.Iterator: Sendable {}

/// Tells the channel when its consumer's iterator is discarded, so suspended senders are not left waiting for
/// a consumer that will never come back — the same pattern as `NIOAsyncSequenceProducer`'s iterator.
private final class ConsumerLifetime<Element: Sendable> {
    let storage: BoundedChannelStorage<Element>
    private let isConsumer: Bool

    init(storage: BoundedChannelStorage<Element>, isConsumer: Bool) {
        self.storage = storage
        self.isConsumer = isConsumer
    }

    deinit {
        if self.isConsumer {
            self.storage.consumerTerminated()
        }
    }
}
