public import ArgumentParser

/// A duration on the command line: a number with a unit, `ms` or `s` (`200ms`, `1.5s`, `2s`).
public struct DurationArgument: ExpressibleByArgument, Sendable, CustomStringConvertible {
    public let duration: Duration

    public init(_ duration: Duration) {
        self.duration = duration
    }

    public init?(argument: String) {
        let units: [(suffix: String, milliseconds: Double)] = [("ms", 1), ("s", 1000)]
        for unit in units where argument.hasSuffix(unit.suffix) {
            guard let value = Double(argument.dropLast(unit.suffix.count)), value.isFinite, value > 0 else {
                return nil
            }
            let microseconds = (value * unit.milliseconds * 1000).rounded()
            guard microseconds >= 1, microseconds < 1e15 else { return nil }
            self.duration = .microseconds(Int64(microseconds))
            return
        }
        return nil
    }

    public var description: String {
        let (seconds, attoseconds) = self.duration.components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : "\(milliseconds)ms"
    }

    public var defaultValueDescription: String { self.description }
}
