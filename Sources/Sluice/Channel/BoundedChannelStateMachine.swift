import DequeModule

/// The capacity gate of a ``BoundedChannel``: counts what the stream holds and parks senders when it is full.
///
/// A plain value with one `mutating func` per event; each returns what the caller must do. It performs no side
/// effects — ``BoundedChannelStorage`` takes the lock, asks the machine, and acts on the answer.
struct BoundedChannelStateMachine<Element: Sendable> {
    // Checked continuations: a resume of one is an edge ThreadSanitizer sees. With unsafe ones, TSan reports the
    // resumed task's first write to its own frame as a race with the resume (the runtime's hand-off is invisible
    // to it). They are only made when a sender or the consumer parks, never per element.
    typealias SendContinuation = CheckedContinuation<Void, any Error>
    typealias ElementWaiter = CheckedContinuation<Void, Never>

    /// A sender parked because the channel was full, with the element it wants to deliver.
    struct Waiter {
        let id: UInt64
        let element: Element
        let continuation: SendContinuation
    }

    enum Termination {
        /// `finish()` was called: deliver what was yielded, then end.
        case finished
        /// `fail(_:)` was called: deliver what was yielded, then throw.
        case failed(any Error)
        /// The consumer went away before the producer finished.
        case consumerGone
    }

    let capacity: Int
    /// Elements admitted (being yielded or yielded to the stream) and not yet taken by the consumer.
    private(set) var buffered = 0 {
        didSet { self.peakBuffered = max(self.peakBuffered, self.buffered) }
    }
    /// The most elements ever buffered at once.
    private(set) var peakBuffered = 0
    /// Elements admitted whose yield to the stream has not returned yet. Yields happen outside the lock, so the
    /// stream is finished only once none is in flight (``yieldDone()``): nothing admitted is ever lost.
    private var yieldsInFlight = 0
    /// `finish()` or `fail(_:)` came while yields were in flight: the last of them finishes the stream.
    private var streamFinishDeferred = false
    private var waiters: Deque<Waiter> = []
    private var termination: Termination?
    private var nextWaiterID: UInt64 = 0
    private var consumerAttached = false
    /// The consumer, waiting for an element to arrive without taking it (``waitForElement``).
    private var elementWaiter: ElementWaiter?
    /// A wake-up for the consumer's next wait for an element, when none was waiting (see ``wakeConsumer()``).
    private var wakePending = false

    init(capacity: Int) {
        self.capacity = capacity
    }

    var suspendedSenders: Int { self.waiters.count }

    /// Whether the consumer would have to wait for its next element: nothing is buffered and the channel is open.
    var isAwaitingElements: Bool { self.buffered == 0 && self.termination == nil }

    // MARK: Producer events

    enum SendAction {
        /// There is room: yield the element now (the count already includes it), then resume the consumer if it
        /// was waiting for an element.
        case yield(wake: ElementWaiter?)
        /// The channel is full: park the sender under this id.
        case suspend(id: UInt64)
        /// The channel is closed: throw.
        case fail(ChannelError)
    }

    mutating func send() -> SendAction {
        if let termination = self.termination {
            return .fail(Self.sendError(for: termination))
        }
        // Parked senders go first, so a newcomer never overtakes them.
        if self.buffered < self.capacity && self.waiters.isEmpty {
            self.buffered += 1
            self.yieldsInFlight += 1
            return .yield(wake: self.takeElementWaiter())
        }
        let id = self.nextWaiterID
        self.nextWaiterID &+= 1
        return .suspend(id: id)
    }

    enum SendSuspendedAction {
        /// The sender is parked; it is resumed when the consumer makes room or the channel closes.
        case parked
        /// Room appeared between `send()` and the suspension: yield the element and resume the sender (and the
        /// consumer, if it was waiting for an element).
        case yieldAndResume(wake: ElementWaiter?)
        /// Resume the sender throwing this error (closed channel, or the task was already cancelled).
        case resume(throwing: any Error)
    }

    mutating func sendSuspended(
        id: UInt64,
        element: Element,
        continuation: SendContinuation,
        isCancelled: Bool
    ) -> SendSuspendedAction {
        if isCancelled {
            // Cancelled before the sender was parked: the cancellation handler found nothing to resume.
            return .resume(throwing: CancellationError())
        }
        if let termination = self.termination {
            return .resume(throwing: Self.sendError(for: termination))
        }
        if self.buffered < self.capacity && self.waiters.isEmpty {
            self.buffered += 1
            self.yieldsInFlight += 1
            return .yieldAndResume(wake: self.takeElementWaiter())
        }
        self.waiters.append(Waiter(id: id, element: element, continuation: continuation))
        return .parked
    }

    /// A parked sender's task was cancelled: returns its continuation if it was still parked.
    mutating func sendCancelled(id: UInt64) -> SendContinuation? {
        guard let index = self.waiters.firstIndex(where: { $0.id == id }) else {
            // Either not parked yet (the suspension sees the cancellation) or already resumed.
            return nil
        }
        return self.waiters.remove(at: index).continuation
    }

    enum TerminateAction {
        case none
        /// Resume every parked sender with `error` (and the consumer, if it was waiting), and end the stream now if
        /// `now` — else the last yield in flight ends it.
        case finishStream(resumeSenders: [SendContinuation], error: ChannelError, wake: ElementWaiter?, now: Bool)
    }

    /// `finish()` (failure `nil`) or `fail(_:)`.
    mutating func finish(failure: (any Error)?) -> TerminateAction {
        guard self.termination == nil else { return .none }
        self.termination = failure.map { .failed($0) } ?? .finished
        // Parked senders had not delivered their element: they learn it rather than lose it silently.
        self.streamFinishDeferred = self.yieldsInFlight > 0
        return .finishStream(
            resumeSenders: self.removeAllWaiters(),
            error: ChannelError(.finished),
            wake: self.takeElementWaiter(),
            now: !self.streamFinishDeferred
        )
    }

    /// A yield admitted earlier has returned. Returns whether the stream must be finished now (a `finish()` was
    /// waiting for it).
    mutating func yieldDone() -> Bool {
        self.yieldsInFlight -= 1
        guard self.yieldsInFlight == 0, self.streamFinishDeferred else { return false }
        self.streamFinishDeferred = false
        return true
    }

    // MARK: Consumer events

    mutating func attachConsumer() -> Bool {
        guard !self.consumerAttached else { return false }
        self.consumerAttached = true
        return true
    }

    enum ConsumedAction {
        case none
        /// Yield the first parked sender's element (the count already includes it) and resume that sender.
        case yieldAndResume(Element, SendContinuation)
    }

    /// The consumer took one element from the stream.
    mutating func elementConsumed() -> ConsumedAction {
        self.buffered -= 1
        guard self.termination == nil, let waiter = self.waiters.popFirst() else { return .none }
        self.buffered += 1
        self.yieldsInFlight += 1
        return .yieldAndResume(waiter.element, waiter.continuation)
    }

    /// The consumer went away, or the stream terminated: returns the senders to resume with `consumerGone`.
    mutating func consumerTerminated() -> (senders: [SendContinuation], wake: ElementWaiter?) {
        if self.termination == nil {
            self.termination = .consumerGone
        }
        return (self.removeAllWaiters(), self.takeElementWaiter())
    }

    /// The consumer waits for an element without taking it. Returns `false` if it need not wait (an element is
    /// buffered, the channel ended, or its task was already cancelled); otherwise keeps `waiter` to resume later.
    mutating func waitForElement(_ waiter: ElementWaiter, isCancelled: Bool) -> Bool {
        if self.wakePending {
            self.wakePending = false
            return false
        }
        guard !isCancelled, self.isAwaitingElements else { return false }
        precondition(self.elementWaiter == nil, "a channel has a single consumer")
        self.elementWaiter = waiter
        return true
    }

    /// Ends the consumer's wait for an element without an element (its deadline came): returns the waiter to
    /// resume, or remembers the wake-up for the consumer's next wait if it was not waiting, so none is lost.
    mutating func wakeConsumer() -> ElementWaiter? {
        guard let waiter = self.takeElementWaiter() else {
            self.wakePending = true
            return nil
        }
        return waiter
    }

    /// The consumer's wait for an element was cancelled: returns its continuation if it was still waiting.
    mutating func takeElementWaiter() -> ElementWaiter? {
        defer { self.elementWaiter = nil }
        return self.elementWaiter
    }

    enum EndAction {
        case endOfStream
        case fail(any Error)
    }

    /// The stream returned `nil`: decides whether that is the producer's end or an interruption.
    func streamEnded() -> EndAction {
        // Elements still counted as buffered were dropped by the stream: only cancellation does that.
        guard self.buffered == 0 else { return .fail(CancellationError()) }
        switch self.termination {
        case .finished: return .endOfStream
        case .failed(let error): return .fail(error)
        case .consumerGone, nil: return .fail(CancellationError())
        }
    }

    private mutating func removeAllWaiters() -> [SendContinuation] {
        defer { self.waiters.removeAll() }
        return self.waiters.map(\.continuation)
    }

    private static func sendError(for termination: Termination) -> ChannelError {
        switch termination {
        case .finished, .failed: ChannelError(.finished)
        case .consumerGone: ChannelError(.consumerGone)
        }
    }
}
