extension EventBatch {
    /// The rows `rows` of `batches` (whole events), in that order, as one batch.
    ///
    /// A flush writes each partition from one sorted copy made here, column by column on both
    /// cores, instead of joining the buffered batches into one and then copying every granule
    /// out of the join in sort order (two copies; ~9% of `tally ingest`'s CPU time in the
    /// profile, plus sequential instead of scattered reads for building dictionaries).
    static func gathering(_ batches: [EventBatch], rows: [RowRef], columns: [EventColumn] = EventColumn.allCases)
        -> EventBatch
    {
        // Where each batch's rows go: positions in `rows`, bucketed by batch.
        var buckets = [[Int32]](repeating: [], count: batches.count)
        for (k, r) in rows.enumerated() { buckets[Int(r.batch)].append(Int32(k)) }
        let positions = buckets
        let gathered = parallelMap(columns) { c -> GatheredColumn in
            if c.kind == .int64 {
                return .int(gatherInts(batches.map { $0[int: c] }, positions, count: rows.count, rows: rows,
                                       nullable: c.isNullable))
            }
            return .string(gatherStrings(batches.map { $0[string: c] }, positions, count: rows.count, rows: rows,
                                         nullable: c.isNullable))
        }
        var out = EventBatch(columns: columns)
        for (c, g) in zip(columns, gathered) {
            switch g {
            case .int(let col): out[int: c] = col
            case .string(let col): out[string: c] = col
            }
        }
        out.setCount(rows.count)
        return out
    }

    private enum GatheredColumn: Sendable {
        case int(Int64Column)
        case string(StringColumn)
    }

    private static func gatherInts(_ sources: [Int64Column], _ positions: [[Int32]], count n: Int, rows: [RowRef],
                                   nullable: Bool) -> Int64Column {
        var out = Int64Column(nullable: nullable)
        out.values = [Int64](unsafeUninitializedCapacity: n) { dst, initialized in
            for (b, src) in sources.enumerated() {
                src.values.withUnsafeBufferPointer { v in
                    for k in positions[b] { dst[Int(k)] = v[Int(rows[Int(k)].row)] }
                }
            }
            initialized = n
        }
        if nullable { out.nulls = gatherNulls(sources.map(\.nulls), positions, count: n, rows: rows) }
        return out
    }

    private static func gatherStrings(_ sources: [StringColumn], _ positions: [[Int32]], count n: Int, rows: [RowRef],
                                      nullable: Bool) -> StringColumn {
        // Lengths first (so every value's place is known), then the bytes, batch by batch.
        var ends = [UInt32](unsafeUninitializedCapacity: n) { dst, initialized in
            for (b, src) in sources.enumerated() {
                src.ends.withUnsafeBufferPointer { e in
                    for k in positions[b] {
                        let i = Int(rows[Int(k)].row)
                        dst[Int(k)] = e[i] &- (i == 0 ? 0 : e[i &- 1])
                    }
                }
            }
            initialized = n
        }
        var total = 0
        for k in 0..<n {
            total += Int(ends[k])
            ends[k] = UInt32(truncatingIfNeeded: total)
        }
        var out = StringColumn(nullable: nullable)
        out.bytes = [UInt8](unsafeUninitializedCapacity: total) { dst, initialized in
            ends.withUnsafeBufferPointer { de in
                for (b, src) in sources.enumerated() {
                    src.bytes.withUnsafeBufferPointer { sb in
                        src.ends.withUnsafeBufferPointer { se in
                            for k in positions[b] {
                                let k = Int(k)
                                let i = Int(rows[k].row)
                                let s = i == 0 ? 0 : Int(se[i &- 1])
                                let len = Int(se[i]) &- s
                                if len > 0 {
                                    let to = k == 0 ? 0 : Int(de[k &- 1])
                                    (dst.baseAddress! + to).initialize(from: sb.baseAddress! + s, count: len)
                                }
                            }
                        }
                    }
                }
            }
            initialized = total
        }
        out.ends = ends
        if nullable { out.nulls = gatherNulls(sources.map(\.nulls), positions, count: n, rows: rows) }
        return out
    }

    private static func gatherNulls(_ sources: [NullBitmap?], _ positions: [[Int32]], count n: Int, rows: [RowRef])
        -> NullBitmap
    {
        var words = [UInt64](repeating: 0, count: (n + 63) / 64)
        for (b, src) in sources.enumerated() {
            guard let src, src.nullCount > 0 else { continue }
            for k in positions[b] where src[Int(rows[Int(k)].row)] {
                words[Int(k) >> 6] |= 1 << UInt64(k & 63)
            }
        }
        return NullBitmap(words: words, count: n)
    }
}
