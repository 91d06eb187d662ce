import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The tests' own helpers: a hung child process must not outlive its test.
@Suite("Test support", .timeLimit(.minutes(1)))
struct TestSupportTests {
    @Test func aCancelledWait_killsTheChild_andReturns() async throws {
        // A child that would never end by itself (it reads a pipe nobody writes to).
        let child = try SpawnedProcess(["/bin/cat"])
        let waiting = Task { await child.wait() }
        waiting.cancel()
        let status = await waiting.value
        #expect(status == 128 + SIGKILL)
        child.closeInput()
    }

    @Test func aWaitThatIsNotCancelled_returnsTheExitStatus() async throws {
        let child = try SpawnedProcess(["/bin/sh", "-c", "read line; exit 3"])
        child.write("go\n")
        #expect(await child.wait() == 3)
        child.closeInput()
    }

    @Test func aCancelledShellCommand_isKilled() async throws {
        let running = Task { try await Shell.run("exec cat < /dev/zero > /dev/null") }
        running.cancel()
        #expect(try await running.value == 128 + SIGKILL)
    }
}
