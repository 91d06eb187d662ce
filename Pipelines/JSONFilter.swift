public import ArgumentParser
import Foundation
public import Sluice

/// `json-filter`: the NDJSON lines whose top-level field F is a JSON string equal to V, written unchanged.
///
/// A line that is not a JSON object is malformed and goes through `--on-error`: stop (the run fails naming the file
/// and line), skip (counted), or dead-letter. Parsing runs in parallel on the compute pool.
public enum JSONFilter: ReadyPipeline {
    public static let name = "json-filter"
    public static let summary = "NDJSON lines whose top-level --field F is the JSON string --equals V, unchanged"
    public static let stages = "read -> lines -> parse (parallel on the compute pool, --on-error) -> write"
    public static let resultMerge = ResultMerge.concatenate

    public struct Options: ParsableArguments, Sendable {
        @Option(help: "The top-level field to look at.")
        public var field: String

        @Option(help: "The string the field must equal.")
        public var equals: String

        public init() {}
    }

    public static func run(_ invocation: Invocation, options: Options) async throws -> RunReport<Void> {
        let field = options.field
        let expected = options.equals
        return try await invocation.lines
            .parallelMap(name: "parse", onError: invocation.errorPolicy) { line -> Line? in
                try Self.matches(line, field: field, equals: expected) ? line : nil
            }
            .compactMap(name: "keep") { $0 }
            .write(to: invocation.output, options: invocation.writeOptions)
            .run(invocation.runOptions)
    }

    static func matches(_ line: Line, field: String, equals expected: String) throws -> Bool {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(line.bytes), options: [.fragmentsAllowed])
        } catch {
            throw MalformedRecord(line, reason: "not valid JSON")
        }
        guard let dictionary = object as? [String: Any] else {
            throw MalformedRecord(line, reason: "not a JSON object")
        }
        return (dictionary[field] as? String) == expected
    }
}
