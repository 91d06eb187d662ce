public import Pipelines
public import Sluice

#if canImport(Glibc)
import Glibc
#endif

/// Combines a finished job's unit outputs, in input order, into what one run over all the inputs gives — as the
/// job's pipeline declares (``ReadyPipeline/resultMerge``).
public enum ClusterMerge {
    /// Writes the merged result of `job` to `output` (`-` for standard output; a `.gz` name means gzip).
    ///
    /// - Throws: ``ClusterError/notFinished(job:pending:running:failed:)`` unless every unit is done;
    ///   ``ClusterError/cannotMerge(_:)`` for a pipeline whose results do not combine.
    public static func merge(
        job name: String,
        store: ClusterStore,
        pipelines: [any ReadyPipeline.Type],
        output: String,
        runOptions: RunOptions = RunOptions()
    ) async throws {
        guard let job = try await store.job(named: name) else { throw ClusterError.unknownJob(name) }
        guard let pipeline = pipelines.first(where: { $0.name == job.pipeline }) else {
            throw ClusterError.unknownPipeline(job.pipeline)
        }
        let units = try await store.units(of: name)
        let states = Dictionary(grouping: units, by: \.state).mapValues(\.count)
        guard states["done", default: 0] == units.count else {
            throw ClusterError.notFinished(
                job: name,
                pending: states["pending", default: 0],
                running: states["running", default: 0],
                failed: states["failed", default: 0]
            )
        }
        let files = units.compactMap(\.output)
        switch pipeline.resultMerge {
        case .concatenate where output.hasSuffix(".gz"):
            // Gzip members concatenate: the units' files, byte for byte, make one valid gzip file. The copy blocks
            // in read and write: it runs on a thread of its own, not on the cooperative pool.
            let thread = try ComputePool(threads: 1, name: "sluice-merge")
            do {
                try await thread.run { try concatenate(files, into: output) }
            } catch {
                await thread.shutdown()
                throw error
            }
            await thread.shutdown()
        case .concatenate:
            // The units' lines in input order (each unit's output is gzip; the reader takes its members whole).
            try await Pipeline.lines(from: files).write(to: output).run(runOptions)
        case .combineLines:
            try await pipeline.combine(
                Invocation(inputs: files, output: output, runOptions: runOptions),
                arguments: job.arguments
            )
        case .nothing:
            break
        case .unsupported(let reason):
            throw ClusterError.cannotMerge(reason)
        }
    }

    /// Copies `files` one after the other into `output` through a temporary file beside it, fsynced and then
    /// renamed: `output` is either the whole result or untouched. Each file must be a gzip file (the worker wrote
    /// and fsynced it before putting it in place); one that is missing, or does not start as gzip, is an error
    /// naming it.
    static func concatenate(_ files: [String], into output: String) throws {
        let temporary = "\(output).\(getpid()).partial"
        let target = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard target >= 0 else { throw ClusterFileError(path: temporary, operation: "open", code: errno) }
        var closed = false
        defer {
            if !closed {
                close(target)
                unlink(temporary)
            }
        }
        let bufferSize = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        for file in files {
            let source = open(file, O_RDONLY | O_CLOEXEC)
            guard source >= 0 else { throw ClusterFileError(path: file, operation: "open", code: errno) }
            defer { close(source) }
            var first = true
            while true {
                let count = read(source, buffer, bufferSize)
                if count < 0 {
                    if errno == EINTR { continue }
                    throw ClusterFileError(path: file, operation: "read", code: errno)
                }
                if count == 0 { break }
                if first {
                    let magic = buffer.assumingMemoryBound(to: UInt8.self)
                    guard count >= 2, magic[0] == 0x1F, magic[1] == 0x8B else {
                        throw ClusterError.corruptResult(file)
                    }
                    first = false
                }
                var written = 0
                while written < count {
                    let result = write(target, buffer + written, count - written)
                    if result < 0 {
                        if errno == EINTR { continue }
                        throw ClusterFileError(path: temporary, operation: "write", code: errno)
                    }
                    written += result
                }
            }
            if first { throw ClusterError.corruptResult(file) }
        }
        guard fsync(target) == 0 else { throw ClusterFileError(path: temporary, operation: "fsync", code: errno) }
        closed = true
        guard close(target) == 0 else {
            unlink(temporary)
            throw ClusterFileError(path: temporary, operation: "close", code: errno)
        }
        guard rename(temporary, output) == 0 else {
            let code = errno
            unlink(temporary)
            throw ClusterFileError(path: output, operation: "rename", code: code)
        }
    }
}
