/// The order of rows inside a part: (site_id, UTC day of occurred_at, event_type,
/// XXH3(visitor_id), visitor_id, occurred_at, event_id), strings in byte order. FORMAT.md,
/// "Sort key", says why. Visitors are ordered by hash: what matters is that a visitor's events
/// are adjacent, and a hash makes the 64-bit sort prefix tell almost any two visitors apart.
public enum SortKey {
    /// Compares row `i` of `a` with row `j` of `b` (both carrying the key columns).
    public static func compare(_ a: EventBatch, _ i: Int, _ b: EventBatch, _ j: Int) -> Int {
        let sa = a[string: .siteID], sb = b[string: .siteID]
        var c = sa.withValue(i) { x in sb.withValue(j) { y in ByteOrder.compare(x, y) } }
        if c != 0 { return c }
        let ta = a[int: .occurredAt].values[i], tb = b[int: .occurredAt].values[j]
        let da = CivilTime.day(ms: ta), db = CivilTime.day(ms: tb)
        if da != db { return da < db ? -1 : 1 }
        c = a[string: .eventType].withValue(i) { x in b[string: .eventType].withValue(j) { y in ByteOrder.compare(x, y) } }
        if c != 0 { return c }
        let (ha, hb) = (a[string: .visitorID].withValue(i) { TallyHash.hash($0) }, b[string: .visitorID].withValue(j) { TallyHash.hash($0) })
        if ha != hb { return ha < hb ? -1 : 1 }
        c = a[string: .visitorID].withValue(i) { x in b[string: .visitorID].withValue(j) { y in ByteOrder.compare(x, y) } }
        if c != 0 { return c }
        if ta != tb { return ta < tb ? -1 : 1 }
        return a[string: .eventID].withValue(i) { x in b[string: .eventID].withValue(j) { y in ByteOrder.compare(x, y) } }
    }

    /// The rows `rows` of `batch` in sort-key order.
    public static func sortedOrder(_ batch: EventBatch, rows: [Int32]) -> [Int32] {
        sorted([batch], rows: rows.map { RowRef(batch: 0, row: UInt32($0)) }).map { Int32($0.row) }
    }

    /// The rows `rows` of `batches` in sort-key order. A flush sorts the buffered batches
    /// this way without first copying them into one.
    ///
    /// Each row gets a key (site rank 10 bits | day 16 bits | type rank 8 bits | top 30 bits of
    /// the visitor hash, occurred_at), ranks saturating. Rows with equal prefixes are the same
    /// visitor (or a 1-in-10⁹ collision): for them occurred_at decides, then the full
    /// comparison, so the result is exact whatever the prefix loses.
    public static func sorted(_ batches: [EventBatch], rows: [RowRef]) -> [RowRef] {
        let siteRanks = ranks(batches, .siteID, rows)
        let typeRanks = ranks(batches, .eventType, rows)
        let visitors = batches.map { $0[string: .visitorID] }
        let ids = batches.map { $0[string: .eventID] }
        var keyed = [Keyed]()
        keyed.reserveCapacity(rows.count)
        forEachRun(rows) { b, run in
            let times = batches[b][int: .occurredAt].values
            let visitors = visitors[b]
            for k in run {
                let i = Int(rows[k].row)
                let site = UInt64(min(siteRanks[k], 1023))
                let day = UInt64(clamping: min(max(CivilTime.day(ms: times[i]), 0), 65535))
                let type = UInt64(min(typeRanks[k], 255))
                let h = visitors.withValue(i) { TallyHash.hash($0) }
                keyed.append(Keyed(prefix: site << 54 | day << 38 | type << 30 | h >> 34, visitorHash: h, time: times[i],
                                   ref: rows[k], exact: siteRanks[k] < 1023 && typeRanks[k] < 255))
            }
        }
        keyed.sort { x, y in
            if x.prefix != y.prefix { return x.prefix < y.prefix }
            // Equal prefixes with exact ranks: same site, day and type; order by visitor hash,
            // visitor, time, event id without recomputing anything. Saturated ranks: compare all.
            let (xb, xi, yb, yi) = (Int(x.ref.batch), Int(x.ref.row), Int(y.ref.batch), Int(y.ref.row))
            guard x.exact && y.exact else { return compare(batches[xb], xi, batches[yb], yi) < 0 }
            if x.visitorHash != y.visitorHash { return x.visitorHash < y.visitorHash }
            let v = visitors[xb].withValue(xi) { a in visitors[yb].withValue(yi) { b in ByteOrder.compare(a, b) } }
            if v != 0 { return v < 0 }
            if x.time != y.time { return x.time < y.time }
            return ids[xb].withValue(xi) { a in ids[yb].withValue(yi) { b in ByteOrder.less(a, b) } }
        }
        return keyed.map(\.ref)
    }

    private struct Keyed {
        var prefix: UInt64
        var visitorHash: UInt64
        var time: Int64
        var ref: RowRef
        /// Site and type ranks fit their bits, so equal prefixes mean equal site, day and type.
        var exact: Bool
    }

    /// Calls `body` with each run of consecutive `rows` from the same batch (rows listed batch
    /// by batch make one run per batch), so per-batch columns are looked up once per run.
    static func forEachRun(_ rows: [RowRef], _ body: (Int, Range<Int>) -> Void) {
        var start = 0
        while start < rows.count {
            let b = rows[start].batch
            var end = start + 1
            while end < rows.count && rows[end].batch == b { end += 1 }
            body(Int(b), start..<end)
            start = end
        }
    }

    /// Rank of each listed row's value among the distinct values of those rows, in byte order.
    private static func ranks(_ batches: [EventBatch], _ c: EventColumn, _ rows: [RowRef]) -> [Int] {
        var interner = ByteStringInterner()
        var codes = [Int32]()
        codes.reserveCapacity(rows.count)
        forEachRun(rows) { b, run in
            let col = batches[b][string: c]
            for k in run { codes.append(col.withValue(Int(rows[k].row)) { interner.intern($0) }) }
        }
        let (r, _) = interner.sortedRanks()
        return codes.map { Int(r[Int($0)]) }
    }
}

/// A row of one of several batches: the flush's unit of sorting and gathering.
public struct RowRef: Sendable, Hashable {
    public var batch: UInt32
    public var row: UInt32

    public init(batch: UInt32, row: UInt32) {
        self.batch = batch
        self.row = row
    }
}
