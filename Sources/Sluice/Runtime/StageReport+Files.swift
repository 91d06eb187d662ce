extension StageReport {
    /// The kind of the stage that reads files (``Pipeline/lines(from:options:)-swift.type.method``): its bytes in are
    /// the files' bytes as stored, its bytes out the decoded bytes.
    public static let readKind = "read"
    /// The kind of the sink that writes a file (``Pipeline/write(to:options:)``): its bytes out are the file's bytes.
    public static let writeKind = "write"
}

extension Sequence<StageReport> {
    /// Bytes read from the input files as stored (compressed, for gzip), over every reading stage.
    public var bytesRead: Int {
        self.filter { $0.kind == StageReport.readKind }.reduce(0) { $0 + $1.bytesIn }
    }

    /// The input files' bytes once decoded (the size of their text), over every reading stage.
    public var bytesDecoded: Int {
        self.filter { $0.kind == StageReport.readKind }.reduce(0) { $0 + $1.bytesOut }
    }

    /// Bytes written to output files, as stored.
    public var bytesWritten: Int {
        self.filter { $0.kind == StageReport.writeKind }.reduce(0) { $0 + $1.bytesOut }
    }
}

extension RunReport {
    /// Bytes read from the input files as stored (compressed, for gzip): `report.bytesRead` rather than looking up
    /// a stage by name.
    public var bytesRead: Int { self.stages.bytesRead }
    /// The input files' bytes once decoded (the size of their text).
    public var bytesDecoded: Int { self.stages.bytesDecoded }
    /// Bytes written to the output file, as stored.
    public var bytesWritten: Int { self.stages.bytesWritten }
}
