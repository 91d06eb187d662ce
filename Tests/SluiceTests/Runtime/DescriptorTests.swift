import Testing

@testable import Sluice

#if canImport(Glibc)
import Glibc
#endif

/// Every descriptor the engine opens is close-on-exec, from the start (`O_CLOEXEC`, `pipe2`, `inotify_init1`): a
/// program that runs a pipeline and starts a child process meanwhile must not hand the child its files and wake
/// pipes — a child holding a copy of an output pipe's write end keeps the reader downstream from seeing its end.
@Suite struct DescriptorTests {
    static func isCloseOnExec(_ descriptor: Int32) -> Bool {
        let flags = fcntl(descriptor, F_GETFD)
        return flags >= 0 && flags & FD_CLOEXEC != 0
    }

    @Test func filesOpenedForReadingWritingAndAppending_areCloseOnExec() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("file.txt")
        let written = try #require(try FileDescriptor.openForWriting(path))
        #expect(Self.isCloseOnExec(written.rawValue))
        try written.close()
        let read = try FileDescriptor.openForReading(path)
        #expect(Self.isCloseOnExec(read.rawValue))
        try read.close()
        let appended = try FileDescriptor.openForAppending(path, truncating: false)
        #expect(Self.isCloseOnExec(appended.rawValue))
        try appended.close()
    }

    @Test func wakePipes_andTheFollowersWatch_areCloseOnExec() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("followed.txt")
        try writeFile(path, Array("line\n".utf8))

        let shutdown = ShutdownSignal()
        #expect(Self.isCloseOnExec(shutdown.wakeDescriptor))

        let waiter = try InputWaiter(shutdown: shutdown, path: path)
        defer { waiter.close() }
        #expect(Self.isCloseOnExec(waiter.cancellation.read) && Self.isCloseOnExec(waiter.cancellation.write))

        let budget = ByteBudget(limit: 1024)
        #expect(budget.wake.read >= 0)
        #expect(Self.isCloseOnExec(budget.wake.read) && Self.isCloseOnExec(budget.wake.write))

        let follower = try FileFollower(path: path)
        defer { follower.close() }
        #expect(Self.isCloseOnExec(follower.descriptor))
    }
}
