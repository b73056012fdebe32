import Foundation
import Synchronization

/// Bytes of a rollup part file (FORMAT.md, "Rollup part file").
enum RollupFormat {
    /// "TLYROLL1" at offset 0.
    static let magic: [UInt8] = Array("TLYROLL1".utf8)
    /// "TLYREND1" as the last 8 bytes.
    static let endMagic: [UInt8] = Array("TLYREND1".utf8)
    /// 2: sketch types after the key columns, rows column by column, sketches framed so that
    /// most are their entry count and bits, none for rows whose type has none. Version 1 (rows
    /// one after the other, every row with two sketches) is still read.
    static let version: UInt32 = 2
    static let fileExtension = ".rpart"

    /// "202608_00000007_0.rpart" in `rollups/<name>/`.
    static func fileName(partition: Partition, number: Int, level: Int) -> String {
        String(PartFormat.fileName(partition: partition, number: number, level: level).dropLast(PartFormat.fileExtension.count))
            + fileExtension
    }

    static func parseFileName(_ name: String) -> (partition: Partition, number: Int, level: Int)? {
        guard name.hasSuffix(fileExtension) else { return nil }
        return PartFormat.parseFileName(String(name.dropLast(fileExtension.count)) + PartFormat.fileExtension)
    }
}

/// `bytes` in an array of its own size (an array grown by appending holds up to twice its
/// bytes; the sketches of a decoded rollup part stay in memory while the store is open).
private func exactCapacity(_ bytes: [UInt8]) -> [UInt8] {
    guard bytes.capacity > bytes.count + bytes.count / 16 else { return bytes }
    return [UInt8](unsafeUninitializedCapacity: bytes.count) { out, n in n = out.initialize(fromContentsOf: bytes) }
}

/// What a rollup part says about where its rows came from.
struct RollupProvenance: Sendable, Equatable {
    /// The highest raw part number whose rows this part (or one of its sources) summarizes.
    var coverage: Int = 0
    /// Rollup parts a merge replaced with this one.
    var sources: [Int] = []
    /// For a correction (rows a raw merge dropped as duplicates, with negative counts): the
    /// number of that merged raw part and of its inputs; 0 and empty otherwise.
    var correctsPart = 0
    var correctedInputs: [Int] = []
}

/// An open rollup part: what it is (month, level, provenance, key columns, sketch types, its
/// sites and their time zones) stays in memory; its rows (`RollupRows`) are loaded from the file
/// when a query or merge needs them and kept by the store's `RollupRowsCache` within a byte
/// budget. Held whole for as long as the part was open, the rows of every month of every rollup
/// grew with the data without bound (an opened 10M-event store: ~75 % of its 222 MB; two years
/// of rollups at that rate would take over 1 GB), while queries read the last months.
/// Opened without a cache (`tally inspect`, tests), a part keeps its rows.
public final class RollupPart: Sendable {
    public let name: String
    public let path: String
    public let number: Int
    public let rollup: String
    /// The local month of the rows' days.
    public let partition: Partition
    public let level: Int
    public let fileSize: Int
    let provenance: RollupProvenance
    /// Site, event type, then the definition's dimensions.
    public let columns: [EventColumn]
    /// The event types whose rows carry sketches; nil: every type.
    public let sketchTypes: [String]?
    /// The site dictionary (byte order) and, per site, the time zone of its rows' days ("" = mixed).
    let siteNames: StringColumn
    let siteZones: [String]
    public let rows: Int
    /// Open while the part is (a merge deletes the file of a part a snapshot may still read).
    private let file: (any StoredFile)?
    private let cache: RollupRowsCache?
    private let pinned: RollupRows?
    /// One load of the rows at a time (two queries missing the cache decode the file once).
    private let loading = Mutex<Int>(0)

    /// A part opened without a cache, whose rows it keeps (just written, or decoded).
    convenience init(name: String, path: String, number: Int, rollup: String, partition: Partition, level: Int,
                     fileSize: Int, provenance: RollupProvenance, rows: RollupRows) {
        self.init(name: name, path: path, number: number, rollup: rollup, partition: partition, level: level,
                  fileSize: fileSize, provenance: provenance, columns: rows.columns, sketchTypes: rows.sketchTypes,
                  siteNames: rows.dictionaries[0], siteZones: rows.siteZones, rows: rows.rows,
                  file: nil, cache: nil, pinned: rows)
    }

    init(name: String, path: String, number: Int, rollup: String, partition: Partition, level: Int, fileSize: Int,
         provenance: RollupProvenance, columns: [EventColumn], sketchTypes: [String]?, siteNames: StringColumn,
         siteZones: [String], rows: Int, file: (any StoredFile)?, cache: RollupRowsCache?, pinned: RollupRows?) {
        self.name = name
        self.path = path
        self.number = number
        self.rollup = rollup
        self.partition = partition
        self.level = level
        self.fileSize = fileSize
        self.provenance = provenance
        self.columns = columns
        self.sketchTypes = sketchTypes
        self.siteNames = siteNames
        self.siteZones = siteZones
        self.rows = rows
        self.file = cache == nil ? nil : file
        self.cache = cache
        self.pinned = pinned
        if cache == nil { file?.close() }
    }

    /// Events counted in the part's rows (loads them).
    public func totalEvents() throws(TallyError) -> Int64 { try loadRows().totalEvents }
    /// Bytes of the sketches as held in memory once loaded (loads them).
    public func sketchByteCount() throws(TallyError) -> Int { try loadRows().sketchByteCount }

    /// Whether the part's site dictionary holds `site` (no rows are loaded).
    func has(site: String) -> Bool { Part.lookup(site, in: siteNames).found }

    deinit {
        cache?.remove(ObjectIdentifier(self))
        file?.close()
    }

    /// The part's rows: from the cache, or read and decoded again from its file (and kept in
    /// the cache unless `keep` is false: a merge reads rows it is about to replace, which
    /// would push out the rows queries keep asking for).
    func loadRows(keep: Bool = true) throws(TallyError) -> RollupRows {
        if let pinned { return pinned }
        guard let cache, let file else { throw TallyError(.closed, "rollup part \(name) has no rows loaded") }
        let key = ObjectIdentifier(self)
        if let rows = cache.get(key) { return rows }
        return try loading.withLock { (_) throws(TallyError) -> RollupRows in
            if let rows = cache.get(key) { return rows }
            let decoded = try Self.decode(try file.read(at: 0, count: fileSize), name: name)
            let r = decoded.rows
            guard r.rows == rows, decoded.provenance == provenance, decoded.rollup == rollup, decoded.partition == partition,
                  decoded.level == level, r.columns == columns, r.sketchTypes == sketchTypes, r.siteZones == siteZones,
                  r.dictionaries[0] == siteNames
            else {
                throw .corruption("rollup part \(name): its rows do not match the header read when it was opened")
            }
            cache.put(key, decoded.rows, loaded: true, keep: keep)
            return decoded.rows
        }
    }

    /// The time zone identifier of a site's days in this part; nil if the site has no rows.
    func zone(ofSite site: String) -> String? {
        let (code, found) = Part.lookup(site, in: siteNames)
        return found ? siteZones[Int(code)] : nil
    }
}

/// The rows of a rollup part, decoded: key columns packed, sketches as the file stores them.
public final class RollupRows: Sendable {
    /// The part's file name (for errors).
    let name: String
    /// Site, event type, then the definition's dimensions.
    public let columns: [EventColumn]
    /// The event types whose rows carry sketches; nil: every type.
    public let sketchTypes: [String]?
    /// Per column, the values in byte order (int64 columns as decimal text).
    let dictionaries: [StringColumn]
    /// Per site (site dictionary order), the time zone of its rows' days ("" = mixed).
    let siteZones: [String]
    let sites: PackedInts<UInt32>
    let days: PackedInts<Int32>
    let types: PackedInts<UInt32>
    /// Per dimension, per row: code, or `RollupAggregate.null`.
    let dimensions: [PackedInts<UInt32>]
    let events: PackedInts<Int64>
    /// Serialized sketches, row r's visitors at `sketchBytes[sketchOffsets[2r]..<sketchOffsets[2r+1]]`
    /// and sessions up to `sketchOffsets[2r+2]`.
    let sketchBytes: [UInt8]
    /// Two entries per row and one more, below 4 GiB (a part's file is read whole), kept
    /// compact (`SketchOffsets`).
    let sketchOffsets: SketchOffsets
    /// Bytes held (what the cache counts).
    let byteCount: Int

    public var rows: Int { events.count }
    public var sketchByteCount: Int { sketchBytes.count }
    public var totalEvents: Int64 { (0..<events.count).reduce(0) { $0 + events[$1] } }

    init(name: String, columns: [EventColumn], sketchTypes: [String]?, dictionaries: [StringColumn],
         siteZones: [String], sites: [UInt32],
         days: [Int32], types: [UInt32], dimensions: [[UInt32]], events: [Int64], sketchBytes: [UInt8],
         sketchOffsets: [UInt32]) {
        self.name = name
        self.columns = columns
        self.sketchTypes = sketchTypes
        self.dictionaries = dictionaries
        self.siteZones = siteZones
        self.sites = PackedInts(sites)
        self.days = PackedInts(days)
        self.types = PackedInts(types)
        self.dimensions = dimensions.map { PackedInts($0) }
        self.events = PackedInts(events)
        self.sketchBytes = sketchBytes
        self.sketchOffsets = SketchOffsets(sketchOffsets)
        byteCount = sketchBytes.capacity + self.sketchOffsets.byteCount + self.sites.byteCount + self.days.byteCount
            + self.types.byteCount + self.events.byteCount + self.dimensions.reduce(0) { $0 + $1.byteCount }
            + dictionaries.reduce(0) { $0 + $1.bytes.capacity + 4 * $1.ends.capacity }
    }

    func visitors(_ r: Int) throws(TallyError) -> HyperLogLog { try sketch(2 * r) }
    func sessions(_ r: Int) throws(TallyError) -> HyperLogLog { try sketch(2 * r + 1) }

    /// A sketch as an opened part holds it, which is how the file stores it: a varint x, then
    /// for x even the Rice-coded bits of x >> 1 sparse entries of the default precision, for x
    /// odd the x >> 1 bytes of a whole serialized sketch; no bytes at all for a row whose type
    /// has no sketches. (It held kind-3 sketches with their kind, precision and count header
    /// back: 2 more bytes per sparse sketch, most of them, in memory that grows with the data.)
    enum StoredSketch {
        case none
        case sparse(entries: Int, bits: UnsafeRawBufferPointer)
        case whole(UnsafeRawBufferPointer)
    }

    /// Calls `body` with sketch `i` (row i / 2; even i: visitors, odd: sessions) as stored.
    func withStoredSketch<R>(_ i: Int, _ body: (StoredSketch) throws(TallyError) -> R) throws(TallyError) -> R {
        let start = Int(sketchOffsets[i]), end = Int(sketchOffsets[i + 1])
        if start == end { return try body(.none) }
        return try sketchBytes.withBytes { (b) throws(TallyError) -> R in
            var reader = ByteReader(UnsafeRawBufferPointer(rebasing: b[start..<end]))
            // The framing varint was read when the part was opened (or written here).
            guard let x = try? reader.varint() else { throw TallyError(.corruption, "rollup part \(name): sketch \(i) has no framing") }
            let rest = UnsafeRawBufferPointer(rebasing: b[(start + reader.offset)..<end])
            return try body(x & 1 == 0 ? .sparse(entries: Int(x >> 1), bits: rest) : .whole(rest))
        }
    }

    /// Merges row `r`'s visitor (or session) sketch into `union` straight from its bytes.
    func merge(row r: Int, sessions: Bool, into union: inout SketchUnion) throws(TallyError) {
        try withStoredSketch(2 * r + (sessions ? 1 : 0)) { (stored) throws(TallyError) in
            switch stored {
            case .none: return  // no sketches for the row's type: merging an empty one is a no-op
            case .sparse(let n, let bits): try union.merge(sparseRiceCoded: bits, entries: n)
            case .whole(let bytes): try union.merge(serialized: bytes)
            }
        }
    }

    /// About how many entries row `r`'s visitor (or session) sketch holds, from its header:
    /// a sparse one's count, a dense one's registers; 0 when unknown (`SketchUnion.expect`).
    func sketchEntries(row r: Int, sessions: Bool) -> Int {
        (try? withStoredSketch(2 * r + (sessions ? 1 : 0)) { stored -> Int in
            switch stored {
            case .none: return 0
            case .sparse(let n, _): return n
            case .whole(let b):
                guard b.count >= 3 else { return 0 }
                switch b[0] {
                case 3:
                    var reader = ByteReader(UnsafeRawBufferPointer(rebasing: b[2...]))
                    return (try? reader.varint()).map { Int(clamping: $0) } ?? 0
                case 4: return 1 << Int(b[1])
                default: return 0
                }
            }
        }) ?? 0
    }

    /// A row whose type has no sketches has empty ones.
    private func sketch(_ i: Int) throws(TallyError) -> HyperLogLog {
        try withStoredSketch(i) { (stored) throws(TallyError) -> HyperLogLog in
            switch stored {
            case .none: return HyperLogLog()
            case .sparse(let n, let bits): return try HyperLogLog(sparseRiceCoded: bits, entries: n)
            case .whole(let bytes): return try HyperLogLog(serialized: bytes)
            }
        }
    }

    /// Row range of one site (rows are sorted by site code first); empty when absent.
    func rows(ofSite site: String) -> Range<Int> {
        let (code, found) = Part.lookup(site, in: dictionaries[0])
        guard found else { return 0..<0 }
        var lo = 0, hi = sites.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if sites[mid] < code { lo = mid + 1 } else { hi = mid }
        }
        let start = lo
        hi = sites.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if sites[mid] <= code { lo = mid + 1 } else { hi = mid }
        }
        return start..<lo
    }

    /// The text of row r's value of key column k (0 site, 1 type, 2… dimensions), nil for null.
    func value(_ k: Int, _ r: Int) -> String? {
        let code = k == 0 ? sites[r] : (k == 1 ? types[r] : dimensions[k - 2][r])
        return code == RollupAggregate.null ? nil : dictionaries[k].string(at: Int(code))
    }
}

extension RollupPart {
    // MARK: Writing

    /// Writes the rows `groups` of `aggregate` (all of one local month) as a rollup part, atomically
    /// (`.tmp`, fsync, rename, directory fsync), and opens it.
    ///
    /// The part is opened as `open` opens it with a cache: its rows stay in the file until a
    /// query loads them. Rows written by flushes and merges went into the cache, and filled it
    /// to its budget in a store nobody queried (a 3M-event `tally ingest`: ~56 of its 250 MB of
    /// peak heap, heaptrack), while a flush's or merge's part is soon replaced by the next merge.
    static func write(_ aggregate: inout RollupAggregate, groups: [Int], partition: Partition, number: Int, level: Int,
                      provenance: RollupProvenance, directory: String, fs: any FileSystem,
                      cache: RollupRowsCache) throws(TallyError) -> RollupPart {
        let def = aggregate.definition
        let columns = def.columns
        // Sorted dictionaries of the values the rows use; code remaps.
        var remaps: [[UInt32]] = []
        var dictionaries: [(values: StringColumn, order: [Int32])] = []
        for k in columns.indices {
            let (ranks, order) = aggregate.interners[k].sortedRanks()
            remaps.append(ranks.map { UInt32($0) })
            dictionaries.append((aggregate.interners[k].values, order))
        }
        func mapped(_ k: Int, _ code: UInt32) -> UInt32 { code == RollupAggregate.null ? code : remaps[k][Int(code)] }
        // Rows in key order: site, day, type, then the dimensions by value (null last: its code
        // is the largest). The remapped key is packed into four words once, so the sort compares
        // integers (comparing through the remaps in the sort's closure was 9 % of `tally ingest`).
        let dimensionCount = columns.count - 2
        // (The packed keys, 32 bytes a row with the group's index in the last word's low half,
        // are freed once sorted: 40 bytes with the index apart were 23 MB of a 10M-event
        // `tally ingest`'s peak heap, heaptrack.)
        let sorted: [Int] = {
            precondition(aggregate.keys.count <= Int(UInt32.max), "rollup groups past 2^32")
            var packed: [(UInt64, UInt64, UInt64, UInt64)] = []
            packed.reserveCapacity(groups.count)
            for g in groups where aggregate.events[g] != 0 {
                let k = aggregate.keys[g]
                func dim(_ d: Int) -> UInt64 { d < dimensionCount ? UInt64(mapped(d + 2, k[d])) : 0 }
                packed.append((UInt64(mapped(0, k.site)) << 32 | UInt64(UInt32(bitPattern: k.day) ^ 0x8000_0000),
                               UInt64(mapped(1, k.type)) << 32 | dim(0), dim(1) << 32 | dim(2), dim(3) << 32 | UInt64(g)))
            }
            packed.sort { $0 < $1 }
            return packed.map { Int($0.3 & 0xffff_ffff) }
        }()
        // The payload is compressed as it is made (`ZstdStream`), handed over after the header
        // and after each column, so at most one column (a few bytes a row) is held uncompressed:
        // a month's rollup part built whole first held it, a compression buffer of its size and
        // two copies of the output at once. (The sketch bits, which follow all the framing, are
        // still gathered whole first.)
        var z = ZstdStream(level: level == 0 ? Codec.flushZstdLevel : Codec.zstdLevel)
        var w = ByteWriter(capacity: 4096 + sorted.count * 4)
        func spill() {
            w.bytes.withUnsafeBytes { z.feed($0) }
            w.bytes.removeAll(keepingCapacity: true)
        }
        w.varint(UInt64(def.name.utf8.count))
        w.raw(Array(def.name.utf8))
        w.u32(UInt32(partition.yyyymm))
        w.varint(UInt64(level))
        w.varint(UInt64(provenance.coverage))
        w.varint(UInt64(provenance.sources.count))
        for s in provenance.sources { w.varint(UInt64(s)) }
        w.varint(UInt64(provenance.correctsPart))
        w.varint(UInt64(provenance.correctedInputs.count))
        for s in provenance.correctedInputs { w.varint(UInt64(s)) }
        w.varint(UInt64(columns.count))
        for c in columns { w.u16(UInt16(c.rawValue)) }
        if let types = aggregate.sketchTypes {
            w.u8(1)
            w.varint(UInt64(types.count))
            for t in types {
                w.varint(UInt64(t.utf8.count))
                w.raw(Array(t.utf8))
            }
        } else {
            w.u8(0)
        }
        for d in dictionaries { GranuleCodec.encodeDictionary(d.values, order: d.order, into: &w) }
        for code in dictionaries[0].order {
            let zone = Array((aggregate.siteZones[UInt32(code)] ?? "").utf8)
            w.varint(UInt64(zone.count))
            w.raw(zone)
        }
        // Column by column: the key columns and counts compress to a byte or two per row once
        // they are not interleaved with the (incompressible) sketch bits.
        w.varint(UInt64(sorted.count))
        spill()
        for g in sorted { w.varint(UInt64(mapped(0, aggregate.keys[g].site))) }
        spill()
        var previousDay: Int64 = 0
        for g in sorted {
            let day = Int64(aggregate.keys[g].day)
            w.zigzag(day - previousDay)
            previousDay = day
        }
        spill()
        for g in sorted { w.varint(UInt64(mapped(1, aggregate.keys[g].type))) }
        spill()
        for d in 0..<columns.count - 2 {
            for g in sorted {
                let c = mapped(d + 2, aggregate.keys[g][d])
                w.varint(c == RollupAggregate.null ? 0 : UInt64(c) + 1)
            }
            spill()
        }
        for g in sorted { w.zigzag(aggregate.events[g]) }
        spill()
        aggregate.finishSketches()
        var sketchBytes: [UInt8] = []
        sketchBytes.reserveCapacity(sorted.count * 8)
        for g in sorted {
            guard aggregate.sketched(aggregate.keys[g].type) else {
                w.varint(0)
                w.varint(0)
                continue
            }
            for kind in 0..<2 { try aggregate.appendSketch(g, kind: kind, framing: &w, file: &sketchBytes) }
        }
        spill()
        w = ByteWriter()
        sketchBytes.withUnsafeBytes { z.feed($0) }
        sketchBytes = []
        z.finish()
        // Level-0 rollup parts (a flush's) are merged again: compressed faster. The block stays
        // zstd even where compressing saved little (rollup rows compress 3–4x).
        var head = ByteWriter(capacity: 16 + PartFormat.blockHeaderSize)
        head.raw(RollupFormat.magic)
        head.u32(RollupFormat.version)
        head.u32(0)
        z.compressed.withUnsafeBytes {
            head.raw(PartWriter.blockHeader(codec: .zstd, encoding: .rollupRows, rawLength: z.rawLength, stored: $0))
        }
        let fileSize = head.count + z.compressed.count + RollupFormat.endMagic.count

        let name = RollupFormat.fileName(partition: partition, number: number, level: level)
        let path = directory + "/" + name
        let tmp = path + PartFormat.temporarySuffix
        let f = try fs.openForWriting(tmp, truncate: true)
        do throws(TallyError) {
            try f.append(head.bytes)
            try f.append(z.compressed)
            try f.append(RollupFormat.endMagic)
            try f.sync()
        } catch {
            f.close()
            try? fs.remove(tmp)
            throw error
        }
        f.close()
        try fs.rename(tmp, to: path)
        try fs.syncDirectory(directory)
        var siteNames = StringColumn()
        for code in dictionaries[0].order { dictionaries[0].values.withValue(Int(code)) { siteNames.append($0) } }
        return RollupPart(name: name, path: path, number: number, rollup: def.name, partition: partition, level: level,
                          fileSize: fileSize, provenance: provenance, columns: columns,
                          sketchTypes: aggregate.sketchTypes, siteNames: siteNames,
                          siteZones: dictionaries[0].order.map { aggregate.siteZones[UInt32($0)] ?? "" },
                          rows: sorted.count, file: try fs.openForReading(path), cache: cache, pinned: nil)
    }

    // MARK: Reading

    /// Opens a rollup part file: reads and checks all of it; with a cache, keeps the file open
    /// and leaves the rows to the cache.
    ///
    /// With a cache, only the payload's header is decompressed (the checksum still covers the
    /// whole file): the rows wait for the first query or merge that needs them. Decoding every
    /// part at open was most of opening a big store (an opened 10M-event store peaked at
    /// ~195 MB of heap, two parts' payloads and unpacked columns at a time, heaptrack).
    static func open(path: String, name: String, number: Int, fs: any FileSystem,
                     cache: RollupRowsCache?) throws(TallyError) -> RollupPart {
        let file = try fs.openForReading(path)
        do throws(TallyError) {
            let bytes = try file.read(at: 0, count: try file.size())
            guard let cache else {
                let decoded = try decode(bytes, name: name)
                file.close()
                return RollupPart(name: name, path: path, number: number, rollup: decoded.rollup, partition: decoded.partition,
                                  level: decoded.level, fileSize: decoded.fileSize, provenance: decoded.provenance,
                                  rows: decoded.rows)
            }
            let h = try header(bytes, name: name)
            return RollupPart(name: name, path: path, number: number, rollup: h.rollup, partition: h.partition, level: h.level,
                              fileSize: bytes.count, provenance: h.provenance, columns: h.columns, sketchTypes: h.sketchTypes,
                              siteNames: h.dictionaries[0], siteZones: h.zones, rows: h.rows, file: file, cache: cache,
                              pinned: nil)
        } catch {
            file.close()
            throw error
        }
    }

    /// Checks a rollup part file's framing and block checksum and reads its payload's header,
    /// decompressing as little of the payload as it takes.
    static func header(_ bytes: [UInt8], name: String) throws(TallyError) -> Header {
        let version = try checkFraming(bytes, name: name)
        return try bytes.withBytes { (b) throws(TallyError) -> Header in
            let (codec, encoding, rawLength, body) = try Part.checkBlock(UnsafeRawBufferPointer(rebasing: b[16..<(b.count - 8)]),
                                                                         offset: 16, what: "rows", name: name)
            guard encoding == .rollupRows else { throw .corruption("rollup part \(name): block at offset 16 is not rollup rows") }
            var want = min(rawLength, 1 << 16)
            while true {
                var prefix: [UInt8] = []
                do {
                    if codec == .zstd {
                        prefix = try Codec.zstdPrefix(body, count: want)
                    } else {
                        try Codec.decompress(body, codec: codec, rawLength: rawLength, into: &prefix)
                    }
                } catch {
                    throw .corruption("rollup part \(name) rows block at offset 16: \(error)")
                }
                do {
                    return try prefix.withUnsafeBytes { p in
                        var r = ByteReader(p)
                        return try parseHeader(&r, version: version, payloadSize: rawLength)
                    }
                } catch is ByteReader.Truncated where prefix.count == want && want < rawLength {
                    // The header runs past the bytes decompressed so far: four times as many.
                    want = min(rawLength, want * 4)
                } catch {
                    let short = prefix.count < want ? " (its rows block decompresses to \(prefix.count) of \(rawLength) bytes)" : ""
                    throw .corruption("malformed rollup part \(name)\(short): \(error)")
                }
            }
        }
    }

    /// Checks the magic numbers and version of a rollup part file; returns the version.
    static func checkFraming(_ bytes: [UInt8], name: String) throws(TallyError) -> UInt32 {
        let size = bytes.count
        guard size >= 16 + PartFormat.blockHeaderSize + 8 else {
            throw .corruption("rollup part \(name) is \(size) bytes, shorter than its framing")
        }
        guard Array(bytes[0..<8]) == RollupFormat.magic else {
            throw .corruption("rollup part \(name) does not start with the rollup magic at offset 0")
        }
        let version = bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) }
        guard version == 1 || version == RollupFormat.version else {
            throw TallyError(.unsupportedVersion,
                             "rollup part \(name) has format version \(version); this build reads versions 1 and \(RollupFormat.version)")
        }
        guard Array(bytes[(size - 8)...]) == RollupFormat.endMagic else {
            throw .corruption("rollup part \(name) has no end magic at offset \(size - 8) (truncated?)")
        }
        return version
    }

    /// What a rollup part file holds.
    struct Decoded {
        var rollup: String
        var partition: Partition
        var level: Int
        var fileSize: Int
        var provenance: RollupProvenance
        var rows: RollupRows
    }

    /// The payload's fields before the rows.
    struct Header {
        var rollup: String
        var partition: Partition
        var level: Int
        var provenance: RollupProvenance
        var columns: [EventColumn]
        var sketchTypes: [String]?
        var dictionaries: [StringColumn]
        var zones: [String]
        var rows: Int
    }

    /// Reads the header of a payload of `payloadSize` bytes (`r` may hold only its first bytes).
    static func parseHeader(_ r: inout ByteReader, version: UInt32, payloadSize: Int) throws -> Header {
        let rollup = String(decoding: try r.raw(try r.count(limit: 256)), as: UTF8.self)
        guard let partition = Partition(yyyymm: Int(try r.u32())) else {
            throw GranuleCodec.Malformed(message: "invalid partition")
        }
        let level = try r.count(limit: 1000)
        var p = RollupProvenance()
        p.coverage = try r.count()
        for _ in 0..<(try r.count(limit: 1 << 20)) { p.sources.append(try r.count()) }
        p.correctsPart = try r.count()
        for _ in 0..<(try r.count(limit: 1 << 20)) { p.correctedInputs.append(try r.count()) }
        let columnCount = try r.count(limit: 2 + RollupDefinition.maxDimensions)
        var columns: [EventColumn] = []
        for _ in 0..<columnCount {
            let id = Int(try r.u16())
            guard let c = EventColumn(rawValue: id) else { throw GranuleCodec.Malformed(message: "unknown column id \(id)") }
            columns.append(c)
        }
        guard columns.count >= 2, columns[0] == .siteID, columns[1] == .eventType else {
            throw GranuleCodec.Malformed(message: "key columns do not start with site_id, event_type")
        }
        var sketchTypes: [String]?
        if version >= 2 {
            switch try r.u8() {
            case 0: break
            case 1:
                var types: [String] = []
                for _ in 0..<(try r.count(limit: 1 << 16)) {
                    types.append(String(decoding: try r.raw(try r.count(limit: 1 << 16)), as: UTF8.self))
                }
                sketchTypes = types
            case let flag:
                throw GranuleCodec.Malformed(message: "sketch types flag \(flag) is not 0 or 1")
            }
        }
        var dictionaries: [StringColumn] = []
        for _ in columns {
            let n = try r.count(limit: payloadSize)
            var col = StringColumn()
            for _ in 0..<n { col.append(try r.raw(try r.count(limit: r.remaining))) }
            dictionaries.append(col)
        }
        var zones: [String] = []
        for _ in 0..<dictionaries[0].count {
            zones.append(String(decoding: try r.raw(try r.count(limit: 256)), as: UTF8.self))
        }
        let rows = try r.count(limit: payloadSize)
        return Header(rollup: rollup, partition: partition, level: level, provenance: p, columns: columns,
                      sketchTypes: sketchTypes, dictionaries: dictionaries, zones: zones, rows: rows)
    }

    /// Checks and decodes the bytes of a whole rollup part file.
    static func decode(_ bytes: [UInt8], name: String) throws(TallyError) -> Decoded {
        let size = bytes.count
        let version = try checkFraming(bytes, name: name)
        let (encoding, payload) = try Part.decodeBlock(Array(bytes[16..<(size - 8)]), offset: 16, what: "rows", name: name)
        guard encoding == .rollupRows else { throw .corruption("rollup part \(name): block at offset 16 is not rollup rows") }
        do {
            return try payload.withUnsafeBytes { b in
                var r = ByteReader(b)
                let h = try parseHeader(&r, version: version, payloadSize: b.count)
                let (rollup, partition, level, p, columns) = (h.rollup, h.partition, h.level, h.provenance, h.columns)
                let (sketchTypes, dictionaries, zones, rows) = (h.sketchTypes, h.dictionaries, h.zones, h.rows)
                // Arrays sized up front (the part packs them; its sketches it keeps as they are).
                var sites = [UInt32](), days = [Int32](), types = [UInt32](), events = [Int64]()
                sites.reserveCapacity(rows)
                days.reserveCapacity(rows)
                types.reserveCapacity(rows)
                events.reserveCapacity(rows)
                var dims = [[UInt32]](repeating: [], count: columns.count - 2)
                for d in dims.indices { dims[d].reserveCapacity(rows) }
                var offsets: [UInt32] = [0]
                offsets.reserveCapacity(2 * rows + 1)
                var sketches: [UInt8] = []
                func code(_ k: Int) throws -> UInt32 {
                    let c = try r.count(limit: Int(UInt32.max))
                    guard c < dictionaries[k].count else { throw GranuleCodec.Malformed(message: "code \(c) outside a dictionary of \(dictionaries[k].count)") }
                    return UInt32(c)
                }
                if version == 1 {
                    // Row by row, each row's sketches after its key.
                    for _ in 0..<rows {
                        sites.append(try code(0))
                        days.append(Int32(truncatingIfNeeded: try r.zigzag()))
                        types.append(try code(1))
                        for d in 0..<columns.count - 2 {
                            let c = try r.count(limit: dictionaries[d + 2].count)
                            dims[d].append(c == 0 ? RollupAggregate.null : UInt32(c - 1))
                        }
                        events.append(try r.zigzag())
                        for _ in 0..<2 {
                            // Whole serialized sketches, held as `StoredSketch`s: sparse ones of the
                            // default precision as x-even (their bits checked), the rest x-odd.
                            let n = try r.count(limit: r.remaining)
                            let bytes = try r.raw(n)
                            if n >= 3 && bytes[0] == 3 && Int(bytes[1]) == HyperLogLog.defaultPrecision {
                                var h = ByteReader(bytes)
                                h.offset = 2
                                if let entries = try? h.count(limit: 1 << HyperLogLog.defaultPrecision), entries > 0,
                                   case let bits = UnsafeRawBufferPointer(rebasing: bytes[h.offset...]),
                                   (try? HyperLogLog(sparseRiceCoded: bits, entries: entries)) != nil
                                {
                                    ByteWriter.appendVarint(UInt64(entries) << 1, to: &sketches)
                                    sketches.append(contentsOf: bits)
                                    offsets.append(UInt32(truncatingIfNeeded: sketches.count))
                                    continue
                                }
                            }
                            if n > 0 { ByteWriter.appendVarint(UInt64(n) << 1 | 1, to: &sketches) }
                            sketches.append(contentsOf: bytes)
                            offsets.append(UInt32(truncatingIfNeeded: sketches.count))
                        }
                    }
                } else {
                    // Column by column, then the sketches' lengths, then their bytes.
                    for _ in 0..<rows { sites.append(try code(0)) }
                    var day: Int64 = 0
                    for _ in 0..<rows {
                        day += try r.zigzag()
                        guard let d = Int32(exactly: day) else { throw GranuleCodec.Malformed(message: "day \(day) out of range") }
                        days.append(d)
                    }
                    for _ in 0..<rows { types.append(try code(1)) }
                    for d in 0..<columns.count - 2 {
                        for _ in 0..<rows {
                            let c = try r.count(limit: dictionaries[d + 2].count)
                            dims[d].append(c == 0 ? RollupAggregate.null : UInt32(c - 1))
                        }
                    }
                    for _ in 0..<rows { events.append(try r.zigzag()) }
                    var framing: [UInt64] = []
                    framing.reserveCapacity(2 * rows)
                    for _ in 0..<(2 * rows) { framing.append(try r.varint()) }
                    let stored = UnsafeRawBufferPointer(rebasing: b[r.offset...])
                    // Each sketch keeps its framing varint in front (`StoredSketch`): 1-3 bytes for
                    // a sparse one (capacity is a hint; a large whole sketch takes more).
                    sketches.reserveCapacity(stored.count + 3 * framing.count)
                    var at = 0
                    for x in framing {
                        if x == 0 {
                            // No sketch.
                        } else if x & 1 == 1 {
                            let n = Int(clamping: x >> 1)
                            guard n <= stored.count - at else { throw GranuleCodec.Malformed(message: "a sketch of \(n) bytes") }
                            ByteWriter.appendVarint(x, to: &sketches)
                            sketches.append(contentsOf: UnsafeRawBufferPointer(rebasing: stored[at..<(at + n)]))
                            at += n
                        } else {
                            guard x >> 1 <= UInt64(1 << HyperLogLog.defaultPrecision) else {
                                throw GranuleCodec.Malformed(message: "a sparse sketch of \(x >> 1) entries")
                            }
                            let n = Int(x >> 1)
                            let used = try HyperLogLog.decodeSparseBits(UnsafeRawBufferPointer(rebasing: stored[at...]),
                                                                        entries: n, precision: HyperLogLog.defaultPrecision).bytes
                            ByteWriter.appendVarint(x, to: &sketches)
                            sketches.append(contentsOf: UnsafeRawBufferPointer(rebasing: stored[at..<(at + used)]))
                            at += used
                        }
                        offsets.append(UInt32(truncatingIfNeeded: sketches.count))
                    }
                    r.offset += at
                }
                guard r.isAtEnd else { throw GranuleCodec.Malformed(message: "\(r.remaining) bytes after \(rows) rows") }
                // Queries find a site's days by binary search.
                for i in sites.indices.dropFirst() where (sites[i], days[i]) < (sites[i - 1], days[i - 1]) {
                    throw GranuleCodec.Malformed(message: "row \(i) is out of (site, day) order")
                }
                guard sketches.count < Int(UInt32.max) else { throw GranuleCodec.Malformed(message: "sketches past 4 GiB") }
                sketches = exactCapacity(sketches)
                let rowData = RollupRows(name: name, columns: columns, sketchTypes: sketchTypes, dictionaries: dictionaries,
                                         siteZones: zones, sites: sites, days: days, types: types, dimensions: dims,
                                         events: events, sketchBytes: sketches, sketchOffsets: offsets)
                return Decoded(rollup: rollup, partition: partition, level: level, fileSize: size, provenance: p, rows: rowData)
            }
        } catch let e as TallyError {
            throw e
        } catch {
            throw .corruption("malformed rollup part \(name): \(error)")
        }
    }
}


/// What `tally inspect` shows of one rollup part.
public struct RollupPartInspection: Sendable {
    public var rollup: String
    public var month: Partition
    public var level: Int
    public var rows: Int
    public var fileBytes: Int
    /// Highest raw part number whose rows it holds; rollup parts it replaced; for a correction,
    /// the merged raw part and its inputs.
    public var coverage: Int
    public var sources: [Int]
    public var correctsPart: Int?
    public var correctedInputs: [Int]
    /// Key columns (site, event type, dimensions) with their dictionary sizes.
    public var columns: [(name: String, distinct: Int)]
    public var sketchTypes: [String]?
    /// Per site: its rows and the time zone of its days ("" = rows of several zones).
    public var sites: [(site: String, rows: Int, zone: String)]
    public var firstDay: Int32?
    public var lastDay: Int32?
    public var events: Int64
    /// Rows carrying sketches; bytes of the visitor and session sketches; per-row sketch sizes
    /// (both sketches of a row) at the minimum, median and maximum.
    public var sketchedRows: Int
    public var visitorSketchBytes: Int
    public var sessionSketchBytes: Int
    public var rowSketchBytes: (min: Int, median: Int, max: Int)?
}

extension RollupPart {
    /// Opens a rollup part file on its own (`tally inspect`), naming the file in any error.
    public static func open(path: String, fileSystem fs: any FileSystem = PosixFileSystem()) throws(TallyError) -> RollupPart {
        let name = String(path.split(separator: "/").last ?? "")
        guard let parsed = RollupFormat.parseFileName(name) else {
            throw TallyError(.invalidArgument, "\(path): not a rollup part file name (expected NNNNNN_N_N\(RollupFormat.fileExtension))")
        }
        return try open(path: path, name: name, number: parsed.number, fs: fs, cache: nil)
    }

    /// What `tally inspect` shows (the rows are loaded if they are not in memory).
    public func inspection() throws(TallyError) -> RollupPartInspection {
        let data = try loadRows()
        let (sketchOffsets, sites, days, dictionaries) = (data.sketchOffsets, data.sites, data.days, data.dictionaries)
        var perRow: [Int] = []
        var visitorBytes = 0, sessionBytes = 0
        for r in 0..<data.rows {
            let v = Int(sketchOffsets[2 * r + 1] - sketchOffsets[2 * r])
            let s = Int(sketchOffsets[2 * r + 2] - sketchOffsets[2 * r + 1])
            visitorBytes += v
            sessionBytes += s
            if v + s > 0 { perRow.append(v + s) }
        }
        perRow.sort()
        var siteRows: [UInt32: Int] = [:]
        for r in 0..<data.rows { siteRows[sites[r], default: 0] += 1 }
        return RollupPartInspection(
            rollup: rollup, month: partition, level: level, rows: data.rows, fileBytes: fileSize,
            coverage: provenance.coverage, sources: provenance.sources,
            correctsPart: provenance.correctsPart == 0 ? nil : provenance.correctsPart,
            correctedInputs: provenance.correctedInputs,
            columns: columns.enumerated().map { ($1.name, dictionaries[$0].count) },
            sketchTypes: sketchTypes,
            sites: siteRows.keys.sorted().map { (dictionaries[0].string(at: Int($0)) ?? "", siteRows[$0]!, siteZones[Int($0)]) },
            firstDay: (0..<data.rows).map { days[$0] }.min(), lastDay: (0..<data.rows).map { days[$0] }.max(),
            events: data.totalEvents,
            sketchedRows: perRow.count, visitorSketchBytes: visitorBytes, sessionSketchBytes: sessionBytes,
            rowSketchBytes: perRow.isEmpty ? nil : (perRow[0], perRow[perRow.count / 2], perRow[perRow.count - 1]))
    }
}
