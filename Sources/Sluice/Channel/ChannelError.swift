/// An error thrown by ``BoundedChannel`` when an element cannot be sent or received.
///
/// The ``code`` says which situation occurred; ``description`` is a message fit for a log line.
public struct ChannelError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Base: Hashable, Sendable {
            case finished
            case consumerGone
            case alreadyIterated
        }

        let base: Base

        /// The producer side already called ``BoundedChannel/finish()`` or ``BoundedChannel/fail(_:)``:
        /// the element was not delivered.
        public static let finished = Code(base: .finished)
        /// The consumer went away (it was cancelled, stopped iterating, or its stream terminated):
        /// the element was not delivered and never will be.
        public static let consumerGone = Code(base: .consumerGone)
        /// A second iterator was made for a channel that allows a single consumer.
        public static let alreadyIterated = Code(base: .alreadyIterated)

        public var description: String {
            switch self.base {
            case .finished: "finished"
            case .consumerGone: "consumerGone"
            case .alreadyIterated: "alreadyIterated"
            }
        }
    }

    /// What went wrong.
    public let code: Code

    init(_ code: Code) {
        self.code = code
    }

    public var description: String {
        switch self.code.base {
        case .finished:
            "ChannelError.finished: the channel was already finished; the element was not delivered"
        case .consumerGone:
            "ChannelError.consumerGone: the consumer stopped receiving; the element was not delivered"
        case .alreadyIterated:
            "ChannelError.alreadyIterated: a BoundedChannel has a single consumer and was already iterated"
        }
    }
}
