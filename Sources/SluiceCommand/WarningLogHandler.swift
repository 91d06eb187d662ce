import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Prints a run's warnings on standard error, as `sluice: warning: …` — e.g. a followed file that was truncated.
///
/// Errors are not printed here: the command reports the error that ends a run itself, once, with its exit status.
struct WarningLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .warning

    /// The logger a run of the CLI uses: its warnings on standard error, or nothing with `--quiet`.
    static func logger(quiet: Bool) -> Logger {
        if quiet {
            return Logger(label: "sluice", factory: { _ in SwiftLogNoOpLogHandler() })
        }
        return Logger(label: "sluice", factory: { _ in WarningLogHandler() })
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        guard event.level == .warning else { return }
        var details = self.metadata.merging(event.metadata ?? [:]) { _, new in new }
        details["pipeline"] = nil
        let context = details.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        CommonRunOptions.writeStandardError(
            "sluice: warning: \(event.message)\(context.isEmpty ? "" : " (\(context))")\n"
        )
    }
}
