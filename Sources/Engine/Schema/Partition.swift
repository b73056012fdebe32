/// A calendar month (UTC) of occurred_at: the unit of partitioning, merging and TTL.
public struct Partition: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let year: Int
    public let month: Int

    public init?(year: Int, month: Int) {
        guard (1970...9999).contains(year), (1...12).contains(month) else { return nil }
        self.year = year
        self.month = month
    }

    public init?(yyyymm: Int) {
        self.init(year: yyyymm / 100, month: yyyymm % 100)
    }

    /// The partition holding the instant `ms` (milliseconds since the Unix epoch, UTC).
    public init(ms: Int64) {
        let (y, m, _) = CivilTime.civil(fromDays: CivilTime.day(ms: ms))
        year = max(1970, y)
        month = y < 1970 ? 1 : m
    }

    public var yyyymm: Int { year * 100 + month }
    public var description: String { String(yyyymm) }

    /// [start, end) in ms.
    public var range: Range<Int64> {
        let start = CivilTime.days(year: year, month: month, day: 1) * 86_400_000
        let next = month == 12 ? (year + 1, 1) : (year, month + 1)
        return start..<(CivilTime.days(year: next.0, month: next.1, day: 1) * 86_400_000)
    }

    public static func < (a: Partition, b: Partition) -> Bool { a.yyyymm < b.yyyymm }
}

/// Proleptic Gregorian calendar arithmetic (Howard Hinnant's days_from_civil).
public enum CivilTime {
    public static func days(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    public static func civil(fromDays z0: Int64) -> (year: Int, month: Int, day: Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (Int(m <= 2 ? y + 1 : y), Int(m), Int(d))
    }

    /// The UTC day number (days since 1970-01-01) of an instant in ms.
    @inlinable public static func day(ms: Int64) -> Int64 {
        ms >= 0 ? ms / 86_400_000 : (ms - 86_399_999) / 86_400_000
    }

    /// "2026-11-23T16:32:53.123Z".
    public static func iso8601(ms: Int64) -> String {
        let d = day(ms: ms)
        let (y, m, dd) = civil(fromDays: d)
        let rem = ms - d * 86_400_000
        func p(_ v: Int64, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(p(Int64(y), 4))-\(p(Int64(m), 2))-\(p(Int64(dd), 2))T\(p(rem / 3_600_000, 2)):\(p(rem / 60_000 % 60, 2)):"
            + "\(p(rem / 1000 % 60, 2)).\(p(rem % 1000, 3))Z"
    }
}
