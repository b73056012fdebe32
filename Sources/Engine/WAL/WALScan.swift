/// A read-only walk over WAL segments for the admin CLI: every record's place, size, LSN,
/// event count and checksum state. Nothing is truncated or locked, so it is safe beside a
/// running server (whose last segment may end in a record still being written).
public enum WALScan {
    public struct Record: Sendable {
        public var offset: Int
        /// Header and payload.
        public var size: Int
        public var lsn: UInt64
        public var events: Int
    }

    public struct Segment: Sendable {
        public var name: String
        public var bytes: Int
        public var firstLSN: UInt64
        public var records: [Record] = []
        /// What stops the walk (torn tail, checksum mismatch, malformed batch), with its offset.
        public var problem: String?
        public var problemOffset: Int?
        public var events: Int { records.reduce(0) { $0 + $1.events } }
    }

    /// Every segment of `DIR/wal`, oldest first.
    public static func segments(directory: String, fileSystem fs: any FileSystem = PosixFileSystem()) throws(TallyError)
        -> [Segment]
    {
        let walDirectory = directory + "/wal"
        guard fs.exists(directory) else { throw TallyError(.notFound, "no data directory at \(directory)") }
        guard fs.exists(walDirectory) else { return [] }
        let firsts = try fs.list(walDirectory).compactMap(WALFormat.parseFileName).sorted()
        var segments: [Segment] = []
        for first in firsts {
            let name = WALFormat.fileName(firstLSN: first)
            let path = walDirectory + "/" + name
            let file: any StoredFile
            do { file = try fs.openForReading(path) } catch {
                // A running server's flush deleted it since the listing: its records are in parts.
                if fs.exists(path) { throw error }
                continue
            }
            defer { file.close() }
            let bytes = try file.read(at: 0, count: try file.size())
            segments.append(scan(bytes, name: name, firstLSN: first))
        }
        return segments
    }

    static func scan(_ bytes: [UInt8], name: String, firstLSN: UInt64) -> Segment {
        var s = Segment(name: name, bytes: bytes.count, firstLSN: firstLSN)
        bytes.withUnsafeBytes { b in
            guard b.count >= WALFormat.segmentHeaderSize else {
                s.problem = "\(b.count) bytes, shorter than the \(WALFormat.segmentHeaderSize)-byte header"
                s.problemOffset = 0
                return
            }
            guard Array(b[0..<8]) == WALFormat.magic else {
                s.problem = "does not start with the WAL magic"
                s.problemOffset = 0
                return
            }
            let version = WALFormat.headerVersion(b)!
            guard WALFormat.versions.contains(version) else {
                s.problem = "format version \(version); this build reads versions \(WALFormat.versions.lowerBound)–\(WALFormat.versions.upperBound)"
                s.problemOffset = 8
                return
            }
            var offset = WALFormat.segmentHeaderSize
            while offset < b.count {
                guard b.count - offset >= WALFormat.recordHeaderSize else {
                    s.problem = "torn record header (\(b.count - offset) bytes)"
                    s.problemOffset = offset
                    return
                }
                let length = Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                let crc = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
                let end = offset + WALFormat.recordHeaderSize + length
                guard length <= WALFormat.maxPayload, end <= b.count else {
                    s.problem = "torn record: length \(length) runs past the end"
                    s.problemOffset = offset
                    return
                }
                guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[(offset + 8)..<end])) == crc else {
                    s.problem = "checksum mismatch"
                    s.problemOffset = offset
                    return
                }
                let lsn = UInt64(littleEndian: b.loadUnaligned(fromByteOffset: offset + 9, as: UInt64.self))
                let payload = UnsafeRawBufferPointer(rebasing: b[(offset + WALFormat.recordHeaderSize)..<end])
                guard payload.count >= 4 else {
                    s.problem = "batch payload of \(payload.count) bytes"
                    s.problemOffset = offset
                    return
                }
                let rows = Int(UInt32(littleEndian: payload.loadUnaligned(fromByteOffset: 0, as: UInt32.self)))
                s.records.append(Record(offset: offset, size: end - offset, lsn: lsn, events: rows))
                offset = end
            }
        }
        return s
    }
}
