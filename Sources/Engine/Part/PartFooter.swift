/// Where a block sits in a part file: offset of its 16-byte header and its total length.
public struct BlockRef: Sendable, Equatable {
    public var offset: Int
    public var length: Int
    static let none = BlockRef(offset: 0, length: 0)
    var isNone: Bool { length == 0 }
}

/// Per-column facts in a part's footer.
public struct ColumnMeta: Sendable {
    public var column: EventColumn
    public var nullCount: Int
    /// Bytes of the column's blocks on disk (headers included) and before compression.
    public var storedBytes: Int
    public var rawBytes: Int
    /// The part-level dictionary (low-cardinality columns), or `.none`.
    public var dictionary: BlockRef
    public var dictionarySize: Int
    /// One block per granule.
    public var granules: [BlockRef]
}

/// Per-granule facts in a part's footer: the sparse primary index and skip indexes.
public struct GranuleMeta: Sendable {
    public var rows: Int
    public var firstRow: Int
    /// min/max occurred_at in the granule.
    public var minTime: Int64
    public var maxTime: Int64
    /// Sort-key bounds: codes into the part's site_id and event_type dictionaries and UTC days.
    public var firstSite: UInt32
    public var lastSite: UInt32
    public var firstDay: Int32
    public var lastDay: Int32
    public var firstType: UInt32
    public var lastType: UInt32
    /// Bloom filters over event_id, session_id and visitor_id (`PartFormat.bloomColumns`).
    public var blooms: [BlockRef]
}

/// Everything a part's footer holds.
public struct PartFooter: Sendable {
    public var partition: Partition
    public var rows: Int
    public var granuleRows: Int
    public var minTime: Int64
    public var maxTime: Int64
    public var minReceived: Int64
    public var maxReceived: Int64
    /// The highest WAL sequence number whose events this part contains (replay skips them).
    public var walLSN: UInt64
    /// 0 for a flushed part; merges produce 1 + the highest input level.
    public var level: Int
    /// The numbers of the parts a merge replaced with this one (empty for a flushed part).
    /// Opening a store deletes any part listed here that is still on disk: a merge that died
    /// after publishing this part but before deleting its inputs neither loses nor doubles rows.
    public var sources: [Int] = []
    public var columns: [ColumnMeta]
    public var granules: [GranuleMeta]

    public func column(_ c: EventColumn) -> ColumnMeta? { columns.first { $0.column == c } }

    func serialized() -> [UInt8] {
        var w = ByteWriter(capacity: 256 + granules.count * 64 + columns.count * granules.count * 6)
        w.u32(PartFormat.version)
        w.u32(UInt32(partition.yyyymm))
        w.varint(UInt64(rows))
        w.varint(UInt64(granuleRows))
        w.i64(minTime)
        w.i64(maxTime)
        w.i64(minReceived)
        w.i64(maxReceived)
        w.u64(walLSN)
        w.varint(UInt64(level))
        w.varint(UInt64(sources.count))
        for n in sources { w.varint(UInt64(n)) }
        w.varint(UInt64(granules.count))
        for g in granules {
            w.varint(UInt64(g.rows))
            w.i64(g.minTime)
            w.i64(g.maxTime)
            w.varint(UInt64(g.firstSite))
            w.varint(UInt64(g.lastSite))
            w.zigzag(Int64(g.firstDay))
            w.zigzag(Int64(g.lastDay))
            w.varint(UInt64(g.firstType))
            w.varint(UInt64(g.lastType))
            w.varint(UInt64(g.blooms.count))
            for b in g.blooms { Self.write(b, &w) }
        }
        w.varint(UInt64(columns.count))
        for c in columns {
            w.u16(UInt16(c.column.rawValue))
            w.u8(c.column.kind.rawValue)
            w.u8(c.column.isNullable ? 1 : 0)
            w.varint(UInt64(c.nullCount))
            w.varint(UInt64(c.storedBytes))
            w.varint(UInt64(c.rawBytes))
            Self.write(c.dictionary, &w)
            w.varint(UInt64(c.dictionarySize))
            for b in c.granules { Self.write(b, &w) }
        }
        return w.bytes
    }

    private static func write(_ b: BlockRef, _ w: inout ByteWriter) {
        w.varint(UInt64(b.offset))
        w.varint(UInt64(b.length))
    }

    private static func readRef(_ r: inout ByteReader, fileSize: Int) throws -> BlockRef {
        let offset = try r.count(limit: fileSize)
        let length = try r.count(limit: fileSize)
        guard offset + length <= fileSize else { throw GranuleCodec.Malformed(message: "block ref beyond end of file") }
        return BlockRef(offset: offset, length: length)
    }

    static func parse(_ bytes: UnsafeRawBufferPointer, fileSize: Int) throws -> PartFooter {
        var r = ByteReader(bytes)
        let version = try r.u32()
        guard PartFormat.readableVersions.contains(version) else {
            throw TallyError(.unsupportedVersion, "part format version \(version); this build reads versions \(PartFormat.readableVersions.lowerBound)–\(PartFormat.version)")
        }
        guard let partition = Partition(yyyymm: Int(try r.u32())) else {
            throw GranuleCodec.Malformed(message: "invalid partition")
        }
        let rows = try r.count()
        let granuleRows = try r.count()
        let minTime = try r.i64()
        let maxTime = try r.i64()
        let minReceived = try r.i64()
        let maxReceived = try r.i64()
        let lsn = try r.u64()
        let level = try r.count(limit: 1000)
        var sources: [Int] = []
        if version >= 2 {
            let n = try r.count(limit: 1 << 20)
            for _ in 0..<n { sources.append(try r.count()) }
        }
        let granuleCount = try r.count(limit: rows + 1)
        var granules: [GranuleMeta] = []
        granules.reserveCapacity(granuleCount)
        var firstRow = 0
        for _ in 0..<granuleCount {
            let n = try r.count(limit: rows)
            // A writer never makes an empty granule; a merge reading one would index past it.
            guard n > 0 else { throw GranuleCodec.Malformed(message: "granule \(granules.count) has no rows") }
            let minT = try r.i64()
            let maxT = try r.i64()
            let fs = UInt32(try r.count(limit: Int(UInt32.max)))
            let ls = UInt32(try r.count(limit: Int(UInt32.max)))
            let fd = Int32(truncatingIfNeeded: try r.zigzag())
            let ld = Int32(truncatingIfNeeded: try r.zigzag())
            let ft = UInt32(try r.count(limit: Int(UInt32.max)))
            let lt = UInt32(try r.count(limit: Int(UInt32.max)))
            let nb = try r.count(limit: 16)
            var blooms: [BlockRef] = []
            for _ in 0..<nb { blooms.append(try readRef(&r, fileSize: fileSize)) }
            granules.append(GranuleMeta(rows: n, firstRow: firstRow, minTime: minT, maxTime: maxT, firstSite: fs,
                                        lastSite: ls, firstDay: fd, lastDay: ld, firstType: ft, lastType: lt, blooms: blooms))
            firstRow += n
        }
        guard firstRow == rows else {
            throw GranuleCodec.Malformed(message: "granule rows sum to \(firstRow), part claims \(rows)")
        }
        let columnCount = try r.count(limit: 256)
        var columns: [ColumnMeta] = []
        for _ in 0..<columnCount {
            let id = Int(try r.u16())
            let kind = try r.u8()
            let nullable = try r.u8()
            guard let column = EventColumn(rawValue: id) else {
                throw GranuleCodec.Malformed(message: "unknown column id \(id)")
            }
            guard column.kind.rawValue == kind, (nullable == 1) == column.isNullable else {
                throw GranuleCodec.Malformed(message: "column \(column.name) has kind \(kind)/nullable \(nullable) on disk")
            }
            let nullCount = try r.count()
            let stored = try r.count(limit: fileSize)
            let raw = try r.count(limit: Int.max)
            let dict = try readRef(&r, fileSize: fileSize)
            let dictSize = try r.count()
            var refs: [BlockRef] = []
            refs.reserveCapacity(granuleCount)
            for _ in 0..<granuleCount { refs.append(try readRef(&r, fileSize: fileSize)) }
            columns.append(ColumnMeta(column: column, nullCount: nullCount, storedBytes: stored, rawBytes: raw,
                                      dictionary: dict, dictionarySize: dictSize, granules: refs))
        }
        guard r.isAtEnd else { throw GranuleCodec.Malformed(message: "\(r.remaining) bytes after the footer") }
        return PartFooter(partition: partition, rows: rows, granuleRows: granuleRows, minTime: minTime, maxTime: maxTime,
                          minReceived: minReceived, maxReceived: maxReceived, walLSN: lsn, level: level,
                          sources: sources, columns: columns, granules: granules)
    }
}
