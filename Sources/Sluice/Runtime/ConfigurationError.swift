/// A setting that cannot work, found before anything runs.
///
/// Thrown by ``BoundedChannel/init(capacity:)`` and by ``RunnablePipeline/run(_:)`` when a
/// ``RunOptions`` value is out of range — a capacity of zero would otherwise hang the first send.
public struct ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The name of the setting, e.g. `"channelCapacity"`.
    public let setting: String
    /// The value that was given.
    public let value: Int
    /// What the value must be.
    public let requirement: String
    /// The offending value as text (for settings that are not numbers, such as a codec).
    public let valueText: String

    init(setting: String, value: Int, requirement: String) {
        self.setting = setting
        self.value = value
        self.requirement = requirement
        self.valueText = String(value)
    }

    init(setting: String, text: String, requirement: String) {
        self.setting = setting
        self.value = 0
        self.requirement = requirement
        self.valueText = text
    }

    /// Checks that `value` is at least one.
    static func requirePositive(_ value: Int, _ setting: String) throws(ConfigurationError) {
        guard value > 0 else {
            throw ConfigurationError(setting: setting, value: value, requirement: "must be at least 1")
        }
    }

    public var description: String {
        "invalid configuration: \(self.setting) = \(self.valueText) \(self.requirement)"
    }
}
