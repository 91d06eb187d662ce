import Pipelines
import Testing

@testable import Sluice
@testable import SluiceCluster

#if canImport(Glibc)
import Glibc
#endif

/// A worker in this process, on a real PostgreSQL: a unit is put in place while the next one runs, and what
/// happens to both units in hand when putting the first in place fails or the worker is cancelled meanwhile.
@Suite("Cluster: a worker's units in hand", .enabled(if: TestPostgres.isAvailable), .timeLimit(.minutes(1)))
struct ClusterWorkerTests {
    /// Runs `body` with a store on a fresh database, a job of `inputs` small text files (`grep` for `x`), and the
    /// job's output directory.
    static func withJob(
        _ name: String,
        inputs: Int,
        _ body: (ClusterStore, String) async throws -> Void
    ) async throws {
        let server = try await TestPostgres.shared.get()
        let url = try await server.makeDatabase(name)
        let directory = TemporaryDirectory()
        let output = directory.file("out")
        #expect(mkdir(output, 0o755) == 0)
        let paths = (0..<inputs).map { directory.file("in-\($0).txt") }
        for (index, path) in paths.enumerated() {
            try writeFile(path, Array("x \(index)\nskipped\nx again\n".utf8))
        }
        try await ClusterDatabase.with(url: url) { database in
            let store = ClusterStore(database: database)
            try await store.migrate()
            try await store.submit(
                ClusterStore.Job(
                    name: "logs",
                    pipeline: Grep.name,
                    arguments: ["--pattern", "x"],
                    outputDirectory: output,
                    inputs: paths
                )
            )
            try await body(store, output)
        }
    }

    static func worker(
        _ store: ClusterStore,
        before: @escaping @Sendable (ClusterStore.Claim) async throws -> Void
    ) -> ClusterWorker {
        var settings = ClusterWorker.Settings()
        settings.beforePuttingInPlace = before
        return ClusterWorker(store: store, settings: settings, pipelines: [Grep.self], id: "w1")
    }

    /// The files in `directory` whose names start with `.` (units' temporary outputs).
    static func temporaryFiles(in directory: String) throws -> [String] {
        guard let listing = opendir(directory) else { throw Shell.Failed(command: "opendir", status: errno) }
        defer { closedir(listing) }
        var names: [String] = []
        while let entry = readdir(listing) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasPrefix(".") && name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    @Test func aUnitIsPutInPlace_whileTheNextOneIsAlreadyClaimed() async throws {
        try await Self.withJob("overlap", inputs: 3) { store, output in
            let running = Locked<[Int: Int]>([:])
            let worker = Self.worker(store) { claim in
                // A worker that put each unit in place before claiming the next would see one unit running here.
                let status = try await store.status(of: "logs")
                running.withLock { $0[claim.position] = status.running }
            }
            let summary = try await worker.run(job: "logs", stop: ShutdownSignal())
            #expect(summary == ClusterWorker.Summary(done: 3))
            #expect(running.withLock { $0 } == [0: 2, 1: 2, 2: 1])
            let status = try await store.status(of: "logs")
            #expect(status.done == 3 && status.isSettled)
            for position in 0..<3 {
                let path = ClusterWorker.outputPath(directory: output, job: "logs", position: position)
                try writeFile(output + "/expected", Array("x \(position)\nx again\n".utf8))
                try await Shell.check("gzip -dc '\(path)' | cmp -s - '\(output)/expected'")
            }
            unlink(output + "/expected")
            #expect(try Self.temporaryFiles(in: output).isEmpty)
        }
    }

    @Test func whenPuttingAUnitInPlaceFails_bothUnitsInHandAreGivenBack_andTheWorkerEndsWithTheError() async throws {
        struct DiskGone: Error {}
        try await Self.withJob("failing", inputs: 3) { store, output in
            let worker = Self.worker(store) { claim in
                if claim.position == 0 { throw DiskGone() }
            }
            await #expect(throws: DiskGone.self) { try await worker.run(job: "logs", stop: ShutdownSignal()) }
            // Unit 0 (being put in place) and unit 1 (running meanwhile) are pending again, their attempts not
            // counted; unit 2 was never claimed. No temporary output is left behind.
            let status = try await store.status(of: "logs")
            #expect(status.pending == 3 && status.running == 0 && status.done == 0)
            let claim = try #require(
                try await store.claim(job: "logs", worker: "w2", lease: .seconds(30), maxAttempts: 3)
            )
            #expect(claim.position == 0 && claim.attempts == 0)
            #expect(try Self.temporaryFiles(in: output).isEmpty)
        }
    }

    @Test func cancelledWhilePuttingAUnitInPlace_givesBothUnitsInHandBack() async throws {
        try await Self.withJob("cancelled", inputs: 3) { store, output in
            let entered = EventCounter()
            let worker = Self.worker(store) { claim in
                guard claim.position == 0 else { return }
                entered.signal()
                await ShutdownSignal().wait()  // never requested: suspended until the worker is cancelled
            }
            let run = Task { try await worker.run(job: "logs", stop: ShutdownSignal()) }
            await entered.wait(beyond: 0)
            run.cancel()
            await #expect(throws: CancellationError.self) { try await run.value }
            let status = try await store.status(of: "logs")
            #expect(status.pending == 3 && status.running == 0 && status.done == 0)
            #expect(try Self.temporaryFiles(in: output).isEmpty)
        }
    }

    @Test func aGracefulStop_putsInPlaceTheUnitInHand_andClaimsNoMore() async throws {
        try await Self.withJob("stopped", inputs: 3) { store, output in
            let stop = ShutdownSignal()
            let worker = Self.worker(store) { claim in
                if claim.position == 0 { stop.requestShutdown() }
            }
            let summary = try await worker.run(job: "logs", stop: stop)
            // Unit 1 was claimed before the stop came (while unit 0 was put in place): it runs and is put in place
            // too; unit 2 is left for another worker.
            #expect(summary == ClusterWorker.Summary(done: 2))
            let status = try await store.status(of: "logs")
            #expect(status.done == 2 && status.pending == 1 && status.running == 0)
            #expect(try Self.temporaryFiles(in: output).isEmpty)
        }
    }
}
