import Sluice
import Testing

@testable import Pipelines

@Suite("WordTable")
struct WordTableTests {
    /// The reference: the same words counted with a dictionary of Strings.
    static func reference(_ lines: [String]) -> [String: Int] {
        var counts: [String: Int] = [:]
        for line in lines {
            var word = ""
            for scalar in line.unicodeScalars {
                if scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)) {
                    word.unicodeScalars.append(scalar)
                } else if !word.isEmpty {
                    counts[word.lowercased(), default: 0] += 1
                    word = ""
                }
            }
            if !word.isEmpty { counts[word.lowercased(), default: 0] += 1 }
        }
        return counts
    }

    @Test func countsFoldedWords_likeADictionaryOfStrings() {
        let lines = ["The cat, THE dog; the Cat.", "x1 X1 x1-x2  é naïve", "", "---", "trailing WORD"]
        var table = WordTable()
        for line in lines { table.addWords(of: Line(line)) }
        let expected = Self.reference(lines)
        #expect(table.count == expected.count)
        for (word, count) in expected {
            #expect(table.count(of: word) == count, "\(word)")
        }
        #expect(table.count(of: "na") == 1 && table.count(of: "ve") == 1)  // non-ASCII bytes separate words
        #expect(table.count(of: "missing") == 0)
    }

    @Test func growsPastManyDistinctWords_andMerges_likeOneTable() {
        // 50,000 distinct words (the table grows many times), split over two tables as two workers would.
        let lines = (0..<50_000).map { "w\($0) common W\($0 % 7)x" }
        var whole = WordTable()
        var first = WordTable()
        var second = WordTable()
        for (index, line) in lines.enumerated() {
            whole.addWords(of: Line(line))
            if index % 2 == 0 { first.addWords(of: Line(line)) } else { second.addWords(of: Line(line)) }
        }
        first.merge(second)
        let expected = Self.reference(lines)
        #expect(whole.count == expected.count)  // 50,000 + "common" + w0x…w6x
        #expect(first.count == expected.count)
        for word in ["common", "w0", "w49999", "w3x", "w6x"] {
            #expect(first.count(of: word) == expected[word], "\(word)")
            #expect(whole.count(of: word) == expected[word], "\(word)")
        }
        #expect(first.top(10).map(\.count) == whole.top(10).map(\.count))
        #expect(first.top(10).map(\.word) == whole.top(10).map(\.word))
    }

    @Test func countText_hasEveryCount_asLinesInChunksOfAboutAMiB() {
        // 200,000 distinct words, counts from 1 to past 10,000: several chunks, each of whole lines.
        var table = WordTable()
        for index in 0..<200_000 { table.addWords(of: Line("word\(index) frequent")) }
        for _ in 0..<12_345 { table.addWords(of: Line("frequent")) }
        let chunks = table.countText
        #expect(chunks.count > 1)
        #expect(chunks.dropLast().allSatisfy { $0.count >= 1 << 20 && $0.count < (1 << 20) + 256 })
        #expect(chunks.allSatisfy { $0.last == UInt8(ascii: "\n") })
        var counts: [String: Int] = [:]
        for line in String(decoding: chunks.joined(), as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: " ")
            #expect(parts.count == 2)
            counts[String(parts[1])] = Int(parts[0])
        }
        #expect(counts.count == 200_001)
        #expect(counts["frequent"] == 212_345 && counts["word0"] == 1 && counts["word199999"] == 1)
        #expect(WordTable().countText.isEmpty)
    }

    @Test func top_ordersByCountThenBytes() {
        var table = WordTable()
        for line in ["b a c", "b a", "b", "zz yy"] { table.addWords(of: Line(line)) }
        let top = table.top(4).map { "\($0.count) \(String(decoding: $0.word, as: UTF8.self))" }
        #expect(top == ["3 b", "2 a", "1 c", "1 yy"])
        #expect(table.top(0).isEmpty)
    }
}

@Suite("wc's word count")
struct WordCountTests {
    /// GNU wc's rule in the C locale, one byte at a time, as the reference.
    private func reference(_ bytes: [UInt8]) -> Int {
        var words = 0
        var inWord = false
        for byte in bytes {
            if byte == 0x20 || (0x09...0x0d).contains(byte) {
                inWord = false
            } else if (0x21...0x7e).contains(byte) && !inWord {
                words += 1
                inWord = true
            }
        }
        return words
    }

    @Test func eightBytesAtATime_countsAsGnuWcDoes_onRandomBytes() {
        // Mostly letters and spaces (the fast path), with tabs, controls, DEL and bytes ≥ 0x80 sprinkled in at
        // every position, so both paths and the switch between them are covered.
        var generator = SplitMix(seed: 3)
        let alphabet: [UInt8] =
            Array("abc XY  z\t\r\n".utf8) + [0x00, 0x01, 0x0b, 0x1f, 0x7e, 0x7f, 0x80, 0xc3, 0xff, 0x21]
        for length in 0..<200 {
            for _ in 0..<20 {
                let bytes = (0..<length).map { _ in
                    generator.next() % 10 == 0
                        ? alphabet[Int(generator.next() % UInt64(alphabet.count))]
                        : alphabet[Int(generator.next() % 9)]
                }
                let counted = bytes.withUnsafeBytes { WordCount.words(in: $0) }
                #expect(counted == self.reference(bytes), "\(bytes)")
            }
        }
    }
}
