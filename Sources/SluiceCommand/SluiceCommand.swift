import ArgumentParser
import CStandardStreams
public import Pipelines

#if canImport(Glibc)
import CGlibcExtras
import Glibc
#endif

/// The `sluice` command as a library: `list`, `describe` and `run` — with every option of `sluice run`, its exit
/// statuses and its signal handling — over the ready pipelines you give it.
///
/// A package of your own makes its own `sluice` with its pipelines beside the ready ones:
///
/// ```swift
/// import Pipelines
/// import SluiceCommand
///
/// await SluiceCommand.main(pipelines: PipelineRegistry.all + [Sessionize.self])
/// ```
public enum SluiceCommand {
    /// Parses the process's arguments and runs the command over `pipelines`; exits the process on an error (64 for
    /// a usage error, 1 for a failed run, 130 / 143 after a signal), returns after a successful run.
    ///
    /// Two pipelines with the same name (or one named like a command, `help`) stop it at once, naming both.
    public static func main(pipelines: [any ReadyPipeline.Type]) async {
        if let problem = Self.problem(with: pipelines) {
            CommonRunOptions.writeStandardError("sluice: \(problem)\n")
            exit(ExitCode.validationFailure.rawValue)
        }
        PipelineCatalog.pipelines = pipelines
        Self.keepFreedBuffersForReuse()
        let arguments = Array(CommandLine.arguments.dropFirst())
        // `sluice run NAME` with a NAME that is no pipeline's: say which ones there are (argument-parser would only
        // say the argument is unexpected).
        if arguments.first == "run", let name = arguments.dropFirst().first, !name.hasPrefix("-"), name != "help",
            PipelineCatalog.named(name) == nil
        {
            CommonRunOptions.writeStandardError(
                "Error: \(unknownPipelineMessage(name))\nUsage: sluice run <pipeline> [<options>] [<inputs> ...]\n"
            )
            exit(ExitCode.validationFailure.rawValue)
        }
        await RootCommand.main(arguments)
    }

    /// Has malloc keep the buffers a run frees for the next ones, rather than hand them back to the kernel and fault
    /// them in again — a run allocates and frees its chunks, batches and compressed blocks (hundreds of KiB each)
    /// all the time, on threads of their own. glibc's defaults map each buffer above a threshold (128 KiB, growing)
    /// on its own and trim a thread's heap above twice that: on 200 MB of real text, `grep --invert` to a gzip -1
    /// file took 20,000–30,000 page faults and 0.1–0.2 s of system time; with these settings, 4,600 and 0.08 s.
    /// Up to 4 MiB per allocation come from the heap, and each heap keeps up to 8 MiB free at its top; peak memory
    /// stays within 2 MiB of what it was (wc, wordfreq, 1e9 newlines). A process setting, so the command's, not the
    /// library's.
    static func keepFreedBuffersForReuse() {
        #if canImport(Glibc)
        _ = mallopt(M_MMAP_THRESHOLD, 4 << 20)
        _ = mallopt(M_TRIM_THRESHOLD, 8 << 20)
        #endif
    }

    /// What is wrong with this set of pipelines, if anything: a name two of them share, or a reserved one.
    static func problem(with pipelines: [any ReadyPipeline.Type]) -> String? {
        var seen: [String: any ReadyPipeline.Type] = [:]
        for pipeline in pipelines {
            if pipeline.name == "help" || pipeline.name.isEmpty || pipeline.name.hasPrefix("-") {
                return "pipeline \(pipeline) cannot be named '\(pipeline.name)'"
            }
            if let first = seen[pipeline.name] {
                return "pipelines \(first) and \(pipeline) are both named '\(pipeline.name)'"
            }
            seen[pipeline.name] = pipeline
        }
        return nil
    }
}

/// Standard streams the process started without (`2>&-`, `<&-`).
///
/// A file opened later would take the closed stream's number: a warning meant for standard error would then be
/// written into the output file, or the output into an input. Each closed one was given `/dev/null` before `main`
/// (`CStandardStreams`), and a run that would read or write it fails naming it instead.
enum StandardStreams {
    static func isClosed(_ descriptor: Int32) -> Bool {
        sluice_closed_standard_streams() & (1 << descriptor) != 0
    }
}

/// The pipelines the command runs, set once by ``SluiceCommand/main(pipelines:)`` before anything is parsed.
enum PipelineCatalog {
    // Written once, before the command line is parsed and before any task starts; only read afterwards.
    nonisolated(unsafe) static var pipelines: [any ReadyPipeline.Type] = PipelineRegistry.all

    static func named(_ name: String) -> (any ReadyPipeline.Type)? {
        self.pipelines.first { $0.name == name }
    }
}

/// The root of the command line: `sluice list | describe | run`.
struct RootCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "Run ready stream-processing pipelines on files: gzip or plain, in and out.",
        subcommands: [Run.self, List.self, Describe.self, Job.self]
    )
}
