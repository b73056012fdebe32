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
    ///
    /// Each row gets a key (site rank 10 bits | day 16 bits | type rank 8 bits | top 30 bits of
    /// the visitor hash, occurred_at), ranks saturating. Rows with equal prefixes are the same
    /// visitor (or a 1-in-10⁹ collision): for them occurred_at decides, then the full
    /// comparison, so the result is exact whatever the prefix loses.
    public static func sortedOrder(_ batch: EventBatch, rows: [Int32]) -> [Int32] {
        let siteRanks = ranks(batch[string: .siteID], rows)
        let typeRanks = ranks(batch[string: .eventType], rows)
        let times = batch[int: .occurredAt].values
        let visitors = batch[string: .visitorID]
        var keyed = [Keyed]()
        keyed.reserveCapacity(rows.count)
        for (k, row) in rows.enumerated() {
            let i = Int(row)
            let site = UInt64(min(siteRanks[k], 1023))
            let day = UInt64(clamping: min(max(CivilTime.day(ms: times[i]), 0), 65535))
            let type = UInt64(min(typeRanks[k], 255))
            let h = visitors.withValue(i) { TallyHash.hash($0) }
            keyed.append(Keyed(prefix: site << 54 | day << 38 | type << 30 | h >> 34, visitorHash: h, time: times[i],
                               row: row, exact: siteRanks[k] < 1023 && typeRanks[k] < 255))
        }
        let ids = batch[string: .eventID]
        keyed.sort { x, y in
            if x.prefix != y.prefix { return x.prefix < y.prefix }
            // Equal prefixes with exact ranks: same site, day and type; order by visitor hash,
            // visitor, time, event id without recomputing anything. Saturated ranks: compare all.
            guard x.exact && y.exact else { return compare(batch, Int(x.row), batch, Int(y.row)) < 0 }
            if x.visitorHash != y.visitorHash { return x.visitorHash < y.visitorHash }
            let v = visitors.withValue(Int(x.row)) { a in visitors.withValue(Int(y.row)) { b in ByteOrder.compare(a, b) } }
            if v != 0 { return v < 0 }
            if x.time != y.time { return x.time < y.time }
            return ids.withValue(Int(x.row)) { a in ids.withValue(Int(y.row)) { b in ByteOrder.less(a, b) } }
        }
        return keyed.map(\.row)
    }

    private struct Keyed {
        var prefix: UInt64
        var visitorHash: UInt64
        var time: Int64
        var row: Int32
        /// Site and type ranks fit their bits, so equal prefixes mean equal site, day and type.
        var exact: Bool
    }

    /// Rank of each listed row's value among the distinct values of those rows, in byte order.
    private static func ranks(_ col: StringColumn, _ rows: [Int32]) -> [Int] {
        var interner = ByteStringInterner()
        let codes = rows.map { i in col.withValue(Int(i)) { interner.intern($0) } }
        let (r, _) = interner.sortedRanks()
        return codes.map { Int(r[Int($0)]) }
    }
}
