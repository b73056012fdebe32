/// `DIR/DROPPED`: per month partition dropped by hand, the highest WAL LSN its dropped parts
/// held (FORMAT.md, "Data directory"). Replay skips a partition's rows up to that LSN, as it
/// skips rows a part holds: without it, WAL records not yet deleted after the flush brought a
/// dropped month back on the next open (or in a backup).
enum DroppedMarks {
    static let fileName = "DROPPED"
    static let magic: [UInt8] = Array("TLYDROP1".utf8)

    static func read(_ directory: String, fs: any FileSystem) throws(TallyError) -> [Partition: UInt64] {
        let path = directory + "/" + fileName
        guard fs.exists(path) else { return [:] }
        let f = try fs.openForReading(path)
        defer { f.close() }
        let bytes = try f.read(at: 0, count: try f.size())
        guard bytes.count >= 16, Array(bytes[0..<8]) == magic else {
            throw .corruption("\(path) is not a dropped-partitions file (starting TLYDROP1)")
        }
        let body = Array(bytes[0..<(bytes.count - 4)])
        let crc = bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: bytes.count - 4, as: UInt32.self)) }
        guard CRC32C.checksum(body) == crc else { throw .corruption("checksum mismatch in \(path)") }
        return try body.withBytes { (b) throws(TallyError) -> [Partition: UInt64] in
            var r = ByteReader(UnsafeRawBufferPointer(rebasing: b[8...]))
            do {
                let count = Int(try r.u32())
                var marks: [Partition: UInt64] = [:]
                for _ in 0..<count {
                    let yyyymm = Int(try r.u32())
                    guard let p = Partition(yyyymm: yyyymm) else { throw TallyError.corruption("\(path): month \(yyyymm)") }
                    marks[p] = try r.u64()
                }
                guard r.isAtEnd else { throw TallyError.corruption("\(path): \(r.remaining) bytes after the marks") }
                return marks
            } catch let e as TallyError {
                throw e
            } catch {
                throw .corruption("\(path) is truncated", cause: "\(error)")
            }
        }
    }

    static func write(_ marks: [Partition: UInt64], _ directory: String, fs: any FileSystem) throws(TallyError) {
        var w = ByteWriter(capacity: 16 + marks.count * 12)
        w.raw(magic)
        w.u32(UInt32(marks.count))
        for (p, lsn) in marks.sorted(by: { $0.key < $1.key }) {
            w.u32(UInt32(p.yyyymm))
            w.u64(lsn)
        }
        w.u32(CRC32C.checksum(w.bytes))
        try fs.writeAtomically(w.bytes, name: fileName, in: directory)
    }
}
