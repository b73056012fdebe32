/// Every name, magic and constant of the write-ahead log, in one place (FORMAT.md, "WAL").
enum WALFormat {
    /// "TLYWAL01" at offset 0 of every segment.
    static let magic: [UInt8] = Array("TLYWAL01".utf8)
    /// The version of segments this build writes; it replays `versions`. Version 1 stored
    /// each string value's end offset, version 2 its length (`WALBatchCodec`).
    static let version: UInt32 = 2
    static let versions: ClosedRange<UInt32> = 1...2
    /// magic (8) + version (4) + reserved (4).
    static let segmentHeaderSize = 16
    /// payload length (4) + CRC32C (4) + type (1) + LSN (8).
    static let recordHeaderSize = 17
    static let recordTypeBatch: UInt8 = 1
    /// A new segment starts once the current one passes this size; whole segments are
    /// deleted once every record in them is in parts. 64 MiB bounds replay time (~0.1 s
    /// of decoding) and disk use while keeping rotations rare.
    static let segmentTargetSize = 64 << 20
    /// A record's payload may not exceed this (a batch of 10,000 maximal events fits).
    static let maxPayload = 256 << 20
    static let fileExtension = ".wal"

    /// "00000000000000000001.wal": the LSN of the segment's first record, zero-padded.
    static func fileName(firstLSN: UInt64) -> String {
        let s = String(firstLSN)
        return String(repeating: "0", count: max(0, 20 - s.count)) + s + fileExtension
    }

    static func parseFileName(_ name: String) -> UInt64? {
        guard name.hasSuffix(fileExtension) else { return nil }
        return UInt64(name.dropLast(fileExtension.count))
    }

    /// The version in a segment's header; nil when the bytes are shorter than a header or do
    /// not start with the magic.
    static func headerVersion(_ b: UnsafeRawBufferPointer) -> UInt32? {
        guard b.count >= segmentHeaderSize, magic.withUnsafeBytes({ ByteOrder.equal(UnsafeRawBufferPointer(rebasing: b[0..<8]), $0) })
        else { return nil }
        return UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
    }

    static func segmentHeader() -> [UInt8] {
        var w = ByteWriter(capacity: segmentHeaderSize)
        w.raw(magic)
        w.u32(version)
        w.u32(0)
        return w.bytes
    }

    /// Appends one framed record to `w`.
    static func frame(lsn: UInt64, payload: [UInt8], into w: inout ByteWriter) {
        w.u32(UInt32(payload.count))
        var tail = ByteWriter(capacity: 9)
        tail.u8(recordTypeBatch)
        tail.u64(lsn)
        var crc = tail.bytes.withUnsafeBytes { CRC32C.checksum($0) }
        crc = payload.withUnsafeBytes { CRC32C.checksum($0, continuing: crc) }
        w.u32(crc)
        w.raw(tail.bytes)
        w.raw(payload)
    }
}

/// The payload of a batch record: the batch's columns, compressed with lz4 (~1.5 GB/s). How
/// much it saves depends on the record's size: a record of 100 events (an HTTP request) came
/// to 435 bytes per event, ~1.4x smaller (BENCHMARKS.md, seventh session), one of `tally
/// ingest`'s 8,192 events to ~120, ~5x (user agents, URLs and titles repeat within it;
/// twelfth session). The random ids do not compress.
///
/// u32 rows, u8 codec, u32 raw length, then the compressed bytes of: for every column in
/// id order, int64 columns as rows × Int64 LE; string columns as rows × UInt32 LE lengths
/// (segment version 2; end offsets in version 1) then the bytes; nullable columns followed by
/// a null bitmap of ceil(rows/8) bytes. Lengths repeat (ids, countries, types) where end
/// offsets never do: lz4 stores 8,192 generated events in 112 instead of 171 bytes each, at
/// the same speed (BENCHMARKS.md, sixteenth session).
enum WALBatchCodec {
    static func encode(_ batch: EventBatch) -> [UInt8] {
        // Sized exactly (values, offsets and null bitmaps): growing a ~4 MB buffer by one
        // bitmap too many copied it whole (1 % of `tally ingest`).
        let bitmap = (batch.count + 7) / 8
        let rawSize = EventColumn.allCases.reduce(0) { n, c in
            n + (c.isNullable ? bitmap : 0)
                + (c.kind == .int64 ? batch.count * 8 : batch.count * 4 + batch[string: c].bytes.count)
        }
        var raw = ByteWriter(capacity: rawSize)
        for c in EventColumn.allCases {
            if c.kind == .int64 {
                let col = batch[int: c]
                col.values.withUnsafeBytes { raw.raw($0) }
                if c.isNullable { writeBitmap(col.nulls!, into: &raw) }
            } else {
                let col = batch[string: c]
                writeLengths(col.ends, into: &raw)
                raw.raw(col.bytes)
                if c.isNullable { writeBitmap(col.nulls!, into: &raw) }
            }
        }
        var out = ByteWriter(capacity: raw.count / 2 + 64)
        out.u32(UInt32(batch.count))
        let codecOffset = out.count
        out.u8(Codec.lz4.rawValue)
        out.u32(UInt32(raw.count))
        let used = raw.bytes.withUnsafeBytes { Codec.compress($0, codec: .lz4, into: &out.bytes) }
        out.bytes[codecOffset] = used.rawValue
        return out.bytes
    }

    /// Each value's length (from the end offsets) as u32 LE.
    private static func writeLengths(_ ends: [UInt32], into w: inout ByteWriter) {
        let at = w.bytes.count
        w.bytes.append(contentsOf: repeatElement(0, count: ends.count * 4))
        w.bytes.withUnsafeMutableBytes { out in
            ends.withUnsafeBufferPointer { e in
                var previous: UInt32 = 0
                for k in 0..<e.count {
                    out.storeBytes(of: (e[k] &- previous).littleEndian, toByteOffset: at + 4 * k, as: UInt32.self)
                    previous = e[k]
                }
            }
        }
    }

    private static func writeBitmap(_ nulls: NullBitmap, into w: inout ByteWriter) {
        let n = (nulls.count + 7) / 8
        nulls.words.withUnsafeBytes { w.raw(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
    }

    /// Decodes a payload of a segment of `version` (`WALFormat.versions`).
    static func decode(_ payload: UnsafeRawBufferPointer, version: UInt32 = WALFormat.version) throws -> EventBatch {
        var r = ByteReader(payload)
        let rows = Int(try r.u32())
        guard let codec = Codec(rawValue: try r.u8()) else { throw GranuleCodec.Malformed(message: "unknown codec") }
        let rawLength = Int(try r.u32())
        guard rawLength <= WALFormat.maxPayload * 4 else { throw GranuleCodec.Malformed(message: "raw length \(rawLength)") }
        var raw: [UInt8] = []
        try Codec.decompress(try r.raw(r.remaining), codec: codec, rawLength: rawLength, into: &raw)
        var batch = EventBatch()
        try raw.withUnsafeBytes { b in
            var r = ByteReader(b)
            for c in EventColumn.allCases {
                if c.kind == .int64 {
                    let v = try r.raw(rows * 8)
                    batch[int: c].values = (0..<rows).map { Int64(littleEndian: v.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
                    if c.isNullable { batch[int: c].nulls = try readBitmap(&r, rows) }
                } else {
                    let e = try r.raw(rows * 4)
                    var ends = (0..<rows).map { UInt32(littleEndian: e.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)) }
                    var prev: UInt32 = 0
                    if version == 1 {
                        for x in ends {
                            guard x >= prev else { throw GranuleCodec.Malformed(message: "\(c.name) offsets decrease") }
                            prev = x
                        }
                    } else {
                        // Lengths to end offsets; their sum is bounded by the raw length.
                        for k in ends.indices {
                            let (end, overflow) = prev.addingReportingOverflow(ends[k])
                            guard !overflow, Int(end) <= rawLength else {
                                throw GranuleCodec.Malformed(message: "\(c.name) lengths run past the record")
                            }
                            ends[k] = end
                            prev = end
                        }
                    }
                    batch[string: c].ends = ends
                    batch[string: c].bytes = Array(try r.raw(Int(prev)))
                    if c.isNullable { batch[string: c].nulls = try readBitmap(&r, rows) }
                }
            }
            guard r.isAtEnd else { throw GranuleCodec.Malformed(message: "\(r.remaining) bytes after the batch") }
        }
        batch.setCount(rows)
        return batch
    }

    private static func readBitmap(_ r: inout ByteReader, _ rows: Int) throws -> NullBitmap {
        let bytes = try r.raw((rows + 7) / 8)
        var words = [UInt64](repeating: 0, count: (rows + 63) / 64)
        words.withUnsafeMutableBytes { $0.copyMemory(from: bytes) }
        if rows & 63 != 0 { words[words.count - 1] &= (1 << UInt64(rows & 63)) - 1 }
        return NullBitmap(words: words, count: rows)
    }
}
