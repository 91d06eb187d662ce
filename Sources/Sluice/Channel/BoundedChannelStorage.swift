import Synchronization

/// The shared state behind a ``BoundedChannel``: an `AsyncStream` that carries the elements to the consumer, and a
/// lock-protected ``BoundedChannelStateMachine`` that admits at most `capacity` of them into the stream.
///
/// Nothing that can resume a task runs with the lock held — not even `AsyncStream.Continuation.yield`, which
/// resumes a waiting consumer. Resuming a task takes that task's status lock, and a task's cancellation handlers
/// run with its status lock held and may take this lock (the stream's `onTermination`, a cancelled sender): holding
/// this lock across a resume deadlocked a cancelled consumer against its producer. So the gate admits an element
/// under the lock, the element is yielded after it is released, and a `finish()` that comes while admitted yields
/// are in flight is carried out by the last of them: nothing admitted is ever lost.
final class BoundedChannelStorage<Element: Sendable>: Sendable {
    typealias StateMachine = BoundedChannelStateMachine<Element>

    private let state: Locked<StateMachine>
    private let stream: AsyncStream<Element>
    private let continuation: AsyncStream<Element>.Continuation

    init(capacity: Int) {
        self.state = Locked(StateMachine(capacity: capacity))
        // Unbounded on purpose: the gate above bounds what the stream holds; the stream's own policies would drop.
        (self.stream, self.continuation) = AsyncStream.makeStream(of: Element.self, bufferingPolicy: .unbounded)
        self.continuation.onTermination = { [weak self] _ in
            self?.consumerTerminated()
        }
    }

    var capacity: Int { self.state.withLock { $0.capacity } }
    var buffered: Int { self.state.withLock { $0.buffered } }

    /// Elements buffered now, and the most ever buffered at once.
    var depth: QueueDepth { self.state.withLock { QueueDepth(now: $0.buffered, peak: $0.peakBuffered) } }
    var suspendedSenders: Int { self.state.withLock { $0.suspendedSenders } }

    // MARK: Producer side

    /// Delivers `element`, suspending while the channel is full.
    ///
    /// - Parameters:
    ///   - onPark: called once if the sender had to wait, after it is parked (a hook for statistics and tests; it
    ///     runs outside the lock).
    ///   - cancellable: `false` for an element that must reach a consumer that is still there even if the sending
    ///     task is cancelled (a source handing over what it read before a shutdown). Only the consumer going
    ///     away, or the channel closing, ends such a send.
    /// - Returns: whether the sender had to wait.
    @discardableResult
    func send(
        _ element: Element,
        onPark: (@Sendable () -> Void)? = nil,
        cancellable: Bool = true
    ) async throws -> Bool {
        if cancellable && Task.isCancelled { throw CancellationError() }
        let action = self.state.withLock { $0.send() }
        switch action {
        case .yield(let wake):
            self.yield(element)
            wake?.resume()
            return false
        case .fail(let error):
            throw error
        case .suspend(let id):
            if cancellable {
                try await withTaskCancellationHandler {
                    try await self.suspendSend(element, id: id, onPark: onPark, cancellable: true)
                } onCancel: {
                    let sender = self.state.withLock { $0.sendCancelled(id: id) }
                    sender?.resume(throwing: CancellationError())
                }
            } else {
                try await self.suspendSend(element, id: id, onPark: onPark, cancellable: false)
            }
            return true
        }
    }

    private func suspendSend(
        _ element: Element,
        id: UInt64,
        onPark: (@Sendable () -> Void)?,
        cancellable: Bool
    ) async throws {
        try await withCheckedThrowingContinuation { (sender: CheckedContinuation<Void, any Error>) in
            let action = self.state.withLock { machine in
                machine.sendSuspended(
                    id: id,
                    element: element,
                    continuation: sender,
                    isCancelled: cancellable && Task.isCancelled
                )
            }
            switch action {
            case .parked:
                onPark?()
            case .yieldAndResume(let wake):
                self.yield(element)
                wake?.resume()
                sender.resume()
            case .resume(let error):
                sender.resume(throwing: error)
            }
        }
    }

    func finish(failure: (any Error)?) {
        let action = self.state.withLock { $0.finish(failure: failure) }
        switch action {
        case .none:
            return
        case .finishStream(let senders, let error, let wake, let now):
            // Outside the lock: finishing the stream calls `onTermination`, which takes the lock.
            if now { self.continuation.finish() }
            for sender in senders {
                sender.resume(throwing: error)
            }
            wake?.resume()
        }
    }

    /// Yields an element the gate admitted, outside the lock; finishes the stream if a `finish()` waited for it.
    private func yield(_ element: Element) {
        self.continuation.yield(element)
        if self.state.withLock({ $0.yieldDone() }) {
            self.continuation.finish()
        }
    }

    // MARK: Consumer side

    func makeStreamIterator() -> AsyncStream<Element>.Iterator? {
        guard self.state.withLock({ $0.attachConsumer() }) else { return nil }
        return self.stream.makeAsyncIterator()
    }

    /// The consumer took one element: let the first parked sender in.
    func elementConsumed() {
        switch self.state.withLock({ $0.elementConsumed() }) {
        case .none:
            break
        case .yieldAndResume(let element, let sender):
            self.yield(element)
            sender.resume()
        }
    }

    /// The stream returned `nil`: the producer's end, its failure, or an interruption.
    func streamEnded() throws -> Element? {
        switch self.state.withLock({ $0.streamEnded() }) {
        case .endOfStream: return nil
        case .fail(let error): throw error
        }
    }

    /// The consumer is gone: parked senders learn it at once, later sends throw.
    func consumerTerminated() {
        let (senders, wake) = self.state.withLock { $0.consumerTerminated() }
        for sender in senders {
            sender.resume(throwing: ChannelError(.consumerGone))
        }
        wake?.resume()
    }

    /// Ends the consumer's current or next ``waitForElement(onPark:)`` without an element.
    func wakeConsumer() {
        self.state.withLock { $0.wakeConsumer() }?.resume()
    }

    /// Whether the consumer would wait for its next element: nothing is buffered and the channel is still open.
    var isAwaitingElements: Bool { self.state.withLock { $0.isAwaitingElements } }

    /// Returns once an element is buffered or the channel has ended — at once if that is already so — without
    /// taking the element; also returns when the calling task is cancelled, or on ``wakeConsumer()``. Only the
    /// consumer calls it.
    ///
    /// This lets the consumer wait for input and for a deadline at once without cancelling the stream's iterator
    /// (which would end the stream).
    ///
    /// - Parameter onPark: Called once if the consumer had to wait, after it is parked (a hook for tests).
    func waitForElement(onPark: (@Sendable () -> Void)? = nil) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                let parked = self.state.withLock { $0.waitForElement(waiter, isCancelled: Task.isCancelled) }
                if parked {
                    onPark?()
                } else {
                    waiter.resume()
                }
            }
        } onCancel: {
            self.state.withLock { $0.takeElementWaiter() }?.resume()
        }
    }
}
