import Testing

@testable import Sluice

@Suite("BoundedChannel", .timeLimit(.minutes(1)))
struct BoundedChannelTests {
    /// Fills `channel` to capacity with 0..<capacity; none of these sends may suspend.
    private func fill(_ channel: BoundedChannel<Int>) async throws {
        for value in 0..<channel.capacity {
            let suspended = try await channel.storage.send(value)
            #expect(!suspended)
        }
    }

    /// Starts a sender of `value` that reports, through `parked`, once it waits for room.
    private func startParkedSender(
        _ channel: BoundedChannel<Int>,
        value: Int,
        parked: EventCounter
    ) -> Task<Void, any Error> {
        Task {
            try await channel.storage.send(value, onPark: { parked.signal() })
        }
    }

    @Test func send_suspends_whenChannelIsFull_untilConsumerTakesOne() async throws {
        let channel = try BoundedChannel<Int>(capacity: 3)
        try await self.fill(channel)
        let parked = EventCounter()
        let returned = EventCounter()
        let sender = Task {
            try await channel.storage.send(99, onPark: { parked.signal() })
            returned.signal()
        }
        await parked.wait(beyond: 0)
        // The fourth send is parked: it has not returned, and the channel holds exactly its capacity.
        #expect(returned.value == 0)
        #expect(channel.storage.suspendedSenders == 1)
        #expect(channel.storage.buffered == 3)

        var iterator = channel.makeAsyncIterator()
        #expect(try await iterator.next() == 0)
        try await sender.value
        #expect(returned.value == 1)
        #expect(channel.storage.buffered == 3)

        channel.finish()
        var rest: [Int] = []
        while let value = try await iterator.next() { rest.append(value) }
        #expect(rest == [1, 2, 99])
    }

    @Test func parkedSenders_areAdmittedInArrivalOrder() async throws {
        let channel = try BoundedChannel<Int>(capacity: 1)
        try await self.fill(channel)
        let parked = EventCounter()
        var senders: [Task<Void, any Error>] = []
        for value in 1...5 {
            senders.append(self.startParkedSender(channel, value: value, parked: parked))
            await parked.wait(beyond: value - 1)
        }
        var received: [Int] = []
        var iterator = channel.makeAsyncIterator()
        for _ in 0...5 {
            received.append(try #require(try await iterator.next()))
        }
        for sender in senders { try await sender.value }
        #expect(received == [0, 1, 2, 3, 4, 5])
    }

    @Test func finish_deliversEverythingSent_thenEnds() async throws {
        let channel = try BoundedChannel<Int>(capacity: 4)
        for value in 1...3 { try await channel.send(value) }
        channel.finish()
        channel.finish()  // a second finish changes nothing
        var received: [Int] = []
        for try await value in channel { received.append(value) }
        #expect(received == [1, 2, 3])
    }

    @Test func fail_deliversEverythingSent_thenThrows() async throws {
        let channel = try BoundedChannel<Int>(capacity: 4)
        try await channel.send(1)
        try await channel.send(2)
        channel.fail(TestError(id: 7))
        var iterator = channel.makeAsyncIterator()
        #expect(try await iterator.next() == 1)
        #expect(try await iterator.next() == 2)
        await #expect(throws: TestError(id: 7)) { try await iterator.next() }
    }

    @Test func send_afterFinish_throwsFinished() async throws {
        let channel = try BoundedChannel<Int>(capacity: 2)
        channel.finish()
        await #expect(throws: ChannelError(.finished)) { try await channel.send(1) }
    }

    @Test func finish_resumesParkedSenders_withFinished_andKeepsWhatWasSent() async throws {
        let channel = try BoundedChannel<Int>(capacity: 1)
        try await self.fill(channel)
        let parked = EventCounter()
        let sender = self.startParkedSender(channel, value: 1, parked: parked)
        await parked.wait(beyond: 0)
        channel.finish()
        await #expect(throws: ChannelError(.finished)) { try await sender.value }
        var received: [Int] = []
        for try await value in channel { received.append(value) }
        #expect(received == [0])
    }

    @Test func consumerCancelled_resumesParkedSenders_withConsumerGone() async throws {
        let channel = try BoundedChannel<Int>(capacity: 1)
        try await self.fill(channel)
        let parked = EventCounter()
        let sender = self.startParkedSender(channel, value: 1, parked: parked)
        await parked.wait(beyond: 0)

        let gate = Gate()
        let consumer = Task {
            var iterator = channel.makeAsyncIterator()
            await gate.wait()  // returns when the task is cancelled
            return try await iterator.next()
        }
        consumer.cancel()
        await #expect(throws: CancellationError.self) { try await consumer.value }
        await #expect(throws: ChannelError(.consumerGone)) { try await sender.value }
        await #expect(throws: ChannelError(.consumerGone)) { try await channel.send(2) }
    }

    @Test func consumerCancelled_whileWaitingOnEmptyChannel_throwsCancellation_andLaterSendsFail() async throws {
        let channel = try BoundedChannel<Int>(capacity: 2)
        let started = EventCounter()
        let consumer = Task {
            var iterator = channel.makeAsyncIterator()
            started.signal()
            return try await iterator.next()
        }
        await started.wait(beyond: 0)
        consumer.cancel()
        await #expect(throws: CancellationError.self) { try await consumer.value }
        await #expect(throws: ChannelError(.consumerGone)) { try await channel.send(1) }
    }

    @Test func consumerStopsIterating_resumesParkedSenders_withConsumerGone() async throws {
        let channel = try BoundedChannel<Int>(capacity: 1)
        try await self.fill(channel)
        let parked = EventCounter()
        let sender = self.startParkedSender(channel, value: 1, parked: parked)
        await parked.wait(beyond: 0)
        do {
            // The consumer makes its iterator and walks away without taking anything.
            let iterator = channel.makeAsyncIterator()
            _ = iterator
        }
        await #expect(throws: ChannelError(.consumerGone)) { try await sender.value }
        await #expect(throws: ChannelError(.consumerGone)) { try await channel.send(2) }
    }

    @Test func senderCancelledWhileParked_throwsCancellation_andItsElementIsNotDelivered() async throws {
        let channel = try BoundedChannel<Int>(capacity: 1)
        try await self.fill(channel)
        let parked = EventCounter()
        let sender = self.startParkedSender(channel, value: 1, parked: parked)
        await parked.wait(beyond: 0)
        sender.cancel()
        await #expect(throws: CancellationError.self) { try await sender.value }
        #expect(channel.storage.suspendedSenders == 0)
        channel.finish()
        var received: [Int] = []
        for try await value in channel { received.append(value) }
        #expect(received == [0])
    }

    @Test func senderCancelledBeforeSending_throwsCancellation_withoutSuspending() async throws {
        let channel = try BoundedChannel<Int>(capacity: 1)
        try await self.fill(channel)
        let sender = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await channel.send(1)
        }
        await #expect(throws: CancellationError.self) { try await sender.value }
        #expect(channel.storage.suspendedSenders == 0)
    }

    @Test func stateMachine_cancelBetweenFullCheckAndSuspension_resumesWithCancellation() async throws {
        // The race the storage cannot trigger on demand: `send()` saw a full channel, then the task was cancelled
        // before the sender parked, so the cancellation handler found no waiter to resume.
        var machine = BoundedChannelStateMachine<Int>(capacity: 1)
        guard case .yield = machine.send() else {
            Issue.record("expected room")
            return
        }
        guard case .suspend(let id) = machine.send() else {
            Issue.record("expected suspend")
            return
        }
        #expect(machine.sendCancelled(id: id) == nil)
        await #expect(throws: CancellationError.self) {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                switch machine.sendSuspended(id: id, element: 1, continuation: continuation, isCancelled: true) {
                case .resume(let error): continuation.resume(throwing: error)
                case .parked, .yieldAndResume: continuation.resume()
                }
            }
        }
        #expect(machine.suspendedSenders == 0)
    }

    @Test func secondIterator_throwsAlreadyIterated() async throws {
        let channel = try BoundedChannel<Int>(capacity: 1)
        var first = channel.makeAsyncIterator()
        var second = channel.makeAsyncIterator()
        await #expect(throws: ChannelError(.alreadyIterated)) { try await second.next() }
        try await channel.send(1)
        #expect(try await first.next() == 1)
    }

    @Test(arguments: [0, -1, Int.min])
    func init_rejectsCapacityBelowOne(capacity: Int) {
        #expect(throws: ConfigurationError.self) { try BoundedChannel<Int>(capacity: capacity) }
    }

    @Test func fanIn_fromEightProducers_losesAndDuplicatesNothing_andKeepsEachProducersOrder() async throws {
        let producers = 8
        let perProducer = isThreadSanitized ? 4_000 : 20_000
        let channel = try BoundedChannel<Int>(capacity: 16)
        let received = try await withThrowingTaskGroup(of: Void.self, returning: [Int].self) { group in
            for producer in 0..<producers {
                group.addTask {
                    for sequence in 0..<perProducer {
                        try await channel.send(producer * perProducer + sequence)
                    }
                }
            }
            var received: [Int] = []
            received.reserveCapacity(producers * perProducer)
            var iterator = channel.makeAsyncIterator()
            while received.count < producers * perProducer, let value = try await iterator.next() {
                received.append(value)
            }
            try await group.waitForAll()
            return received
        }
        #expect(received.count == producers * perProducer)
        #expect(Set(received).count == producers * perProducer)
        // One expectation for the whole order check: 160,000 of them cost more than the channel does.
        var last = [Int](repeating: -1, count: producers)
        var outOfOrder: [Int] = []
        for value in received {
            let producer = value / perProducer
            if value <= last[producer] { outOfOrder.append(value) }
            last[producer] = value
        }
        #expect(outOfOrder.isEmpty, "values received out of their producer's order: \(outOfOrder.prefix(10))")
    }
}

/// A consumer cancelled at the moment a producer hands it an element: the hand-off resumes the consumer while its
/// cancellation handler (the stream's `onTermination`) reaches for the channel. Holding the channel's lock across
/// that resume deadlocked the two; this runs the race many times, and a deadlock fails it by its time limit.
@Suite("BoundedChannel under cancellation races", .timeLimit(.minutes(1)))
struct ChannelCancellationRaceTests {
    @Test func cancellingAConsumer_whileAProducerHandsItElements_neverDeadlocks() async throws {
        for _ in 0..<(isThreadSanitized ? 300 : 2_000) {
            let channel = try BoundedChannel<Int>(capacity: 1)
            let consumer = Task {
                var iterator = channel.makeAsyncIterator()
                while (try? await iterator.next()) != nil {}
            }
            let producer = Task {
                for value in 0..<4 {
                    guard (try? await channel.send(value)) != nil else { return }
                }
                channel.finish()
            }
            consumer.cancel()
            await consumer.value
            await producer.value
        }
    }
}

/// The consumer's wait for an element that does not take it: what lets a stage race its input against a deadline.
@Suite("BoundedChannel.waitForElement", .timeLimit(.minutes(1)))
struct WaitForElementTests {
    @Test func waitForElement_returnsAtOnce_whenAnElementIsThere_andTakesNothing() async throws {
        let channel = try BoundedChannel<Int>(capacity: 2)
        try await channel.send(7)
        #expect(!channel.storage.isAwaitingElements)
        await channel.storage.waitForElement(onPark: { Issue.record("parked with an element buffered") })
        var iterator = channel.makeAsyncIterator()
        #expect(try await iterator.next() == 7)
    }

    @Test func waitForElement_parks_untilAnElementIsSent() async throws {
        let channel = try BoundedChannel<Int>(capacity: 2)
        var iterator = channel.makeAsyncIterator()
        #expect(channel.storage.isAwaitingElements)
        let parked = EventCounter()
        let waiter = Task { await channel.storage.waitForElement(onPark: { parked.signal() }) }
        await parked.wait(beyond: 0)
        try await channel.send(1)
        await waiter.value
        #expect(try await iterator.next() == 1)  // still there for the consumer
    }

    @Test(arguments: [false, true])
    func waitForElement_returns_whenTheChannelEnds(failed: Bool) async throws {
        let channel = try BoundedChannel<Int>(capacity: 2)
        var iterator = channel.makeAsyncIterator()
        let parked = EventCounter()
        let waiter = Task { await channel.storage.waitForElement(onPark: { parked.signal() }) }
        await parked.wait(beyond: 0)
        if failed {
            channel.fail(TestError(id: 1))
            await waiter.value
            await #expect(throws: TestError(id: 1)) { try await iterator.next() }
        } else {
            channel.finish()
            await waiter.value
            #expect(try await iterator.next() == nil)
        }
    }

    @Test func waitForElement_returns_whenTheWaitingTaskIsCancelled_andTheChannelStaysUsable() async throws {
        let channel = try BoundedChannel<Int>(capacity: 2)
        var iterator = channel.makeAsyncIterator()
        let parked = EventCounter()
        let waiter = Task { await channel.storage.waitForElement(onPark: { parked.signal() }) }
        await parked.wait(beyond: 0)
        waiter.cancel()
        await waiter.value
        try await channel.send(5)  // no waiter is left behind to resume twice
        #expect(try await iterator.next() == 5)
    }

    @Test func waitForElement_inACancelledTask_returnsWithoutParking() async throws {
        let channel = try BoundedChannel<Int>(capacity: 2)
        let waiter = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            await channel.storage.waitForElement(onPark: { Issue.record("parked in a cancelled task") })
        }
        await waiter.value
    }
}

/// The timer that wakes a stage's idle wait when what it holds back is due.
@Suite("FlushTimer", .timeLimit(.minutes(1)))
struct FlushTimerTests {
    @Test func wakeConsumer_endsAWait_andIsKeptForTheNextWait_whenNobodyWaits() async throws {
        let channel = try BoundedChannel<Int>(capacity: 2)
        let parked = EventCounter()
        let waiter = Task { await channel.storage.waitForElement(onPark: { parked.signal() }) }
        await parked.wait(beyond: 0)
        channel.storage.wakeConsumer()
        await waiter.value
        // Nobody waits now: the wake-up is kept, so a wait that starts later is not stranded.
        channel.storage.wakeConsumer()
        await channel.storage.waitForElement(onPark: { Issue.record("a pending wake-up was lost") })
        #expect(channel.storage.isAwaitingElements)
    }

    @Test func timer_wakesTheConsumer_whenTheDueTimePasses_onTheRunClock() async throws {
        let clock = ManualClock()
        let timer = FlushTimer()
        let woken = EventCounter()
        let task = Task { await timer.run(clock: RunClock(clock)) { woken.signal() } }
        timer.setDue(.milliseconds(200))
        await clock.sleepStarted.wait(beyond: 0)
        #expect(clock.requested == [.milliseconds(200)])
        clock.advance(by: .milliseconds(199))
        #expect(woken.value == 0)
        clock.advance(by: .milliseconds(1))
        await woken.wait(beyond: 0)
        task.cancel()
        await task.value
    }

    @Test func timer_whoseDueTimeMovedLater_sleepsAgain_andOneThatWasCleared_doesNotWake() async throws {
        let clock = ManualClock()
        let timer = FlushTimer()
        let woken = EventCounter()
        let task = Task { await timer.run(clock: RunClock(clock)) { woken.signal() } }
        timer.setDue(.milliseconds(100))
        await clock.sleepStarted.wait(beyond: 0)
        timer.setDue(.milliseconds(250))  // the records due at 100 went on; newer ones are held
        clock.advance(by: .milliseconds(100))
        await clock.sleepStarted.wait(beyond: 1)  // sleeps on, to 250
        #expect(woken.value == 0)
        #expect(clock.requested.last == .milliseconds(150))
        timer.setDue(nil)  // nothing held back any more
        clock.advance(by: .milliseconds(150))
        timer.setDue(.milliseconds(400))
        await clock.sleepStarted.wait(beyond: 2)
        #expect(woken.value == 0)
        clock.advance(by: .milliseconds(150))
        await woken.wait(beyond: 0)
        task.cancel()
        await task.value
    }
}
