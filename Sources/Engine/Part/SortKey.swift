/// The order of rows inside a part: (site_id, UTC day of occurred_at, event_type,
/// visitor_id, occurred_at, event_id), strings in byte order. FORMAT.md, "Sort key", says why.
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
        c = a[string: .visitorID].withValue(i) { x in b[string: .visitorID].withValue(j) { y in ByteOrder.compare(x, y) } }
        if c != 0 { return c }
        if ta != tb { return ta < tb ? -1 : 1 }
        return a[string: .eventID].withValue(i) { x in b[string: .eventID].withValue(j) { y in ByteOrder.compare(x, y) } }
    }

    /// The rows `rows` of `batch` in sort-key order.
    ///
    /// Each row gets a 64-bit prefix (site rank 10 bits | day 16 bits | type rank 8 bits |
    /// first 30 bits of visitor_id), ranks saturating; rows with equal prefixes are
    /// ordered by the full comparison, so the result is exact whatever the prefix loses.
    public static func sortedOrder(_ batch: EventBatch, rows: [Int32]) -> [Int32] {
        let siteRanks = ranks(batch[string: .siteID], rows)
        let typeRanks = ranks(batch[string: .eventType], rows)
        let times = batch[int: .occurredAt].values
        let visitors = batch[string: .visitorID]
        var keyed = [(UInt64, Int32)]()
        keyed.reserveCapacity(rows.count)
        for (k, row) in rows.enumerated() {
            let i = Int(row)
            let site = UInt64(min(siteRanks[k], 1023))
            let day = UInt64(clamping: min(max(CivilTime.day(ms: times[i]), 0), 65535))
            let type = UInt64(min(typeRanks[k], 255))
            let v: UInt64 = visitors.withValue(i) { b in
                var x: UInt64 = 0
                for k in 0..<4 { x = x << 8 | UInt64(k < b.count ? b[k] : 0) }
                return x >> 2
            }
            keyed.append((site << 54 | day << 38 | type << 30 | v, row))
        }
        keyed.sort { x, y in
            if x.0 != y.0 { return x.0 < y.0 }
            return compare(batch, Int(x.1), batch, Int(y.1)) < 0
        }
        return keyed.map { $0.1 }
    }

    /// Rank of each listed row's value among the distinct values of those rows, in byte order.
    private static func ranks(_ col: StringColumn, _ rows: [Int32]) -> [Int] {
        var interner = ByteStringInterner()
        let codes = rows.map { i in col.withValue(Int(i)) { interner.intern($0) } }
        let (r, _) = interner.sortedRanks()
        return codes.map { Int(r[Int($0)]) }
    }
}
