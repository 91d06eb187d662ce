import Testing

@testable import Sluice

/// The breaker's state machine, on a clock the test moves.
@Suite("CircuitBreaker", .timeLimit(.minutes(1)))
struct CircuitBreakerTests {
    struct ServiceDown: Error {}

    /// Counts the calls that reached the "service".
    final class Service: Sendable {
        private let calls = Locked(0)
        var count: Int { self.calls.withLock { $0 } }

        func call(failing: Bool) throws -> Int {
            let number = self.calls.withLock { calls in
                calls += 1
                return calls
            }
            if failing { throw ServiceDown() }
            return number
        }
    }

    static let settings = CircuitBreaker.Settings(
        window: 4,
        minimumCalls: 4,
        failureRate: 0.5,
        openFor: .seconds(10),
        probes: 2
    )

    @Test func opensAtTheFailureRate_onlyOnceTheWindowHoldsTheMinimumCalls() async throws {
        let breaker = CircuitBreaker(name: "lookup", settings: Self.settings, clock: ManualClock())
        let service = Service()
        _ = try await breaker.run { try service.call(failing: false) }
        for _ in 0..<2 {
            await #expect(throws: ServiceDown.self) { try await breaker.run { try service.call(failing: true) } }
        }
        #expect(breaker.state == .closed)  // 2 failures of 3 calls: under the minimum of 4
        _ = try await breaker.run { try service.call(failing: false) }
        #expect(breaker.state == .open)  // 2 of 4: the rate is reached
        #expect(breaker.openings == 1)
    }

    @Test func aWindowSlides_oldFailuresAgeOut() async throws {
        let breaker = CircuitBreaker(name: "lookup", settings: Self.settings, clock: ManualClock())
        let service = Service()
        await #expect(throws: ServiceDown.self) { try await breaker.run { try service.call(failing: true) } }
        for _ in 0..<6 { _ = try await breaker.run { try service.call(failing: false) } }
        await #expect(throws: ServiceDown.self) { try await breaker.run { try service.call(failing: true) } }
        #expect(breaker.state == .closed)  // the first failure left the window: 1 of 4
    }

    @Test func whileOpen_callsFailFast_withoutReachingTheService() async throws {
        let breaker = CircuitBreaker(name: "lookup", settings: Self.settings, clock: ManualClock())
        let service = Service()
        for _ in 0..<4 {
            await #expect(throws: ServiceDown.self) { try await breaker.run { try service.call(failing: true) } }
        }
        #expect(breaker.state == .open)
        for _ in 0..<5 {
            let error = await #expect(throws: CircuitOpen.self) {
                try await breaker.run { try service.call(failing: false) }
            }
            #expect(error?.breaker == "lookup")
        }
        #expect(service.count == 4)
        #expect(breaker.rejectedCalls == 5)
    }

    @Test func halfOpen_letsTheProbesThrough_andClosesWhenTheyAllSucceed() async throws {
        let clock = ManualClock()
        let breaker = CircuitBreaker(name: "lookup", settings: Self.settings, clock: clock)
        let service = Service()
        for _ in 0..<4 {
            await #expect(throws: ServiceDown.self) { try await breaker.run { try service.call(failing: true) } }
        }
        clock.advance(by: .seconds(9))
        #expect(breaker.state == .open)
        clock.advance(by: .seconds(1))
        #expect(breaker.state == .halfOpen)
        // Two probes at once: a third call while they are out fails fast.
        let gate = Gate()
        let started = EventCounter()
        let probes = (0..<2).map { _ in
            Task {
                try await breaker.run {
                    started.signal()
                    await gate.wait()
                    return try service.call(failing: false)
                }
            }
        }
        await started.wait(beyond: 1)
        await #expect(throws: CircuitOpen.self) { try await breaker.run { try service.call(failing: false) } }
        gate.open()
        for probe in probes { _ = try await probe.value }
        #expect(breaker.state == .closed)
        _ = try await breaker.run { try service.call(failing: false) }
        #expect(service.count == 4 + 2 + 1)
    }

    @Test func halfOpen_aFailingProbeOpensItAgain_forAnotherPeriod() async throws {
        let clock = ManualClock()
        let breaker = CircuitBreaker(name: "lookup", settings: Self.settings, clock: clock)
        let service = Service()
        for _ in 0..<4 {
            await #expect(throws: ServiceDown.self) { try await breaker.run { try service.call(failing: true) } }
        }
        clock.advance(by: .seconds(10))
        await #expect(throws: ServiceDown.self) { try await breaker.run { try service.call(failing: true) } }
        #expect(breaker.state == .open)
        #expect(breaker.openings == 2)
        clock.advance(by: .seconds(5))
        await #expect(throws: CircuitOpen.self) { try await breaker.run { try service.call(failing: false) } }
    }

    @Test func aCancelledCall_isNotTheServicesFailure() async throws {
        let breaker = CircuitBreaker(name: "lookup", settings: Self.settings, clock: ManualClock())
        for _ in 0..<8 {
            await #expect(throws: CancellationError.self) {
                try await breaker.run { () async throws -> Int in throw CancellationError() }
            }
        }
        #expect(breaker.state == .closed)
    }

    /// In a stage: once the service is down and the breaker open, records go to the dead letters without calls.
    @Test func inAStage_anOpenBreakersRecords_goToThePolicy_withoutCallingTheService() async throws {
        let breaker = CircuitBreaker(name: "enricher", settings: Self.settings, clock: ManualClock())
        let service = Service()
        let rejects = DeadLetters.memory()
        let report = try await Pipeline.from(0..<20)
            .stage("enrich", onError: .deadLetter(rejects)) { (value: Int) async throws -> Int in
                try await breaker.run { try service.call(failing: value < 100) }  // the service is down
            }
            .drain()
            .run()
        #expect(report.result == 0)
        #expect(rejects.count == 20)
        #expect(service.count == 4)  // the calls that opened it; the other 16 failed fast
        #expect(rejects.letters.filter { $0.error.contains("circuit breaker 'enricher' is open") }.count == 16)
    }
}
