import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `sluice job` end to end with the built binary and a PostgreSQL server of the test's own (it restarts it).
///
/// Two inputs are named pipes the test holds: a worker that opens one is mid-unit until the test writes to it, so
/// the test knows which worker to kill, and when, without timing.
@Suite("Cluster: workers end to end", .enabled(if: TestPostgres.isAvailable), .timeLimit(.minutes(3)))
struct ClusterEndToEndTests {
    static let text = (0..<200).map { "line \($0) of the events" }.joined(separator: "\n") + "\n"

    /// The pid in a worker id (`HOST:PID:RANDOM`).
    static func pid(ofWorker id: String) throws -> pid_t {
        let parts = id.split(separator: ":")
        return try #require(parts.count == 3 ? pid_t(parts[1]) : nil, "worker id \(id)")
    }

    /// Opens `fifo` for writing: returns once a reader (a worker, mid-unit) opened it.
    static func openForWriting(_ fifo: String) async throws -> Int32 {
        try await BlockingThreads.run { open(fifo, O_WRONLY) }
    }

    @Test func threeWorkers_aKill_aTerm_andARestart_doEveryUnitOnce_andMergeLikeOneRun() async throws {
        let server = try await TestPostgres.start()
        let directory = TemporaryDirectory()
        let input = directory.path + "/in"
        try await Shell.check("mkdir '\(input)'")
        var inputs: [String] = []
        for index in 0..<120 {
            let path = "\(input)/\(index).txt"
            try writeFile(path, Array("\(index): ".utf8) + Array(Self.text.utf8))
            try await Shell.check("gzip '\(path)'")
            inputs.append(path + ".gz")
        }
        let killed = "\(input)/held-kill.fifo"
        let terminated = "\(input)/held-term.fifo"
        #expect(mkfifo(killed, 0o644) == 0 && mkfifo(terminated, 0o644) == 0)
        inputs.insert(killed, at: 10)
        inputs.insert(terminated, at: 20)
        let list = directory.file("inputs.txt")
        try writeFile(list, Array(inputs.joined(separator: "\n").utf8) + [0x0A])
        let out = directory.path + "/out"
        #expect(
            try await runSluice(
                "job submit --db '\(server.url)' --job e2e --output-dir '\(out)' --files-from '\(list)' "
                    + "grep --pattern e 2> /dev/null"
            ) == 0
        )
        let workers = try (0..<3).map { index in
            try SpawnedProcess([
                "/bin/sh", "-c",
                "exec '\(sluice)' job work --db '\(server.url)' --job e2e --lease 2s 2> '\(directory.path)/worker-\(index).err'",
            ])
        }

        // However the test ends, no worker outlives it (one left reading a held pipe would wait forever). A worker
        // not yet waited for is not reaped, so its pid cannot have been reused.
        var reaped: Set<pid_t> = []
        defer {
            for worker in workers where !reaped.contains(worker.pid) { kill(worker.pid, SIGKILL) }
        }

        // A worker opened the second pipe: it is mid-unit. SIGTERM it, then let its unit finish, and wait until it
        // has exited — its units in hand done — before the restart: a unit whose commit the restart cuts off loses
        // its lease (2 s) to another worker, which would then wait on the pipe forever.
        var fifo = try await Self.openForWriting(terminated)
        let finisher = try await server.sql(
            "SELECT worker FROM sluice.units WHERE job = 'e2e' AND position = 20",
            database: "postgres"
        )
        let terminatedPid = try Self.pid(ofWorker: finisher.firstLine)
        kill(terminatedPid, SIGTERM)
        _ = Array("held term\n".utf8).withUnsafeBytes { write(fifo, $0.baseAddress, $0.count) }
        close(fifo)
        var statuses: [pid_t: Int32] = [:]
        let terminatedWorker = try #require(workers.first { $0.pid == terminatedPid })
        statuses[terminatedPid] = await terminatedWorker.wait()
        reaped.insert(terminatedPid)
        terminatedWorker.closeInput()
        let unit20 = try await server.sql(
            "SELECT state FROM sluice.units WHERE job = 'e2e' AND position = 20",
            database: "postgres"
        )
        #expect(unit20.firstLine == "done")

        // A worker opened the first pipe: it is mid-unit. Kill it.
        fifo = try await Self.openForWriting(killed)
        let holder = try await server.sql(
            "SELECT worker FROM sluice.units WHERE job = 'e2e' AND position = 10",
            database: "postgres"
        )
        let victim = try Self.pid(ofWorker: holder.firstLine)
        kill(victim, SIGKILL)
        close(fifo)

        // The database goes away and comes back while the third works. The restart begins at once, before the killed
        // worker's lease can expire (2 s): its unit is claimed again by a worker talking to the restarted server.
        try await server.restart()

        // The killed worker's unit: claimed again once its lease expired; feed that reader too.
        fifo = try await Self.openForWriting(killed)
        _ = Array("held kill, the event\n".utf8).withUnsafeBytes { write(fifo, $0.baseAddress, $0.count) }
        close(fifo)

        for worker in workers where !reaped.contains(worker.pid) {
            statuses[worker.pid] = await worker.wait()
            reaped.insert(worker.pid)
            worker.closeInput()
        }
        #expect(statuses[victim] == 128 + SIGKILL)
        #expect(statuses[terminatedPid] == 143)  // it finished its unit, then stopped
        #expect(statuses.values.filter { $0 == 0 }.count == 1)  // the third drained the job

        // Every unit done once; every final output complete.
        let states = try await server.sql(
            "SELECT state, count(*) FROM sluice.units WHERE job = 'e2e' GROUP BY state",
            database: "postgres"
        )
        #expect(states.firstLine == "done|122")
        try await Shell.check("test $(ls '\(out)'/e2e-*.gz | wc -l) -eq 122 && gzip -t '\(out)'/e2e-*.gz")

        // merge = one run over the same inputs (the pipes' lines as files).
        try writeFile(killed + ".txt", Array("held kill, the event\n".utf8))
        try writeFile(terminated + ".txt", Array("held term\n".utf8))
        let same = inputs.map { $0.hasSuffix(".fifo") ? $0 + ".txt" : $0 }
        try writeFile(list, Array(same.joined(separator: "\n").utf8) + [0x0A])
        #expect(
            try await runSluice("job merge --db '\(server.url)' --job e2e -o '\(directory.path)/merged.txt'") == 0
        )
        #expect(try await runSluice("run grep --pattern e --files-from '\(list)' -o '\(directory.path)/one.txt'") == 0)
        try await Shell.check("cmp '\(directory.path)/merged.txt' '\(directory.path)/one.txt'")
        // To a .gz: the units' members byte for byte, one valid gzip file of the same lines.
        #expect(
            try await runSluice("job merge --db '\(server.url)' --job e2e -o '\(directory.path)/merged.gz'") == 0
        )
        try await Shell.check(
            "gzip -t '\(directory.path)/merged.gz' && zcat '\(directory.path)/merged.gz' | cmp - '\(directory.path)/one.txt' "
                + "&& test $(stat -c %s '\(directory.path)/merged.gz') -eq $(cat '\(out)'/e2e-*.gz | wc -c) "
                + "&& ! ls '\(directory.path)'/merged.gz.*.partial 2> /dev/null"
        )
        let status = directory.file("status.json")
        #expect(try await runSluice("job status --db '\(server.url)' --job e2e --json > '\(status)'") == 0)
        try await Shell.check(
            "python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert s[\"done\"]==122 and s[\"failed\"]==0, s' "
                + "'\(status)'"
        )
    }

    @Test func submittingAnInputThatCannotBeRead_warnsButSubmits() async throws {
        let server = try await TestPostgres.shared.get()
        let database = try await server.makeDatabase("unreadable")
        let directory = TemporaryDirectory()
        try writeFile(directory.file("here.txt"), Array("x\n".utf8))
        let errors = directory.file("submit.err")
        #expect(
            try await runSluice(
                "job submit --db '\(database)' --job j --output-dir '\(directory.path)/out' wc "
                    + "'\(directory.file("here.txt"))' '\(directory.file("missing.txt"))' 2> '\(errors)'"
            ) == 0
        )
        let text = String(decoding: try readFile(errors), as: UTF8.self)
        #expect(
            text.contains("warning: 1 of 2 inputs cannot be read here (\(directory.file("missing.txt")))"),
            "\(text)"
        )
        #expect(text.contains("2 units submitted"), "\(text)")
    }

    @Test func aCorruptInput_failsAfterItsAttempts_whileTheOthersComplete() async throws {
        let server = try await TestPostgres.shared.get()
        let database = try await server.makeDatabase("corrupt")
        let directory = TemporaryDirectory()
        for index in 0..<5 {
            try writeFile(directory.file("\(index).txt"), Array(Self.text.utf8))
            try await Shell.check("gzip '\(directory.file("\(index).txt"))'")
        }
        try await Shell.check("head -c 200 '\(directory.file("0.txt.gz"))' > '\(directory.file("bad.gz"))'")
        let inputs = ["0.txt.gz", "bad.gz", "1.txt.gz", "2.txt.gz"].map { "'\(directory.file($0))'" }.joined(
            separator: " "
        )
        #expect(
            try await runSluice(
                "job submit --db '\(database)' --job bad --output-dir '\(directory.path)/out' wc \(inputs) 2> /dev/null"
            ) == 0
        )
        #expect(try await runSluice("job work --db '\(database)' --max-attempts 2 --quiet") == 0)
        let status = directory.file("status.txt")
        #expect(try await runSluice("job status --db '\(database)' --job bad > '\(status)'") == 0)
        try await Shell.check("grep -q '3/4 done, 0 running, 0 pending, 1 failed' '\(status)'")
        try await Shell.check(
            "grep -q 'failed: unit 1 (.*bad.gz) after 2 attempts: .*truncatedGzip at byte 200' '\(status)'"
        )
        let errors = directory.file("merge.err")
        #expect(try await runSluice("job merge --db '\(database)' --job bad 2> '\(errors)'") == 1)
        try await Shell.check("grep -q '1 failed' '\(errors)'")
        // The same submission again: nothing changes; another pipeline under the name: refused.
        #expect(
            try await runSluice(
                "job submit --db '\(database)' --job bad --output-dir '\(directory.path)/out' wc \(inputs) 2> /dev/null"
            ) == 0
        )
        #expect(
            try await runSluice(
                "job submit --db '\(database)' --job bad --output-dir '\(directory.path)/out' cat \(inputs) 2> /dev/null"
            ) == 1
        )
    }
}

extension String {
    /// The text up to its first newline.
    fileprivate var firstLine: String { self.split(separator: "\n").first.map(String.init) ?? "" }
}
