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

    /// Writes the rows `order` of `source` (sorted by the sort key, all of one partition).
    func write(_ source: EventBatch, order: [Int32], partition: Partition, number: Int, level: Int, walLSN: UInt64)
        throws(TallyError) -> Written
    {
        precondition(!order.isEmpty, "a part holds at least one row")
        precondition(source.columns.count == EventColumn.allCases.count, "a part holds every column")
        let rowCount = order.count
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
        // index relies on it). `codes[k]` is the code of the k-th row in `order`.
        var dictionaries: [EventColumn: (values: StringColumn, order: [Int32], codes: [UInt32])] = [:]
        for c in EventColumn.allCases where c.kind == .lowCardinality || c.kind == .string {
            let col = source[string: c]
            var interner = ByteStringInterner()
            var raw = [Int32](repeating: -1, count: rowCount)
            col.bytes.withUnsafeBytes { b in
                col.ends.withUnsafeBufferPointer { e in
                    // Rows are grouped by visitor, so a value often repeats the previous row's
                    // (country, device, user agent, page): compare before hashing.
                    var previous = UnsafeRawBufferPointer(start: nil, count: 0)
                    var previousCode: Int32 = -1
                    for (k, i) in order.enumerated() where !col.isNull(Int(i)) {
                        let i = Int(i)
                        let s = i == 0 ? 0 : Int(e[i - 1])
                        let value = UnsafeRawBufferPointer(rebasing: b[s..<Int(e[i])])
                        if previousCode >= 0 && ByteOrder.equal(value, previous) {
                            raw[k] = previousCode
                            continue
                        }
                        previousCode = interner.intern(value)
                        previous = value
                        raw[k] = previousCode
                    }
                }
            }
            if c.kind == .string && interner.count > rowCount / 4 { continue }
            let (ranks, sortedCodes) = interner.sortedRanks()
            let codes = raw.map { $0 < 0 ? 0 : UInt32(ranks[Int($0)]) }
            dictionaries[c] = (interner.values, sortedCodes, codes)
        }

        var columns = EventColumn.allCases.map {
            ColumnMeta(column: $0, nullCount: 0, storedBytes: 0, rawBytes: 0, dictionary: .none, dictionarySize: 0,
                       granules: [])
        }
        var granules: [GranuleMeta] = []
        var payload = ByteWriter(capacity: 1 << 20)
        var compressed: [UInt8] = []
        compressed.reserveCapacity(1 << 20)

        func emit(_ raw: [UInt8], codec: Codec, encoding: ColumnEncoding) -> BlockRef {
            compressed.removeAll(keepingCapacity: true)
            let used = raw.withUnsafeBytes { Codec.compress($0, codec: codec, into: &compressed) }
            var header = ByteWriter(capacity: PartFormat.blockHeaderSize)
            header.u8(used.rawValue)
            header.u8(encoding.rawValue)
            header.u16(0)
            header.u32(UInt32(raw.count))
            header.u32(UInt32(compressed.count))
            var crc = header.bytes.withUnsafeBytes { CRC32C.checksum($0) }
            crc = compressed.withUnsafeBytes { CRC32C.checksum($0, continuing: crc) }
            header.u32(crc)
            let ref = BlockRef(offset: offset + out.count, length: PartFormat.blockHeaderSize + compressed.count)
            out.raw(header.bytes)
            out.raw(compressed)
            return ref
        }

        func drain() throws(TallyError) {
            if out.count >= 1 << 20 {
                try file.append(out.bytes)
                offset += out.count
                out.bytes.removeAll(keepingCapacity: true)
            }
        }

        let plainColumns = EventColumn.allCases.filter { dictionaries[$0] == nil }
        let siteCodes = dictionaries[.siteID]!.codes
        let typeCodes = dictionaries[.eventType]!.codes
        var minTime = Int64.max, maxTime = Int64.min, minReceived = Int64.max, maxReceived = Int64.min
        var nullCounts = [Int](repeating: 0, count: EventColumn.allCases.count)
        var start = 0
        while start < rowCount {
            let range = start..<min(rowCount, start + granuleRows)
            // This granule's rows, copied out of the source in sort order; `local` indexes them.
            // Dictionary-coded columns are not copied: their codes are already in sort order.
            let batch = source.gather(order[range], columns: plainColumns)
            let local = 0..<range.count
            let times = batch[int: .occurredAt].values
            var g = GranuleMeta(
                rows: range.count, firstRow: start, minTime: .max, maxTime: .min,
                firstSite: siteCodes[range.lowerBound], lastSite: siteCodes[range.upperBound - 1],
                firstDay: Int32(clamping: CivilTime.day(ms: times[0])),
                lastDay: Int32(clamping: CivilTime.day(ms: times[range.count - 1])),
                firstType: typeCodes[range.lowerBound], lastType: typeCodes[range.upperBound - 1], blooms: [])
            for t in times {
                g.minTime = min(g.minTime, t)
                g.maxTime = max(g.maxTime, t)
            }
            minTime = min(minTime, g.minTime)
            maxTime = max(maxTime, g.maxTime)
            for t in batch[int: .receivedAt].values {
                minReceived = min(minReceived, t)
                maxReceived = max(maxReceived, t)
            }
            for (k, c) in EventColumn.allCases.enumerated() {
                payload.bytes.removeAll(keepingCapacity: true)
                let encoding: ColumnEncoding
                if let d = dictionaries[c] {
                    var nulls: NullBitmap?
                    if let sourceNulls = source[string: c].nulls {
                        var n = NullBitmap()
                        for i in order[range] { n.append(sourceNulls[Int(i)]) }
                        nullCounts[k] += n.nullCount
                        nulls = n
                    }
                    encoding = GranuleCodec.encodeCodes(d.codes[range], nulls: nulls, local,
                                                        dictionarySize: d.values.count, into: &payload)
                } else {
                    switch c.kind {
                    case .int64 where c == .receivedAt:
                        // Live events arrive ms after they occur (differences from occurred_at are
                        // tiny); a bulk load of old events gets one received_at per batch (deltas of
                        // 0). Whichever needs fewer significant bits wins.
                        if GranuleCodec.fromOccurredIsSmaller(batch[int: c], occurred: batch[int: .occurredAt], local) {
                            encoding = GranuleCodec.encodeFromOccurred(batch[int: c], occurred: batch[int: .occurredAt],
                                                                       local, into: &payload)
                        } else {
                            encoding = GranuleCodec.encodeInt64(batch[int: c], local, delta: true, into: &payload)
                        }
                    case .int64:
                        encoding = GranuleCodec.encodeInt64(batch[int: c], local, delta: PartFormat.usesDelta(c), into: &payload)
                    case .identifier where c == .eventID:
                        encoding = GranuleCodec.encodeULIDsFromOccurred(batch[string: c], occurred: batch[int: .occurredAt],
                                                                        local, into: &payload)
                    case .identifier:
                        encoding = GranuleCodec.encodeIdentifiers(batch[string: c], local, into: &payload)
                    case .string, .lowCardinality:
                        encoding = GranuleCodec.encodeStrings(batch[string: c], local, into: &payload)
                    }
                }
                if dictionaries[c] == nil {
                    nullCounts[k] += c.kind == .int64 ? (batch[int: c].nulls?.nullCount ?? 0) : (batch[string: c].nulls?.nullCount ?? 0)
                }
                let ref = emit(payload.bytes, codec: PartFormat.codec(for: c), encoding: encoding)
                columns[k].granules.append(ref)
                columns[k].storedBytes += ref.length
                columns[k].rawBytes += payload.count
            }
            for c in PartFormat.bloomColumns {
                let col = batch[string: c]
                var hashes = [UInt64](repeating: 0, count: local.count)
                for i in local { hashes[i] = col.withValue(i) { TallyHash.hash($0) } }
                // Distinct keys, counted as runs: rows are grouped by visitor (and so by session),
                // so repeats are adjacent; a value recurring later only makes the filter larger.
                var runs = hashes.isEmpty ? 0 : 1
                for i in hashes.indices.dropFirst() where hashes[i] != hashes[i - 1] { runs += 1 }
                var bloom = SplitBlockBloomFilter(distinctKeys: runs, bitsPerKey: PartFormat.bloomBitsPerKey)
                for h in hashes { bloom.insert(hash: h) }
                g.blooms.append(emit(bloom.serialized, codec: .none, encoding: .stringPlain))
            }
            granules.append(g)
            try drain()
            start = range.upperBound
        }

        for (k, c) in EventColumn.allCases.enumerated() {
            if let d = dictionaries[c] {
                payload.bytes.removeAll(keepingCapacity: true)
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
}
