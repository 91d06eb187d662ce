public import Pipelines
public import Sluice

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
        case .concatenate:
            // The units' lines in input order (each unit's output is gzip; the reader takes its members whole).
            try await Pipeline.lines(from: files).write(to: output).run(runOptions)
        case .combineLines:
            var parts: [[String]] = []
            for file in files {
                parts.append(try await Pipeline.lines(from: [file]).map { $0.string }.collect().run(runOptions).result)
            }
            let lines = try pipeline.combine(parts, arguments: job.arguments)
            try await Pipeline.from(lines).write(to: output).run(runOptions)
        case .nothing:
            break
        case .unsupported(let reason):
            throw ClusterError.cannotMerge(reason)
        }
    }
}
