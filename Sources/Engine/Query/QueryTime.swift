import Foundation

/// A time zone prepared for bucketing: the UTC offset at any instant, from the zone's
/// transitions (DST) looked up once, so a row costs a binary search over a handful of
/// segments instead of a Foundation call.
public struct QueryTimeZone: Sendable {
    public let identifier: String
    /// Segment starts (ms UTC, ascending; the first is .min) and their offsets (ms).
    let starts: [Int64]
    let offsets: [Int64]

    public static let utc = QueryTimeZone(identifier: "UTC", starts: [.min], offsets: [0])

    init(identifier: String, starts: [Int64], offsets: [Int64]) {
        self.identifier = identifier
        self.starts = starts
        self.offsets = offsets
    }

    /// The zone `identifier` (IANA, e.g. `Europe/Berlin`) with its transitions between 1970 and
    /// 2100; an unknown name is an error naming the parameter `timezone`.
    public init(identifier: String) throws(QueryError) {
        guard let tz = TimeZone(identifier: identifier) else {
            throw QueryError.invalid("timezone", "'\(identifier)' is not a known IANA time zone (e.g. UTC, Europe/Berlin)")
        }
        var starts: [Int64] = [.min]
        var offsets: [Int64] = [Int64(tz.secondsFromGMT(for: Date(timeIntervalSince1970: 0))) * 1000]
        var t = Date(timeIntervalSince1970: 0)
        let end = Date(timeIntervalSince1970: 4_102_444_800)  // 2100-01-01
        while let next = tz.nextDaylightSavingTimeTransition(after: t), next < end {
            let ms = Int64((next.timeIntervalSince1970 * 1000).rounded())
            let offset = Int64(tz.secondsFromGMT(for: next)) * 1000
            if offset != offsets.last! {
                starts.append(ms)
                offsets.append(offset)
            }
            t = next
        }
        self.init(identifier: identifier, starts: starts, offsets: offsets)
    }

    /// The offset from UTC (ms) at the instant `utc`.
    public func offset(atUTC utc: Int64) -> Int64 {
        if offsets.count == 1 { return offsets[0] }
        var lo = 0
        var hi = starts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) >> 1
            if starts[mid] <= utc { lo = mid } else { hi = mid - 1 }
        }
        return offsets[lo]
    }

    /// The offset in force from `from` through `through` (ms UTC, inclusive), when one is: no
    /// transition falls inside.
    func constantOffset(from: Int64, through: Int64) -> Int64? {
        if offsets.count == 1 { return offsets[0] }
        guard from <= through else { return nil }
        var lo = 0
        var hi = starts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) >> 1
            if starts[mid] <= from { lo = mid } else { hi = mid - 1 }
        }
        return lo + 1 < starts.count && starts[lo + 1] <= through ? nil : offsets[lo]
    }

    /// Wall-clock ms (as if UTC) of the instant `utc`.
    public func local(_ utc: Int64) -> Int64 { utc + offset(atUTC: utc) }

    /// The instant whose wall-clock time is `wall`.
    public func utc(ofLocal wall: Int64) -> Int64 {
        // The offsets in force a day either side; a wall time maps back through one of them
        // (two when a clock change repeats it: take the earlier instant; none in a gap: the
        // instant the gap ends, reached through the offset before the change).
        let before = offset(atUTC: wall - 86_400_000)
        let after = offset(atUTC: wall + 86_400_000)
        let candidates = [wall - before, wall - after].filter { local($0) == wall }
        if let first = candidates.min() { return first }
        return wall - before
    }

    /// Local day number (days since 1970-01-01 in this zone) of an instant.
    public func day(_ utc: Int64) -> Int64 { floorDiv(local(utc), 86_400_000) }

    /// The instant local day `day` starts.
    public func startOfDay(_ day: Int64) -> Int64 { utc(ofLocal: day * 86_400_000) }
}

func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

func floorMod(_ a: Int64, _ b: Int64) -> Int64 { a - floorDiv(a, b) * b }

extension QueryDimension.TimeBucket {
    /// The bucket of an instant: the local day number (day), the Monday's day number (week),
    /// year × 12 + month − 1 (month), the bucket's start in ms UTC (hour), 0–23 (hour of day),
    /// 1 = Monday … 7 = Sunday (day of week).
    func key(_ utc: Int64, _ zone: QueryTimeZone) -> Int64 {
        let local = zone.local(utc)
        switch self {
        case .day: return floorDiv(local, 86_400_000)
        case .week:
            let day = floorDiv(local, 86_400_000)
            return day - floorMod(day + 3, 7)
        case .month:
            let (y, m, _) = CivilTime.civil(fromDays: floorDiv(local, 86_400_000))
            return Int64(y) * 12 + Int64(m - 1)
        case .hour: return floorDiv(local, 3_600_000) * 3_600_000 - (local - utc)
        case .hourOfDay: return floorMod(local, 86_400_000) / 3_600_000
        case .dayOfWeek: return floorMod(floorDiv(local, 86_400_000) + 3, 7) + 1
        }
    }

    /// Every bucket of [from, to), in order (series), or the whole cycle.
    public func keys(from: Int64, to: Int64, _ zone: QueryTimeZone) -> [Int64] {
        guard from < to else { return [] }
        switch self {
        case .hourOfDay: return Array(0...23)
        case .dayOfWeek: return Array(1...7)
        case .day: return Array(key(from, zone)...key(to - 1, zone))
        case .week: return Array(stride(from: key(from, zone), through: key(to - 1, zone), by: 7))
        case .month: return Array(key(from, zone)...key(to - 1, zone))
        case .hour:
            // Quarter-hour steps meet every local hour, in zones with 30- and 45-minute offsets too;
            // bucket starts only grow with time, so consecutive duplicates are all there are.
            var out: [Int64] = []
            for t in stride(from: from, to: to, by: 900_000) {
                let k = key(t, zone)
                if out.last != k { out.append(k) }
            }
            let last = key(to - 1, zone)
            if out.last != last { out.append(last) }
            return out
        }
    }

    /// The label of a bucket: ISO-8601 date for day/week/month, date-time with the zone's
    /// offset for hour; numbers for the cycles.
    public func label(_ key: Int64, _ zone: QueryTimeZone) -> QueryValue {
        switch self {
        case .day, .week: return .string(Self.date(key))
        case .month:
            let y = floorDiv(key, 12)
            let m = floorMod(key, 12) + 1
            return .string(Self.pad(y, 4) + "-" + Self.pad(m, 2) + "-01")
        case .hour:
            let offset = zone.offset(atUTC: key)
            let local = key + offset
            let day = floorDiv(local, 86_400_000)
            let hour = floorMod(local, 86_400_000) / 3_600_000
            let minutes = abs(offset) / 60_000
            let sign = offset < 0 ? "-" : "+"
            return .string(Self.date(day) + "T" + Self.pad(hour, 2) + ":" + Self.pad(floorMod(local, 3_600_000) / 60_000, 2)
                + ":00" + sign + Self.pad(minutes / 60, 2) + ":" + Self.pad(minutes % 60, 2))
        case .hourOfDay, .dayOfWeek: return .int(key)
        }
    }

    static func date(_ day: Int64) -> String {
        let (y, m, d) = CivilTime.civil(fromDays: day)
        return pad(Int64(y), 4) + "-" + pad(Int64(m), 2) + "-" + pad(Int64(d), 2)
    }

    static func pad(_ v: Int64, _ width: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
}

/// Turns the API's range parameters into [from, to) in ms UTC.
public enum QueryRange {
    /// `period` = `today`, `yesterday` or `Nd` (the last N local days, today included: `7d`
    /// is today and the 6 days before, as seed 002's timeRange); else `from`/`to` as dates
    /// (`YYYY-MM-DD`, both included, local days) or instants (ISO-8601 with `T`, `to`
    /// excluded). Neither: `defaultPeriod`.
    public static func resolve(from: String?, to: String?, period: String?, zone: QueryTimeZone, now: Int64,
                               defaultPeriod: String = "7d") throws(QueryError) -> (from: Int64, to: Int64) {
        if let period, from != nil || to != nil {
            throw QueryError.invalid("period", "give either period=\(period) or from/to, not both")
        }
        if from == nil && to == nil {
            return try preset(period ?? defaultPeriod, zone: zone, now: now)
        }
        guard let from else { throw QueryError.invalid("from", "missing (to is given)") }
        guard let to else { throw QueryError.invalid("to", "missing (from is given)") }
        let start = try instant(from, parameter: "from", zone: zone, end: false)
        let end = try instant(to, parameter: "to", zone: zone, end: true)
        guard start < end else {
            throw QueryError.invalid("from", "from (\(from)) must be before to (\(to))")
        }
        return (start, end)
    }

    static func preset(_ period: String, zone: QueryTimeZone, now: Int64) throws(QueryError) -> (from: Int64, to: Int64) {
        let today = zone.day(now)
        switch period {
        case "today", "day": return (zone.startOfDay(today), zone.startOfDay(today + 1))
        case "yesterday": return (zone.startOfDay(today - 1), zone.startOfDay(today))
        default:
            guard period.hasSuffix("d"), let n = Int64(period.dropLast()), (1...3650).contains(n) else {
                throw QueryError.invalid("period", "'\(period)' is not a period (today, yesterday, 1d, 7d, 30d, 90d, …)")
            }
            return (zone.startOfDay(today - n + 1), zone.startOfDay(today + 1))
        }
    }

    /// A date (its start, or with `end` the start of the next day) or an ISO-8601 instant, in ms UTC.
    public static func instant(_ text: String, parameter: String, zone: QueryTimeZone, end: Bool) throws(QueryError) -> Int64 {
        if let day = date(text) {
            return zone.startOfDay(end ? day + 1 : day)
        }
        if text.contains("T") {
            let f = ISO8601DateFormatter()
            f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            if let d = f.date(from: text) { return Int64((d.timeIntervalSince1970 * 1000).rounded()) }
            f.formatOptions = [.withInternetDateTime]
            if let d = f.date(from: text) { return Int64((d.timeIntervalSince1970 * 1000).rounded()) }
        }
        throw QueryError.invalid(parameter, "'\(text)' is not a date (YYYY-MM-DD) or an ISO-8601 instant")
    }

    /// Day number of `YYYY-MM-DD`, or nil.
    public static func date(_ text: String) -> Int64? {
        let u = Array(text.utf8)
        guard u.count == 10, u[4] == UInt8(ascii: "-"), u[7] == UInt8(ascii: "-") else { return nil }
        func num(_ r: Range<Int>) -> Int? {
            var v = 0
            for i in r {
                guard u[i] >= 48 && u[i] <= 57 else { return nil }
                v = v * 10 + Int(u[i] - 48)
            }
            return v
        }
        guard let y = num(0..<4), let m = num(5..<7), let d = num(8..<10), (1...12).contains(m), d >= 1 else { return nil }
        let days = CivilTime.days(year: y, month: m, day: d)
        guard CivilTime.civil(fromDays: days) == (y, m, d) else { return nil }
        return days
    }
}
