// json-filter's NDJSON parsing on any line: it decides, or rejects the line as malformed, naming where it was.
import FuzzSupport

@testable import Pipelines
@testable import Sluice

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = fuzzInput(start, count)
    var lineStart = 0
    var number = 1
    for index in 0...data.count where index == data.count || data[index] == UInt8(ascii: "\n") {
        let line = Line(storage: data, start: lineStart, end: index, number: number)
        do {
            _ = try JSONFilter.matches(line, field: "level", equals: "error")
        } catch let malformed as MalformedRecord {
            fuzzCheck(malformed.line == number, "a malformed line \(number) reported as line \(malformed.line ?? -1)")
        } catch {
            fuzzFailure("line \(number): not a MalformedRecord: \(error)")
        }
        lineStart = index + 1
        number += 1
    }
    return 0
}

runFuzzer { fuzz($0, $1) }
