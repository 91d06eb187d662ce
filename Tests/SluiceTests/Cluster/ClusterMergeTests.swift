import Testing

@testable import SluiceCluster

#if canImport(Glibc)
import Glibc
#endif

/// `merge` to a `.gz` copies the units' gzip members byte for byte; a damaged result stops it with the file's name
/// and leaves the output as it was.
@Suite("Cluster: merging gzip results")
struct ClusterMergeTests {
    @Test func unitFiles_concatenateIntoOneGzipFile() async throws {
        let directory = TemporaryDirectory()
        var files: [String] = []
        for index in 0..<3 {
            let path = directory.file("\(index).txt")
            try writeFile(path, Array("unit \(index)\nsecond line\n".utf8))
            try await Shell.check("gzip '\(path)'")
            files.append(path + ".gz")
        }
        let output = directory.file("merged.gz")
        try ClusterMerge.concatenate(files, into: output)
        try await Shell.check(
            "gzip -t '\(output)' && test \"$(zcat '\(output)')\" = \"$(zcat \(files.map { "'\($0)'" }.joined(separator: " ")))\""
        )
        try await Shell.check("test \"$(ls '\(directory.path)' | grep -c partial)\" = 0")
    }

    @Test(arguments: ["missing", "empty", "plain"])
    func aDamagedResult_isNamed_andTheOutputIsLeftAsItWas(_ damage: String) async throws {
        let directory = TemporaryDirectory()
        let good = directory.file("good.txt")
        try writeFile(good, Array("fine\n".utf8))
        try await Shell.check("gzip '\(good)'")
        let bad = directory.file("bad.gz")
        switch damage {
        case "empty": try writeFile(bad, [])
        case "plain": try writeFile(bad, Array("not gzip\n".utf8))
        default: break
        }
        let output = directory.file("merged.gz")
        try writeFile(output, Array("before\n".utf8))
        let error = #expect(throws: (any Error).self) {
            try ClusterMerge.concatenate([good + ".gz", bad], into: output)
        }
        #expect("\(error.map { "\($0)" } ?? "")".contains(bad))
        try await Shell.check(
            "test \"$(cat '\(output)')\" = before && test \"$(ls '\(directory.path)' | grep -c partial)\" = 0"
        )
    }
}
