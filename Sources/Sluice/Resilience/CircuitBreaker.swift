public import Logging

/// Stops calling a service that keeps failing, and tries it again later: closed → open → half-open → closed.
///
/// - **Closed**: calls go through; their outcomes fill a sliding window of the last ``Settings/window`` calls. Once
///   the window holds at least ``Settings/minimumCalls`` outcomes and the share of failures reaches
///   ``Settings/failureRate``, the breaker opens.
/// - **Open**: calls fail at once with ``CircuitOpen``, without calling the service, for ``Settings/openFor`` on the
///   breaker's clock (inject the run's to test it).
/// - **Half-open**: up to ``Settings/probes`` calls go through at once as probes (others fail fast); when that many
///   probes succeeded the breaker closes (with an empty window), and one failing probe opens it again.
///
/// Use it in any async stage; the stage's error policy handles ``CircuitOpen`` like any failure — dead letter,
/// skip, retry with backoff, stop — so the service is not called while it is down:
///
/// ```swift
/// let breaker = CircuitBreaker(name: "enricher", clock: ContinuousClock())
/// pipeline.stage("enrich", timeout: .seconds(2), onError: .deadLetter(rejects)) { record in
///     try await breaker.run { try await enricher.lookup(record) }
/// }
/// ```
///
/// State changes are logged (a warning when it opens) and counted (``openings``, ``rejectedCalls``).
public final class CircuitBreaker: Sendable {
    /// When the breaker opens and how it tries the service again.
    public struct Settings: Sendable, Hashable {
        /// How many of the latest calls' outcomes the failure rate is taken over.
        public var window: Int
        /// The fewest outcomes in the window before the breaker may open.
        public var minimumCalls: Int
        /// The share of failures in the window, 0 to 1, at which the breaker opens.
        public var failureRate: Double
        /// How long it stays open before letting probes through.
        public var openFor: Duration
        /// How many probe calls go through while half-open, and must succeed to close it.
        public var probes: Int

        public init(
            window: Int = 20,
            minimumCalls: Int = 10,
            failureRate: Double = 0.5,
            openFor: Duration = .seconds(30),
            probes: Int = 1
        ) {
            self.window = window
            self.minimumCalls = minimumCalls
            self.failureRate = failureRate
            self.openFor = openFor
            self.probes = probes
        }
    }

    /// Where the breaker is.
    public enum State: Sendable, Hashable, CustomStringConvertible {
        case closed
        case open
        case halfOpen

        public var description: String {
            switch self {
            case .closed: "closed"
            case .open: "open"
            case .halfOpen: "half-open"
            }
        }
    }

    private struct Machine {
        var state = State.closed
        /// The latest outcomes (`true`: a failure), oldest first, at most `window` of them.
        var outcomes: [Bool] = []
        var failures = 0
        /// When an open breaker lets probes through, on the clock.
        var openUntil: Duration = .zero
        var probesInFlight = 0
        var probesSucceeded = 0
        var openings = 0
        var rejected = 0
    }

    /// The breaker's name, in logs and in ``CircuitOpen``.
    public let name: String
    public let settings: Settings
    private let machine = Locked(Machine())
    private let elapsed: @Sendable () -> Duration
    private let logger: Logger

    /// - Parameters:
    ///   - name: Names the breaker in logs and errors.
    ///   - settings: When it opens and how it tries again.
    ///   - clock: Measures how long it stays open: a run's clock in tests (``RunOptions/clock``).
    ///   - logger: Receives its state changes.
    /// - Precondition: `window ≥ minimumCalls ≥ 1`, `0 < failureRate ≤ 1`, `probes ≥ 1`, `openFor > 0`.
    public init<C: Clock>(
        name: String,
        settings: Settings = Settings(),
        clock: C,
        logger: Logger = Logger(label: "sluice.circuit-breaker", factory: { _ in SwiftLogNoOpLogHandler() })
    ) where C.Duration == Duration {
        precondition(settings.minimumCalls >= 1 && settings.window >= settings.minimumCalls, "bad window")
        precondition(settings.failureRate > 0 && settings.failureRate <= 1, "failureRate must be in (0, 1]")
        precondition(settings.probes >= 1 && settings.openFor > .zero, "bad probes or openFor")
        self.name = name
        self.settings = settings
        let origin = clock.now
        self.elapsed = { origin.duration(to: clock.now) }
        self.logger = logger
    }

    /// Where the breaker is now (an open breaker whose time is up shows as half-open).
    public var state: State {
        let now = self.elapsed()
        return self.machine.withLock { machine in
            machine.state == .open && now >= machine.openUntil ? .halfOpen : machine.state
        }
    }

    /// How many times it opened.
    public var openings: Int { self.machine.withLock { $0.openings } }

    /// How many calls it failed fast with ``CircuitOpen``.
    public var rejectedCalls: Int { self.machine.withLock { $0.rejected } }

    /// Calls `operation` unless the breaker is open, and records how it went.
    ///
    /// - Parameters:
    ///   - isFailure: Whether an error `operation` throws is the service's failure; one that is not (a request the
    ///     service refused as invalid: it answered) counts as a success. Default: every error is a failure.
    ///   - operation: The call.
    /// - Throws: ``CircuitOpen`` without calling `operation` while open (or half-open with its probes taken);
    ///   otherwise what `operation` throws. A `CancellationError` is not counted as the service's failure.
    public func run<Value: Sendable>(
        countingAsFailure isFailure: (any Error) -> Bool = { _ in true },
        _ operation: () async throws -> Value
    ) async throws -> Value {
        let probe = try self.admit()
        do {
            let value = try await operation()
            self.record(failure: false, probe: probe)
            return value
        } catch is CancellationError {
            self.abandon(probe: probe)
            throw CancellationError()
        } catch {
            self.record(failure: isFailure(error), probe: probe)
            throw error
        }
    }

    /// Lets a call through, or refuses it; returns whether it is a half-open probe.
    private func admit() throws(CircuitOpen) -> Bool {
        let now = self.elapsed()
        let (admitted, probe, change) = self.machine.withLock { machine -> (Bool, Bool, State?) in
            var change: State?
            if machine.state == .open && now >= machine.openUntil {
                machine.state = .halfOpen
                machine.probesInFlight = 0
                machine.probesSucceeded = 0
                change = .halfOpen
            }
            switch machine.state {
            case .closed:
                return (true, false, change)
            case .open:
                machine.rejected += 1
                return (false, false, change)
            case .halfOpen:
                guard machine.probesInFlight + machine.probesSucceeded < self.settings.probes else {
                    machine.rejected += 1
                    return (false, false, change)
                }
                machine.probesInFlight += 1
                return (true, true, change)
            }
        }
        if let change { self.log(change) }
        guard admitted else { throw CircuitOpen(breaker: self.name) }
        return probe
    }

    private func record(failure: Bool, probe: Bool) {
        let now = self.elapsed()
        let change = self.machine.withLock { machine -> State? in
            if probe {
                machine.probesInFlight -= 1
                guard machine.state == .halfOpen else { return nil }
                if failure {
                    return self.open(&machine, now: now)
                }
                machine.probesSucceeded += 1
                guard machine.probesSucceeded >= self.settings.probes else { return nil }
                machine.state = .closed
                machine.outcomes = []
                machine.failures = 0
                machine.probesInFlight = 0
                machine.probesSucceeded = 0
                return .closed
            }
            guard machine.state == .closed else { return nil }  // a call admitted before it opened
            machine.outcomes.append(failure)
            if failure { machine.failures += 1 }
            if machine.outcomes.count > self.settings.window, machine.outcomes.removeFirst() {
                machine.failures -= 1
            }
            let calls = machine.outcomes.count
            guard calls >= self.settings.minimumCalls,
                Double(machine.failures) >= self.settings.failureRate * Double(calls)
            else { return nil }
            return self.open(&machine, now: now)
        }
        if let change { self.log(change) }
    }

    /// A call cancelled before it ended says nothing about the service; a probe's place is freed.
    private func abandon(probe: Bool) {
        guard probe else { return }
        self.machine.withLock { $0.probesInFlight -= 1 }
    }

    private func open(_ machine: inout Machine, now: Duration) -> State {
        machine.state = .open
        machine.openUntil = now + self.settings.openFor
        machine.outcomes = []
        machine.failures = 0
        machine.probesInFlight = 0
        machine.probesSucceeded = 0
        machine.openings += 1
        return .open
    }

    private func log(_ state: State) {
        let metadata: Logger.Metadata = ["breaker": "\(self.name)", "state": "\(state)"]
        if state == .open {
            self.logger.warning("circuit breaker opened: calls fail fast", metadata: metadata)
        } else {
            self.logger.notice("circuit breaker \(state)", metadata: metadata)
        }
    }
}

/// A call refused by an open ``CircuitBreaker``: the service was not called.
public struct CircuitOpen: Error, Sendable, Hashable, CustomStringConvertible {
    /// The breaker's name.
    public var breaker: String

    public var description: String {
        "circuit breaker '\(self.breaker)' is open: the call was not made"
    }
}
