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
    }

    /// Writes `batch`, whose rows are sorted by the sort key and all of one partition.
    func write(_ batch: EventBatch, partition: Partition, number: Int, level: Int, walLSN: UInt64)
        throws(TallyError) -> Written
    {
        precondition(batch.count > 0, "a part holds at least one row")
        precondition(batch.columns.count == EventColumn.allCases.count, "a part holds every column")
        let rowCount = batch.count
        let name = PartFormat.fileName(partition: partition, number: number, level: level)
        let path = directory + "/" + name
        let tmp = path + PartFormat.temporarySuffix
        let file = try fs.openForWriting(tmp, truncate: true)
        defer { file.close() }

        var out = ByteWriter(capacity: 1 << 20)
        var offset = 0
        out.raw(PartFormat.magic)
        out.u32(PartFormat.version)
        out.u32(0)

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

        var columns = EventColumn.allCases.map {
            ColumnMeta(column: $0, nullCount: 0, storedBytes: 0, rawBytes: 0, dictionary: .none, dictionarySize: 0,
                       granules: [])
        }
        var granules: [GranuleMeta] = []

        func emit(_ raw: [UInt8], codec: Codec, encoding: ColumnEncoding) -> BlockRef {
            let block = Self.frame(raw, codec: codec, encoding: encoding)
            let ref = BlockRef(offset: offset + out.count, length: block.count)
            out.raw(block)
            return ref
        }

        func drain() throws(TallyError) {
            if out.count >= 1 << 20 {
                try file.append(out.bytes)
                offset += out.count
                out.bytes.removeAll(keepingCapacity: true)
            }
        }

        let siteCodes = dictionaries[.siteID]!.codes
        let typeCodes = dictionaries[.eventType]!.codes
        var minTime = Int64.max, maxTime = Int64.min, minReceived = Int64.max, maxReceived = Int64.min
        var nullCounts = [Int](repeating: 0, count: EventColumn.allCases.count)
        var start = 0
        while start < rowCount {
            let range = start..<min(rowCount, start + granuleRows)
            let times = batch[int: .occurredAt].values
            var g = GranuleMeta(
                rows: range.count, firstRow: start, minTime: .max, maxTime: .min,
                firstSite: siteCodes[range.lowerBound], lastSite: siteCodes[range.upperBound - 1],
                firstDay: Int32(clamping: CivilTime.day(ms: times[range.lowerBound])),
                lastDay: Int32(clamping: CivilTime.day(ms: times[range.upperBound - 1])),
                firstType: typeCodes[range.lowerBound], lastType: typeCodes[range.upperBound - 1], blooms: [])
            for t in times[range] {
                g.minTime = min(g.minTime, t)
                g.maxTime = max(g.maxTime, t)
            }
            minTime = min(minTime, g.minTime)
            maxTime = max(maxTime, g.maxTime)
            for t in batch[int: .receivedAt].values[range] {
                minReceived = min(minReceived, t)
                maxReceived = max(maxReceived, t)
            }
            // Columns and bloom filters of the granule are encoded and compressed in parallel,
            // then written in column order.
            let jobs = EventColumn.allCases.map { GranuleJob.column($0) } + PartFormat.bloomColumns.map { GranuleJob.bloom($0) }
            let blocks = parallelMap(jobs) { job -> EncodedBlock in
                switch job {
                case .column(let c):
                    return Self.encodeColumn(c, batch: batch, range: range, dictionary: partDictionaries[c])
                case .bloom(let c):
                    return Self.encodeBloom(batch[string: c], range)
                }
            }
            for (k, block) in blocks.enumerated() {
                let ref = BlockRef(offset: offset + out.count, length: block.bytes.count)
                out.raw(block.bytes)
                if k < EventColumn.allCases.count {
                    columns[k].granules.append(ref)
                    columns[k].storedBytes += ref.length
                    columns[k].rawBytes += block.rawLength
                    nullCounts[k] += block.nullCount
                } else {
                    g.blooms.append(ref)
                }
            }
            granules.append(g)
            try drain()
            start = range.upperBound
        }

        for (k, c) in EventColumn.allCases.enumerated() {
            if let d = dictionaries[c] {
                var payload = ByteWriter(capacity: d.values.bytes.count + d.values.count * 2)
                GranuleCodec.encodeDictionary(d.values, order: d.order, into: &payload)
                let ref = emit(payload.bytes, codec: .zstd, encoding: .dictionary)
                columns[k].dictionary = ref
                columns[k].dictionarySize = d.values.count
                columns[k].storedBytes += ref.length
                columns[k].rawBytes += payload.count
            }
            columns[k].nullCount = nullCounts[k]
        }

        let footer = PartFooter(
            partition: partition, rows: rowCount, granuleRows: granuleRows,
            minTime: minTime, maxTime: maxTime, minReceived: minReceived, maxReceived: maxReceived,
            walLSN: walLSN, level: level, columns: columns, granules: granules)
        let footerBytes = footer.serialized()
        let footerOffset = offset + out.count
        out.raw(footerBytes)
        out.u64(UInt64(footerOffset))
        out.u32(UInt32(footerBytes.count))
        out.u32(CRC32C.checksum(footerBytes))
        out.raw(PartFormat.endMagic)
        try file.append(out.bytes)
        let size = offset + out.count
        try file.sync()
        try fs.rename(tmp, to: path)
        try fs.syncDirectory(directory)
        return Written(name: name, footer: footer, fileSize: size)
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
    /// columns when they repeat enough (distinct values ≤ rows / 4: paths, URLs, titles).
    /// Measured on 1M generated events: 45.3 bytes/event with them, 53.5 without
    /// (BENCHMARKS.md). Codes are assigned in byte order, so comparing codes compares values
    /// (the primary index relies on it).
    static func dictionary(_ c: EventColumn, of batch: EventBatch) -> PartDictionary? {
        let col = batch[string: c]
        var interner = ByteStringInterner()
        var raw = [Int32](repeating: -1, count: batch.count)
        col.bytes.withUnsafeBytes { b in
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
                    previous = value
                    raw[i] = previousCode
                }
            }
        }
        if c.kind == .string && interner.count > batch.count / 4 { return nil }
        let (ranks, sortedCodes) = interner.sortedRanks()
        let codes = raw.map { $0 < 0 ? 0 : UInt32(ranks[Int($0)]) }
        return PartDictionary(values: interner.values, order: sortedCodes, codes: codes)
    }

    /// One column of one granule as a framed, compressed block.
    static func encodeColumn(_ c: EventColumn, batch: EventBatch, range: Range<Int>, dictionary d: PartDictionary?)
        -> EncodedBlock
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
        return EncodedBlock(bytes: frame(payload.bytes, codec: PartFormat.codec(for: c), encoding: encoding),
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
        return EncodedBlock(bytes: frame(raw, codec: .none, encoding: .stringPlain), rawLength: raw.count, nullCount: 0)
    }

    /// A block: the 16-byte header (codec, encoding, lengths, CRC32C) and the stored bytes.
    static func frame(_ raw: [UInt8], codec: Codec, encoding: ColumnEncoding) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: PartFormat.blockHeaderSize)
        block.reserveCapacity(PartFormat.blockHeaderSize + raw.count / 2)
        let used = raw.withUnsafeBytes { Codec.compress($0, codec: codec, into: &block) }
        let stored = block.count - PartFormat.blockHeaderSize
        var header = ByteWriter(capacity: PartFormat.blockHeaderSize)
        header.u8(used.rawValue)
        header.u8(encoding.rawValue)
        header.u16(0)
        header.u32(UInt32(raw.count))
        header.u32(UInt32(stored))
        var crc = header.bytes.withUnsafeBytes { CRC32C.checksum($0) }
        crc = block.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[PartFormat.blockHeaderSize...]), continuing: crc) }
        header.u32(crc)
        block.replaceSubrange(0..<PartFormat.blockHeaderSize, with: header.bytes)
        return block
    }
}

/// `transform` applied to every element on the machine's cores (Dispatch's concurrentPerform),
/// results in order. For CPU-bound pieces of a flush or merge; never for I/O.
func parallelMap<T: Sendable, R: Sendable>(_ items: [T], _ transform: @Sendable (T) -> R) -> [R] {
    let results = ResultSlots<R>(count: items.count)
    DispatchQueue.concurrentPerform(iterations: items.count) { i in results.set(i, transform(items[i])) }
    return results.values
}

/// Slots written once each from `concurrentPerform` iterations (disjoint indices).
private final class ResultSlots<R>: @unchecked Sendable {
    private let slots: UnsafeMutableBufferPointer<R?>
    init(count: Int) { slots = .allocate(capacity: count); slots.initialize(repeating: nil) }
    deinit {
        slots.deinitialize()
        slots.deallocate()
    }
    func set(_ i: Int, _ r: R) { slots[i] = r }
    var values: [R] { slots.map { $0! } }
}
