import Testing

@testable import Sluice

/// Every operator's error names the failing record's position in its stage; over lines read from a file, the file
/// and the line too — in the error's fields and in its description.
@Suite("Errors say where", .timeLimit(.minutes(1)))
struct ErrorLocationTests {
    enum Operator: String, CaseIterable, Sendable {
        case map, filter, compactMap, flatMap, forEach, asyncForEach, reduce, asyncStage, parallelMap
        case parallelReduce, retriedMap

        /// A run over `input` whose stage named "failing" throws `TestError(id: 7)` at the record `fails`.
        func run<Record: Sendable>(
            _ input: Pipeline<Record>,
            failingWhen fails: @escaping @Sendable (Record) -> Bool
        ) async throws {
            let options = RunOptions(batch: BatchLimits(maxRecords: 3), computeThreads: 2)
            @Sendable func check(_ record: Record) throws {
                if fails(record) { throw TestError(id: 7) }
            }
            switch self {
            case .map:
                try await input.map(name: "failing") { try check($0) }.drain().run(options)
            case .filter:
                try await input.filter(name: "failing") { try check($0) == () }.drain().run(options)
            case .compactMap:
                try await input.compactMap(name: "failing") { try check($0) }.drain().run(options)
            case .flatMap:
                try await input.flatMap(name: "failing") { record -> [Int] in
                    try check(record)
                    return [1, 2]
                }
                .drain().run(options)
            case .forEach:
                try await input.forEach(name: "failing") { try check($0) }.run(options)
            case .asyncForEach:
                try await input.forEach(name: "failing") { record async throws in try check(record) }.run(options)
            case .reduce:
                try await input.reduce(into: 0, name: "failing") { _, record in try check(record) }.run(options)
            case .asyncStage:
                try await input.stage("failing") { record async throws in try check(record) }.drain().run(options)
            case .parallelMap:
                try await input.parallelMap(name: "failing", concurrency: 2) { try check($0) }.drain().run(options)
            case .parallelReduce:
                try await input.parallelReduce(into: 0, name: "failing", concurrency: 2) { _, record in
                    try check(record)
                } merge: { _, _ in
                }
                .run(options)
            case .retriedMap:
                let retry = ErrorPolicy.retry(.exponential(maxAttempts: 2, initialDelay: .milliseconds(1)))
                try await input.map(name: "failing", onError: retry) { try check($0) }.drain().run(options)
            }
        }
    }

    @Test(arguments: Operator.allCases)
    func everyOperator_namesTheFailingRecordsPosition(operator: Operator) async throws {
        let error = await #expect(throws: PipelineError.self) {
            try await `operator`.run(Pipeline.from(0..<20)) { $0 == 10 }
        }
        #expect(error?.stage == "failing")
        #expect(error?.recordIndex == 10)
        #expect(error?.underlying(as: TestError.self) == TestError(id: 7))
        #expect(error?.description.hasPrefix("stage 'failing' failed at record 10: ") == true)
    }

    @Test(arguments: Operator.allCases)
    func overLinesOfAFile_theErrorNamesTheFileAndTheLine(operator: Operator) async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("events.log")
        try writeFile(path, Array((1...20).map { "event \($0)\n" }.joined().utf8))
        let error = await #expect(throws: PipelineError.self) {
            try await `operator`.run(Pipeline.lines(from: [path])) { $0.string == "event 14" }
        }
        #expect(error?.recordIndex == 13, "\(String(describing: error))")
        #expect(error?.source == path)
        #expect(error?.line == 14)
        #expect(error?.description.contains("at record 13 (\(path), line 14): ") == true)
    }

    /// A record type of one's own reports its origin through `LocatedRecord`.
    struct Event: LocatedRecord, Sendable {
        var sourcePath: String?
        var lineNumber: Int?
    }

    @Test func aRecordTypeOfOnesOwn_reportsItsOrigin() async throws {
        let events = (1...5).map { Event(sourcePath: "queue-\($0 % 2)", lineNumber: $0 * 100) }
        let error = await #expect(throws: PipelineError.self) {
            try await Pipeline.from(events)
                .map(name: "enrich") { event -> Event in
                    if event.lineNumber == 300 { throw TestError(id: 3) }
                    return event
                }
                .drain()
                .run()
        }
        #expect(error?.recordIndex == 2 && error?.source == "queue-1" && error?.line == 300)
    }

    /// The rule the README states: a run's failures are all `PipelineError`s, a file's included.
    @Test func aFilesError_isAPipelineError_withTheFileErrorUnderneath() async throws {
        let error = await #expect(throws: PipelineError.self) {
            try await Pipeline.lines(from: ["/nonexistent/input.log"]).drain().run()
        }
        let file = try #require(error?.underlying(as: FileError.self))
        #expect(file.code == .notFound && file.path == "/nonexistent/input.log")
        #expect(error?.underlying(as: TestError.self) == nil)
    }
}
