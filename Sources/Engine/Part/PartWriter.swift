import Dispatch

/// Writes a sorted batch of one partition as a part file, atomically: the bytes go to
/// `NAME.part.tmp`, which is fsynced, renamed to `NAME.part`, and the directory fsynced.
/// A part is therefore visible whole or not at all; `.tmp` leftovers are deleted on open.
struct PartWriter {
    let fs: any FileSystem
    let directory: String
    var granuleRows = PartFormat.defaultGranuleRows

    struct Written {
        let name: String
        let footer: PartFooter
        let fileSize: Int
        /// The part dictionaries with each row's code (a flush's part; empty for a merge's),
        /// which the flush's rollups code their values by.
        var dictionaries: [EventColumn: PartDictionary] = [:]
    }

    /// Writes `batch`, whose rows are sorted by the sort key and all of one partition.
    func write(_ batch: EventBatch, partition: Partition, number: Int, level: Int, walLSN: UInt64)
        throws(TallyError) -> Written
    {
        precondition(batch.count > 0, "a part holds at least one row")
        precondition(batch.columns.count == EventColumn.allCases.count, "a part holds every column")
        let rowCount = batch.count
        // A part a merge will write again is compressed faster (`Codec.flushZstdLevel`).
        let zstdLevel = level == 0 ? Codec.flushZstdLevel : Codec.zstdLevel
        var file = try PartFileBuilder(fs: fs, directory: directory,
                                       name: PartFormat.fileName(partition: partition, number: number, level: level))
        defer { file.close() }

        // Part dictionaries: always for low-cardinality columns, and for other text columns
        // when they repeat enough (distinct values ≤ rows / 4: paths, URLs, titles). Measured on
        // 1M generated events: 45.3 bytes/event with them, 53.5 without (BENCHMARKS.md).
        // Codes are assigned in byte order, so comparing codes compares values (the primary
        // index relies on it). `codes[k]` is the code of row k.
        let dictionaryColumns = EventColumn.allCases.filter { $0.kind == .lowCardinality || $0.kind == .string }
        let built = parallelMap(dictionaryColumns) { c in Self.dictionary(c, of: batch) }
        var dictionaries: [EventColumn: PartDictionary] = [:]
        for (c, d) in zip(dictionaryColumns, built) where d != nil { dictionaries[c] = d }
        let partDictionaries = dictionaries

        let siteCodes = dictionaries[.siteID]!.codes
        let typeCodes = dictionaries[.eventType]!.codes
        let times = batch[int: .occurredAt].values
        var start = 0
        while start < rowCount {
            let range = start..<min(rowCount, start + granuleRows)
            // Columns and bloom filters of the granule are encoded and compressed in parallel,
            // then written in column order.
            let jobs = EventColumn.allCases.map { GranuleJob.column($0) } + PartFormat.bloomColumns.map { GranuleJob.bloom($0) }
            let blocks = parallelMap(jobs) { job -> EncodedBlock in
                switch job {
                case .column(let c):
                    return Self.encodeColumn(c, batch: batch, range: range, dictionary: partDictionaries[c], level: zstdLevel)
                case .bloom(let c):
                    return Self.encodeBloom(batch[string: c], range)
                }
            }
            try file.addGranule(times: times[range], received: batch[int: .receivedAt].values[range],
                                sites: (siteCodes[range.lowerBound], siteCodes[range.upperBound - 1]),
                                types: (typeCodes[range.lowerBound], typeCodes[range.upperBound - 1]), blocks: blocks)
            start = range.upperBound
        }
        var written = try file.finish(dictionaries: dictionaries.mapValues { ($0.values, $0.order) }, partition: partition,
                                      granuleRows: granuleRows, walLSN: walLSN, level: level, sources: [], zstdLevel: zstdLevel)
        written.dictionaries = dictionaries
        return written
    }

    // MARK: Pure pieces (run in parallel)

    struct PartDictionary: Sendable {
        /// Distinct values in first-seen order; `order` lists them sorted; `codes[k]` is the
        /// sorted code of row k of the part.
        var values: StringColumn
        var order: [Int32]
        var codes: [UInt32]
    }

    enum GranuleJob: Sendable {
        case column(EventColumn)
        case bloom(EventColumn)
    }

    struct EncodedBlock: Sendable {
        /// Header and stored bytes.
        var bytes: [UInt8]
        var rawLength: Int
        var nullCount: Int
    }

    /// The part dictionary of `c`: always for low-cardinality columns, and for other text
    /// columns when they repeat enough (distinct values ≤ rows / 4: paths, URLs, titles) or the
    /// part is small (≤ 4,096 rows). Measured on 1M generated events: 45.3 bytes/event with
    /// them, 53.5 without (BENCHMARKS.md). Codes are assigned in byte order, so comparing codes
    /// compares values (the primary index relies on it).
    ///
    /// Small parts keep the dictionary whatever its size: a merge keeps a column
    /// dictionary-coded only when every input is, and the few hundred rows a flush leaves in
    /// the month before (at 1M events) otherwise turned page_url into values for the whole
    /// merged month (2.14 → 3.10 bytes/event for that column). Up to the eleventh session
    /// "small" was ≤ 65,536 rows, which kept every flush's `properties` (~37 % distinct) in a
    /// dictionary: its interning cost CPU at every flush, and a merge of flushed parts, which
    /// writes `properties` as values, had to hold each input's whole dictionary to read them
    /// (42 MB at a 10M-event `tally ingest`'s peak heap, heaptrack; BENCHMARKS.md).
    static let alwaysDictionaryRows = 1 << 12

    static func dictionary(_ c: EventColumn, of batch: EventBatch) -> PartDictionary? {
        let col = batch[string: c]
        var interner = ByteStringInterner()
        var raw = [Int32](repeating: -1, count: batch.count)
        // Past this many distinct values the column is stored as values: interning stops there.
        let limit = c.kind == .string && batch.count > Self.alwaysDictionaryRows ? batch.count / 4 : Int.max
        let complete = col.bytes.withUnsafeBytes { b in
            col.ends.withUnsafeBufferPointer { e in
                // Rows are grouped by visitor, so a value often repeats the previous row's
                // (country, device, user agent, page): compare before hashing.
                var previous = UnsafeRawBufferPointer(start: nil, count: 0)
                var previousCode: Int32 = -1
                for i in 0..<batch.count where !col.isNull(i) {
                    let s = i == 0 ? 0 : Int(e[i - 1])
                    let value = UnsafeRawBufferPointer(rebasing: b[s..<Int(e[i])])
                    if previousCode >= 0 && ByteOrder.equal(value, previous) {
                        raw[i] = previousCode
                        continue
                    }
                    previousCode = interner.intern(value)
                    if interner.count > limit { return false }
                    previous = value
                    raw[i] = previousCode
                }
                return true
            }
        }
        if !complete { return nil }
        let (ranks, sortedCodes) = interner.sortedRanks()
        let codes = raw.map { $0 < 0 ? 0 : UInt32(ranks[Int($0)]) }
        return PartDictionary(values: interner.values, order: sortedCodes, codes: codes)
    }

    /// One column of one granule as a framed, compressed block.
    static func encodeColumn(_ c: EventColumn, batch: EventBatch, range: Range<Int>, dictionary d: PartDictionary?,
                             level: Int32) -> EncodedBlock
    {
        var payload = ByteWriter(capacity: range.count * 8 + 64)
        let encoding: ColumnEncoding
        var nullCount = 0
        if let d {
            let nulls = batch[string: c].nulls
            nullCount = Self.nullCount(nulls, range)
            encoding = GranuleCodec.encodeCodes(d.codes[range], nulls: nulls, range, dictionarySize: d.values.count,
                                                into: &payload)
        } else {
            nullCount = Self.nullCount(c.kind == .int64 ? batch[int: c].nulls : batch[string: c].nulls, range)
            switch c.kind {
            case .int64 where c == .receivedAt:
                // Live events arrive ms after they occur (differences from occurred_at are tiny);
                // a bulk load of old events gets one received_at per batch (deltas of 0).
                // Whichever needs fewer significant bits wins.
                if GranuleCodec.fromOccurredIsSmaller(batch[int: c], occurred: batch[int: .occurredAt], range) {
                    encoding = GranuleCodec.encodeFromOccurred(batch[int: c], occurred: batch[int: .occurredAt], range,
                                                               into: &payload)
                } else {
                    encoding = GranuleCodec.encodeInt64(batch[int: c], range, delta: true, into: &payload)
                }
            case .int64:
                encoding = GranuleCodec.encodeInt64(batch[int: c], range, delta: PartFormat.usesDelta(c), into: &payload)
            case .identifier where c == .eventID:
                encoding = GranuleCodec.encodeULIDsFromOccurred(batch[string: c], occurred: batch[int: .occurredAt], range,
                                                                into: &payload)
            case .identifier:
                encoding = GranuleCodec.encodeIdentifiers(batch[string: c], range, into: &payload)
            case .string, .lowCardinality:
                encoding = GranuleCodec.encodeStrings(batch[string: c], range, into: &payload)
            }
        }
        return EncodedBlock(bytes: frame(payload.bytes, codec: PartFormat.codec(for: c), encoding: encoding, level: level),
                            rawLength: payload.count, nullCount: nullCount)
    }

    static func nullCount(_ nulls: NullBitmap?, _ range: Range<Int>) -> Int {
        guard let nulls, nulls.nullCount > 0 else { return 0 }
        var n = 0
        for i in range where nulls[i] { n += 1 }
        return n
    }

    /// The bloom filter of one identifier column of one granule (rows `range`), as a block.
    static func encodeBloom(_ col: StringColumn, _ range: Range<Int>) -> EncodedBlock {
        var hashes = [UInt64](repeating: 0, count: range.count)
        for (k, i) in range.enumerated() { hashes[k] = col.withValue(i) { TallyHash.hash($0) } }
        // Distinct keys, counted as runs: rows are grouped by visitor (and so by session), so
        // repeats are adjacent; a value recurring later only makes the filter larger.
        var runs = hashes.isEmpty ? 0 : 1
        for i in hashes.indices.dropFirst() where hashes[i] != hashes[i - 1] { runs += 1 }
        var bloom = SplitBlockBloomFilter(distinctKeys: runs, bitsPerKey: PartFormat.bloomBitsPerKey)
        for h in hashes { bloom.insert(hash: h) }
        let raw = bloom.serialized
        return EncodedBlock(bytes: frame(raw, codec: .none, encoding: .stringPlain, level: Codec.zstdLevel), rawLength: raw.count, nullCount: 0)
    }

    /// A block: the 16-byte header (codec, encoding, lengths, CRC32C) and the stored bytes.
    /// `level`: the zstd level (`Codec.flushZstdLevel` for parts merges will write again).
    static func frame(_ raw: [UInt8], codec: Codec, encoding: ColumnEncoding, level: Int32) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: PartFormat.blockHeaderSize)
        block.reserveCapacity(PartFormat.blockHeaderSize + raw.count / 2)
        let used = raw.withUnsafeBytes { Codec.compress($0, codec: codec, level: level, into: &block) }
        let header = block.withUnsafeBytes {
            blockHeader(codec: used, encoding: encoding, rawLength: raw.count,
                        stored: UnsafeRawBufferPointer(rebasing: $0[PartFormat.blockHeaderSize...]))
        }
        block.replaceSubrange(0..<PartFormat.blockHeaderSize, with: header)
        return block
    }

    /// The header that frames `stored` (FORMAT.md, "Part file"): codec, encoding, raw and stored
    /// lengths, and the CRC32C of header bytes 0..11 followed by the stored bytes.
    static func blockHeader(codec: Codec, encoding: ColumnEncoding, rawLength: Int,
                            stored: UnsafeRawBufferPointer) -> [UInt8] {
        var header = ByteWriter(capacity: PartFormat.blockHeaderSize)
        header.u8(codec.rawValue)
        header.u8(encoding.rawValue)
        header.u16(0)
        header.u32(UInt32(rawLength))
        header.u32(UInt32(stored.count))
        let crc = header.bytes.withUnsafeBytes { CRC32C.checksum($0) }
        header.u32(CRC32C.checksum(stored, continuing: crc))
        return header.bytes
    }
}

/// `transform` applied to every element on the machine's cores (the calling thread and
/// `BackgroundWorkers`), results in order. For CPU-bound pieces of a flush or merge; never for
/// I/O, nor for queries (they run at the priority of requests, on Dispatch's threads).
func parallelMap<T: Sendable, R: Sendable>(_ items: [T], _ transform: @escaping @Sendable (T) -> R) -> [R] {
    let results = ResultSlots<R>(count: items.count)
    BackgroundWorkers.shared.perform(items.count) { i in results.set(i, transform(items[i])) }
    return results.values
}

/// `parallelMap`, for tests of `BackgroundWorkers`.
@_spi(Testing) public func parallelMapForTesting<T: Sendable, R: Sendable>(_ items: [T], _ transform: @escaping @Sendable (T) -> R) -> [R] {
    parallelMap(items, transform)
}

/// Slots written once each from `parallelMap`'s calls (disjoint indices).
final class ResultSlots<R>: @unchecked Sendable {
    private let slots: UnsafeMutableBufferPointer<R?>
    init(count: Int) { slots = .allocate(capacity: count); slots.initialize(repeating: nil) }
    deinit {
        slots.deinitialize()
        slots.deallocate()
    }
    func set(_ i: Int, _ r: R) { slots[i] = r }
    var values: [R] { slots.map { $0! } }
}

/// The bytes of one part file as they are produced, granule by granule: a flush writes a
/// sorted batch through it, a merge the merged rows of its inputs. Output is buffered and
/// appended to `NAME.part.tmp` a megabyte at a time; `finish` adds the dictionaries, footer and
/// trailer, fsyncs, renames to `NAME.part` and fsyncs the directory.
struct PartFileBuilder {
    let fs: any FileSystem
    let directory: String
    let name: String
    private let file: any StoredFile
    private var out = ByteWriter(capacity: 1 << 20)
    private var offset = 0
    private var columns: [ColumnMeta]
    private var granules: [GranuleMeta] = []
    private var rows = 0
    private var minTime = Int64.max, maxTime = Int64.min, minReceived = Int64.max, maxReceived = Int64.min
    private var closed = false

    var temporaryPath: String { directory + "/" + name + PartFormat.temporarySuffix }
    var rowCount: Int { rows }

    init(fs: any FileSystem, directory: String, name: String) throws(TallyError) {
        self.fs = fs
        self.directory = directory
        self.name = name
        file = try fs.openForWriting(directory + "/" + name + PartFormat.temporarySuffix, truncate: true)
        columns = EventColumn.allCases.map {
            ColumnMeta(column: $0, nullCount: 0, storedBytes: 0, rawBytes: 0, dictionary: .none, dictionarySize: 0,
                       granules: [])
        }
        FileFrame.part.appendHeader(version: PartFormat.version, to: &out)
    }

    /// Appends one granule: its occurred_at and received_at values, the codes of its first
    /// and last site and event type, and its blocks — one per column in `EventColumn.allCases`
    /// order, then one bloom filter per `PartFormat.bloomColumns`.
    mutating func addGranule(times: ArraySlice<Int64>, received: ArraySlice<Int64>, sites: (UInt32, UInt32),
                             types: (UInt32, UInt32), blocks: [PartWriter.EncodedBlock]) throws(TallyError) {
        precondition(blocks.count == EventColumn.allCases.count + PartFormat.bloomColumns.count)
        var g = GranuleMeta(
            rows: times.count, firstRow: rows, minTime: .max, maxTime: .min, firstSite: sites.0, lastSite: sites.1,
            firstDay: Int32(clamping: CivilTime.day(ms: times.first!)),
            lastDay: Int32(clamping: CivilTime.day(ms: times.last!)), firstType: types.0, lastType: types.1, blooms: [])
        for t in times {
            g.minTime = min(g.minTime, t)
            g.maxTime = max(g.maxTime, t)
        }
        minTime = min(minTime, g.minTime)
        maxTime = max(maxTime, g.maxTime)
        for t in received {
            minReceived = min(minReceived, t)
            maxReceived = max(maxReceived, t)
        }
        for (k, block) in blocks.enumerated() {
            let ref = BlockRef(offset: offset + out.count, length: block.bytes.count)
            out.raw(block.bytes)
            if k < columns.count {
                columns[k].granules.append(ref)
                columns[k].storedBytes += ref.length
                columns[k].rawBytes += block.rawLength
                columns[k].nullCount += block.nullCount
            } else {
                g.blooms.append(ref)
            }
        }
        granules.append(g)
        rows += times.count
        if out.count >= 1 << 20 {
            try file.append(out.bytes)
            offset += out.count
            out.bytes.removeAll(keepingCapacity: true)
        }
    }

    /// Writes the dictionaries (values, and the order that sorts them), footer and trailer;
    /// makes the part durable and visible under its name.
    mutating func finish(dictionaries: [EventColumn: (values: StringColumn, order: [Int32])], partition: Partition,
                         granuleRows: Int, walLSN: UInt64, level: Int, sources: [Int],
                         zstdLevel: Int32) throws(TallyError)
        -> PartWriter.Written
    {
        precondition(rows > 0, "a part holds at least one row")
        for (k, c) in EventColumn.allCases.enumerated() {
            guard let d = dictionaries[c] else { continue }
            var payload = ByteWriter(capacity: d.values.bytes.count + d.values.count * 2)
            GranuleCodec.encodeDictionary(d.values, order: d.order, into: &payload)
            let block = PartWriter.frame(payload.bytes, codec: .zstd, encoding: .dictionary, level: zstdLevel)
            let ref = BlockRef(offset: offset + out.count, length: block.count)
            out.raw(block)
            columns[k].dictionary = ref
            columns[k].dictionarySize = d.order.count
            columns[k].storedBytes += ref.length
            columns[k].rawBytes += payload.count
        }
        let footer = PartFooter(
            partition: partition, rows: rows, granuleRows: granuleRows,
            minTime: minTime, maxTime: maxTime, minReceived: minReceived, maxReceived: maxReceived,
            walLSN: walLSN, level: level, sources: sources, columns: columns, granules: granules)
        let footerBytes = footer.serialized()
        FileFrame.part.appendFooter(footerBytes, at: offset + out.count, to: &out)
        try file.append(out.bytes)
        let size = offset + out.count
        try file.sync()
        close()
        let path = directory + "/" + name
        try fs.rename(path + PartFormat.temporarySuffix, to: path)
        try fs.syncDirectory(directory)
        return PartWriter.Written(name: name, footer: footer, fileSize: size)
    }

    mutating func close() {
        if !closed { file.close() }
        closed = true
    }

    /// Closes and deletes the temporary file of a part that will not be finished.
    mutating func abandon() {
        close()
        try? fs.remove(temporaryPath)
    }
}
