import Foundation

/// Hooks for fault-injection tests: they leave the store as a crash at a chosen moment would.
extension EventStore {
    /// Stops the WAL writer and flusher and releases the directory lock without flushing:
    /// the data directory is left as if the process had died after its last acknowledgement.
    @_spi(Testing) public func abandonForTesting() throws(TallyError) {
        state.withLock { $0.closed = true }
        wakeFlusher()
        wal.close()
        lock.release()
    }

    /// How many flat sketch entries a rollup aggregate holds before folding them into its
    /// groups' sketches (1M by default). The rollup parts written are the same at any value.
    @_spi(Testing) public static var rollupFlatLimitForTesting: Int {
        get { RollupAggregate.flatLimit.load(ordering: .relaxed) }
        set { RollupAggregate.flatLimit.store(newValue, ordering: .relaxed) }
    }

    /// Sessions per session-summary block written (8,192 by default), and sessions a merge
    /// holds while it combines its inputs' summaries before it moves out those that are whole
    /// (16,384). Queries answer the same at any values, for sessions with no gap of more than
    /// `SessionExecutor.sessionGap` between their events.
    @_spi(Testing) public static var sessionSummaryLimitsForTesting: (blockSessions: Int, combineWindow: Int) {
        get {
            (SessionSummaryFile.blockSessions.load(ordering: .relaxed), SessionSummaryFile.combineWindow.load(ordering: .relaxed))
        }
        set {
            SessionSummaryFile.blockSessions.store(newValue.blockSessions, ordering: .relaxed)
            SessionSummaryFile.combineWindow.store(newValue.combineWindow, ordering: .relaxed)
        }
    }

    /// Writes parts for the buffered rows of `onlyPartitions` only, as a flush that died
    /// between publishing one month's part and the next would leave the directory.
    @_spi(Testing) public func flushForTesting(onlyPartitions: Set<Partition>) throws(TallyError) {
        let (batches, lsn) = state.withLock { st in (st.active.map(\.batch), st.active.last?.lsn ?? 0) }
        var keep = EventBatch()
        for b in batches {
            let times = b[int: .occurredAt].values
            for i in 0..<b.count where onlyPartitions.contains(Partition(ms: times[i])) { keep.append(from: b, row: i) }
        }
        _ = try writeParts([keep], walLSN: lsn)
    }

    /// Writes the buffered rows' raw parts and rollup parts as a flush does, then removes all
    /// but the first `keptRollupParts` rollup parts (rollups in definition order, months in
    /// order) and publishes nothing: a flush that died while its rollup parts were being
    /// written, before the coverage files committed them.
    @_spi(Testing) public func flushForTesting(keptRollupParts: Int) throws(TallyError) {
        let (batches, lsn) = state.withLock { st in (st.active.map(\.batch), st.active.last?.lsn ?? 0) }
        let months = Self.sortedPartitions(batches)
        let parts = try writeParts(months, walLSN: lsn).parts
        let rollups = try writeRollups(months.map(\.rows), coverage: parts.map(\.number).max() ?? 0)
        let written = options.rollups.flatMap { def in (rollups[def.name] ?? []).sorted { $0.number < $1.number } }
        for p in written.dropFirst(keptRollupParts) { try fs.remove(p.path) }
    }
}

extension RollupPart {
    /// Whether `other` holds the same rows, dictionaries, sketches and provenance (a part as
    /// written against the same file opened).
    @_spi(Testing) public func sameContent(as other: RollupPart) -> Bool {
        guard name == other.name && number == other.number && rollup == other.rollup && partition == other.partition
            && level == other.level && fileSize == other.fileSize && provenance == other.provenance
            && columns == other.columns && sketchTypes == other.sketchTypes && siteZones == other.siteZones
            && rows == other.rows,
            let mine = try? loadRows(), let theirs = try? other.loadRows()
        else { return false }
        return mine.sameContent(as: theirs)
    }

    /// Whether the sketch offsets are kept in full (a run of dense sketches spans 64 KiB) rather
    /// than in 16-bit distances from a block's first.
    @_spi(Testing) public func sketchOffsetsInFullForTesting() throws(TallyError) -> Bool { try loadRows().sketchOffsets.isWide }

    /// Row r: its key texts (site, event type, dimensions; nil for null), local day, and
    /// visitor and session sketches.
    @_spi(Testing) public func rowForTesting(_ r: Int) throws(TallyError)
        -> (key: [String?], day: Int32, visitors: HyperLogLog, sessions: HyperLogLog)
    {
        let rows = try loadRows()
        return (columns.indices.map { rows.value($0, r) }, rows.days[r], try rows.visitors(r), try rows.sessions(r))
    }
}

extension EventStore {
    /// The rollup row cache: bytes and parts' rows kept, rows read back from files.
    @_spi(Testing) public var rollupCacheForTesting: (bytes: Int, parts: Int, loads: Int) {
        let c = rollupCache.counters
        return (c.bytes, c.parts, c.loads)
    }

    /// Drops every row the rollup cache keeps.
    @_spi(Testing) public func clearRollupCacheForTesting() { rollupCache.removeAll() }
}

extension RollupRows {
    func sameContent(as other: RollupRows) -> Bool {
        columns == other.columns && sketchTypes == other.sketchTypes && siteZones == other.siteZones
            && dictionaries.count == other.dictionaries.count
            && zip(dictionaries, other.dictionaries).allSatisfy { a, b in
                a.count == b.count && (0..<a.count).allSatisfy { a.string(at: $0) == b.string(at: $0) }
            }
            && sites == other.sites && days == other.days && types == other.types && dimensions == other.dimensions
            && events == other.events && sketchBytes == other.sketchBytes && sketchOffsets == other.sketchOffsets
    }
}

extension RollupPart {
    /// Rewrites a rollup part whose rows all carry sketches (no sketch types) in format
    /// version 1 — no sketch-types byte, every sketch as varint length + serialized form, sparse
    /// ones as kind 1 (varint deltas at p' = 25, their p' = 17 entries widened) — old data for
    /// the compatibility test.
    @_spi(Testing) public static func downgradeToVersion1ForTesting(_ path: String) throws {
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        let (_, payload) = try Part.decodeBlock(Array(bytes[16..<(bytes.count - 8)]), offset: 16, what: "rows", name: path)
        let part = try RollupPart.open(path: path, name: (path as NSString).lastPathComponent, number: 0,
                                       fs: PosixFileSystem(), cache: nil).loadRows()
        precondition(part.sketchTypes == nil, "the part has sketch types; version 1 cannot say so")
        // The header up to the sketch-types byte is the same in both versions.
        let flagOffset = try payload.withUnsafeBytes { b -> Int in
            var r = ByteReader(b)
            _ = try r.raw(try r.count(limit: 256))
            _ = try r.u32()
            _ = try r.count()
            _ = try r.count()
            for _ in 0..<(try r.count()) { _ = try r.count() }
            _ = try r.count()
            for _ in 0..<(try r.count()) { _ = try r.count() }
            for _ in 0..<(try r.count()) { _ = try r.u16() }
            return r.offset
        }
        var w = ByteWriter()
        w.raw(payload[0..<flagOffset])
        for d in part.dictionaries {
            w.varint(UInt64(d.count))
            for i in 0..<d.count { d.withValue(i) { v in w.varint(UInt64(v.count)); w.raw(v) } }
        }
        for zone in part.siteZones {
            w.varint(UInt64(zone.utf8.count))
            w.raw(Array(zone.utf8))
        }
        w.varint(UInt64(part.rows))
        for r in 0..<part.rows {
            w.varint(UInt64(part.sites[r]))
            w.zigzag(Int64(part.days[r]))
            w.varint(UInt64(part.types[r]))
            for d in part.dimensions { w.varint(d[r] == RollupAggregate.null ? 0 : UInt64(d[r]) + 1) }
            w.zigzag(part.events[r])
            for sketch in [try part.visitors(r), try part.sessions(r)] {
                var bytes = sketch.serialized()
                if !sketch.isDense {
                    var kind1 = ByteWriter()
                    kind1.u8(1)
                    kind1.u8(UInt8(sketch.precision))
                    kind1.varint(UInt64(sketch.sparse.count))
                    var previous: UInt64 = 0
                    for e in sketch.sparse {
                        let index = UInt64(e >> 6), rank = UInt64(e & 63)
                        // A p' = 17 entry as a p' = 25 entry that reads back the same: ranks
                        // 1–8 come from the 8 extra index bits, higher ones from rank25 (rank
                        // 0: the rank comes from the index bits and any value reads back).
                        let (low, rank25): (UInt64, UInt64) =
                            rank == 0 ? (0, 1) : rank <= 8 ? (1 << (8 - rank), 1) : (0, rank - 8)
                        let wide = ((index << 8) | low) << 6 | rank25
                        kind1.varint(wide - previous)
                        previous = wide
                    }
                    bytes = kind1.bytes
                }
                w.varint(UInt64(bytes.count))
                w.raw(bytes)
            }
        }
        var file = ByteWriter()
        file.raw(RollupFormat.magic)
        file.u32(1)
        file.u32(0)
        file.raw(PartWriter.frame(w.bytes, codec: .zstd, encoding: .rollupRows, level: Codec.zstdLevel))
        file.raw(RollupFormat.endMagic)
        try Data(file.bytes).write(to: URL(fileURLWithPath: path))
    }
}

extension EventStore {
    /// The share of `absent` keys that the Bloom filter of sealed `keys` lets through.
    @_spi(Testing) public static func dedupeFilterFalsePositivesForTesting(keys: [UInt64], absent: [UInt64]) -> Double {
        let sealed = SealedKeys(keys.sorted(), path: nil)
        return Double(absent.filter { sealed.mayContain($0) }.count) / Double(absent.count)
    }
}

/// One generation's dedupe shards on their own (`ShardedUInt64Set`), sealing in place.
@_spi(Testing) public struct DedupeShardsForTesting {
    private var keys: ShardedUInt64Set

    public init(directory: String, sealAt: Int) { keys = ShardedUInt64Set(directory: directory, tag: 0, sealAt: sealAt) }

    /// Adds `k` unless present; false if it was.
    public mutating func insert(_ k: UInt64) -> Bool {
        guard !keys.contains(k) else { return false }
        var inline: [SealJob]? = nil
        keys.insert(k, jobs: &inline)
        return true
    }

    /// Takes `k` back (as a failed WAL write does).
    public mutating func remove(_ k: UInt64) { keys.remove(k) }
    public func contains(_ k: UInt64) -> Bool { keys.contains(k) }
    public var runCount: Int { keys.runCount }
    /// Keys in sealed runs written to files.
    public var fileCount: Int { keys.fileCount }
}

extension EventStore {
    /// Sorted `keys` sealed into a run in a file under `directory` (as a shard seals them), then
    /// each of `probes` searched for in the file, the Bloom filter aside. Nil if the file could
    /// not be written.
    @_spi(Testing) public static func sealedKeysFileSearchForTesting(keys: [UInt64], probes: [UInt64], directory: String)
        -> [Bool]?
    {
        let sealed = SealedKeys(keys.sorted(), path: directory + "/search-test.keys")
        guard sealed.inFile else { return nil }
        return probes.map { sealed.search($0) }
    }
}
