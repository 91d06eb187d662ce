import ArgumentParser
import Sluice

/// A ``Codec`` on the command line, by name.
struct CodecArgument: ExpressibleByArgument, Sendable, CustomStringConvertible {
    let codec: Codec

    init(_ codec: Codec) {
        self.codec = codec
    }

    init?(argument: String) {
        guard let codec = Codec(name: argument) else { return nil }
        self.codec = codec
    }

    static var allValueStrings: [String] { Codec.all.map(\.description) }

    var description: String { self.codec.description }
}
