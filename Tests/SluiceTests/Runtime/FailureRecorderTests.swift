import Testing

@testable import Sluice

@Suite("FailureRecorder")
struct FailureRecorderTests {
    @Test func consequenceRecordedFirst_doesNotHideTheCause() throws {
        let failures = FailureRecorder()
        failures.record(CancellationError(), stage: "downstream")
        failures.record(ChannelError(.consumerGone), stage: "upstream")
        failures.record(TestError(id: 2), stage: "cause")
        failures.record(TestError(id: 3), stage: "later")
        let error = try #require(failures.rootCause(callerCancelled: false) as? PipelineError)
        #expect(error.stage == "cause")
        #expect(error.underlying as? TestError == TestError(id: 2))
    }

    @Test func onlyConsequences_andTheCallerCancelled_isCancellation() {
        let failures = FailureRecorder()
        failures.record(CancellationError(), stage: "a")
        #expect(failures.rootCause(callerCancelled: true) is CancellationError)
    }

    @Test func onlyConsequences_withoutCallerCancellation_reportsTheFirst() throws {
        let failures = FailureRecorder()
        failures.record(CancellationError(), stage: "a")
        failures.record(CancellationError(), stage: "b")
        let error = try #require(failures.rootCause(callerCancelled: false) as? PipelineError)
        #expect(error.stage == "a")
    }

    @Test func noFailure_isSuccess_evenIfTheCallerIsCancelledAfterwards() {
        #expect(FailureRecorder().rootCause(callerCancelled: true) == nil)
    }

    @Test func afterClose_failuresAreIgnored() {
        let failures = FailureRecorder()
        failures.close()
        failures.record(TestError(id: 1), stage: "a")
        #expect(failures.rootCause(callerCancelled: false) == nil)
    }

    @Test func aNestedPipelineError_isKeptAsIs() throws {
        let failures = FailureRecorder()
        failures.record(PipelineError(stage: "inner", underlying: TestError(id: 4)), stage: "outer")
        let error = try #require(failures.rootCause(callerCancelled: false) as? PipelineError)
        #expect(error.stage == "inner")
    }
}
