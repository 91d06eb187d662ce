import ArgumentParser
import Pipelines
import Sluice
import Testing

@testable import SluiceCommand

/// The command as a library: the pipelines it is given, checked before anything is parsed.
@Suite("SluiceCommand")
struct SluiceCommandTests {
    enum AnotherCat: ReadyPipeline {
        static let name = "cat"
        static let summary = "a second pipeline called cat"
        static let stages = "read -> write"
        static func run(_ invocation: Invocation, options: NoOptions) async throws -> RunReport<Void> {
            try await invocation.lines.write(to: invocation.output).run(invocation.runOptions)
        }
    }

    enum Help: ReadyPipeline {
        static let name = "help"
        static let summary = "a pipeline named like argument-parser's help"
        static let stages = "read -> write"
        static func run(_ invocation: Invocation, options: NoOptions) async throws -> RunReport<Void> {
            try await invocation.lines.write(to: invocation.output).run(invocation.runOptions)
        }
    }

    @Test func theReadyPipelines_haveNoProblem() {
        #expect(SluiceCommand.problem(with: PipelineRegistry.all) == nil)
    }

    @Test func twoPipelinesWithOneName_areRefused_namingBoth() throws {
        let problem = try #require(SluiceCommand.problem(with: PipelineRegistry.all + [AnotherCat.self]))
        #expect(problem.contains("Cat and AnotherCat are both named 'cat'"), "\(problem)")
    }

    @Test func aJobWithOptionsItsPipelineDoesNotTake_isAUsageError_namingThePipeline() throws {
        let (arguments, inputs) = try Job.Submit.split(["--pattern", "GET", "a.gz", "b.gz"], for: Grep.self)
        #expect(arguments == ["--pattern", "GET"])
        #expect(inputs == ["a.gz", "b.gz"])
        // A run's own options (--follow, --stats-json, -o) are the worker's business, not a job's.
        for option in ["-F", "--stats-json", "-o"] {
            do {
                _ = try Job.Submit.split([option, "x", "a.gz"], for: Cat.self)
                Issue.record("\(option) should be refused")
            } catch let error as ValidationError {
                #expect(error.message.hasPrefix("cat: Unknown option '\(option)'"), "\(error.message)")
                #expect(error.message.contains("sluice describe cat"), "\(error.message)")
            }
        }
    }

    @Test func aPipelineNamedLikeACommand_isRefused() throws {
        let problem = try #require(SluiceCommand.problem(with: [Help.self]))
        #expect(problem.contains("cannot be named 'help'"), "\(problem)")
    }
}
