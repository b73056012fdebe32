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

    func write(sorted batch: EventBatch, partition: Partition, number: Int, level: Int, walLSN: UInt64)
        throws(TallyError) -> Written
    {
        precondition(batch.count > 0, "a part holds at least one row")
        precondition(batch.columns.count == EventColumn.allCases.count, "a part holds every column")
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

        // Part dictionaries for low-cardinality columns, codes assigned in byte order so that
        // comparing codes compares values (the primary index relies on it).
        var dictionaries: [EventColumn: (values: StringColumn, order: [Int32], codes: [UInt32])] = [:]
        for c in EventColumn.allCases where c.kind == .lowCardinality {
            let col = batch[string: c]
            var interner = ByteStringInterner()
            var raw = [Int32](repeating: -1, count: batch.count)
            for i in 0..<batch.count where !col.isNull(i) { raw[i] = col.withValue(i) { interner.intern($0) } }
            let (ranks, order) = interner.sortedRanks()
            let codes = raw.map { $0 < 0 ? 0 : UInt32(ranks[Int($0)]) }
            dictionaries[c] = (interner.values, order, codes)
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

        let times = batch[int: .occurredAt].values
        let siteCodes = dictionaries[.siteID]!.codes
        let typeCodes = dictionaries[.eventType]!.codes
        var start = 0
        while start < batch.count {
            let range = start..<min(batch.count, start + granuleRows)
            var g = GranuleMeta(
                rows: range.count, firstRow: start, minTime: .max, maxTime: .min,
                firstSite: siteCodes[range.lowerBound], lastSite: siteCodes[range.upperBound - 1],
                firstDay: Int32(clamping: CivilTime.day(ms: times[range.lowerBound])),
                lastDay: Int32(clamping: CivilTime.day(ms: times[range.upperBound - 1])),
                firstType: typeCodes[range.lowerBound], lastType: typeCodes[range.upperBound - 1], blooms: [])
            for i in range {
                g.minTime = min(g.minTime, times[i])
                g.maxTime = max(g.maxTime, times[i])
            }
            for (k, c) in EventColumn.allCases.enumerated() {
                payload.bytes.removeAll(keepingCapacity: true)
                let encoding: ColumnEncoding
                switch c.kind {
                case .int64:
                    encoding = GranuleCodec.encodeInt64(batch[int: c], range, delta: PartFormat.usesDelta(c), into: &payload)
                case .string:
                    encoding = GranuleCodec.encodeStrings(batch[string: c], range, into: &payload)
                case .identifier:
                    encoding = GranuleCodec.encodeIdentifiers(batch[string: c], range, into: &payload)
                case .lowCardinality:
                    let d = dictionaries[c]!
                    encoding = GranuleCodec.encodeCodes(d.codes[range], nulls: batch[string: c].nulls, range,
                                                        dictionarySize: d.values.count, into: &payload)
                }
                let ref = emit(payload.bytes, codec: PartFormat.codec(for: c), encoding: encoding)
                columns[k].granules.append(ref)
                columns[k].storedBytes += ref.length
                columns[k].rawBytes += payload.count
            }
            for c in PartFormat.bloomColumns {
                let col = batch[string: c]
                var hashes = Set<UInt64>()
                for i in range { hashes.insert(col.withValue(i) { TallyHash.hash($0) }) }
                var bloom = SplitBlockBloomFilter(distinctKeys: hashes.count, bitsPerKey: PartFormat.bloomBitsPerKey)
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
            if c.kind == .int64 {
                columns[k].nullCount = batch[int: c].nulls?.nullCount ?? 0
            } else {
                columns[k].nullCount = batch[string: c].nulls?.nullCount ?? 0
            }
        }

        let received = batch[int: .receivedAt].values
        let footer = PartFooter(
            partition: partition, rows: batch.count, granuleRows: granuleRows,
            minTime: times.min()!, maxTime: times.max()!, minReceived: received.min()!, maxReceived: received.max()!,
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
