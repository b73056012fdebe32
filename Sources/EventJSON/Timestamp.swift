/// Event times: RFC 3339 / ISO-8601 strings and epoch milliseconds, to milliseconds since
/// the Unix epoch, UTC.
///
/// Hand-written because it is on the hot path: `ISO8601DateFormatter` parses ≈ 25k/s here,
/// `Date.ISO8601FormatStyle` ≈ 1.7M/s, a byte parser ≈ 44M/s (DESIGN.md, "Timestamps").
enum Timestamp {
    /// Why a timestamp was refused; the text is the `reason` of the event's rejection.
    enum Problem: Error, Equatable {
        case format, month, day, hour, minute, second, offset, range

        var reason: String {
            switch self {
            case .format:
                "not an ISO-8601 timestamp (expected YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm) or epoch milliseconds)"
            case .month: "month out of range"
            case .day: "day out of range for the month"
            case .hour: "hour out of range"
            case .minute: "minute out of range"
            case .second: "second out of range"
            case .offset: "time zone offset out of range"
            case .range: "outside the years 0000-9999"
            }
        }
    }

    /// 0000-01-01T00:00:00.000Z.
    static let minMillis: Int64 = -62_167_219_200_000
    /// 9999-12-31T23:59:59.999Z.
    static let maxMillis: Int64 = 253_402_300_799_999

    /// Parses `YYYY-MM-DD[T t space]hh:mm:ss[.f{1,9}](Z|z|±hh:mm)`. A fraction beyond
    /// milliseconds is truncated; a time without a zone is refused (its instant is unknown).
    static func parse(_ p: UnsafePointer<UInt8>, count n: Int) throws(Problem) -> Int64 {
        guard n >= 20 else { throw .format }
        guard p[4] == UInt8(ascii: "-"), p[7] == UInt8(ascii: "-"), p[13] == UInt8(ascii: ":"),
            p[16] == UInt8(ascii: ":")
        else { throw .format }
        let t = p[10]
        guard t == UInt8(ascii: "T") || t == UInt8(ascii: "t") || t == UInt8(ascii: " ") else { throw .format }
        let year = try digits(p, 0, 4)
        let month = try digits(p, 5, 2)
        let day = try digits(p, 8, 2)
        let hour = try digits(p, 11, 2)
        let minute = try digits(p, 14, 2)
        let second = try digits(p, 17, 2)
        guard month >= 1 && month <= 12 else { throw .month }
        guard day >= 1 && day <= daysInMonth(year: year, month: month) else { throw .day }
        guard hour < 24 else { throw .hour }
        guard minute < 60 else { throw .minute }
        guard second < 60 else { throw .second }

        var i = 19
        var millis = 0
        if p[i] == UInt8(ascii: ".") {
            i += 1
            let first = i
            while i < n, p[i] &- UInt8(ascii: "0") < 10 {
                if i - first < 3 { millis = millis * 10 + Int(p[i] &- UInt8(ascii: "0")) }
                i += 1
            }
            let count = i - first
            guard count >= 1 && count <= 9 else { throw .format }
            if count == 1 { millis *= 100 } else if count == 2 { millis *= 10 }
        }
        guard i < n else { throw .format }
        var offsetMinutes = 0
        let z = p[i]
        if z == UInt8(ascii: "Z") || z == UInt8(ascii: "z") {
            i += 1
        } else if z == UInt8(ascii: "+") || z == UInt8(ascii: "-") {
            guard n - i >= 6, p[i + 3] == UInt8(ascii: ":") else { throw .format }
            let oh = try digits(p, i + 1, 2)
            let om = try digits(p, i + 4, 2)
            guard oh < 24 && om < 60 else { throw .offset }
            offsetMinutes = (oh * 60 + om) * (z == UInt8(ascii: "-") ? -1 : 1)
            i += 6
        } else {
            throw .format
        }
        guard i == n else { throw .format }

        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = ((days * 24 + hour) * 60 + minute - offsetMinutes) * 60 + second
        let result = Int64(seconds) * 1000 + Int64(millis)
        guard result >= minMillis && result <= maxMillis else { throw .range }
        return result
    }

    /// Validates an integer number of milliseconds since the epoch.
    static func epochMillis(_ v: Int64) throws(Problem) -> Int64 {
        guard v >= minMillis && v <= maxMillis else { throw .range }
        return v
    }

    @inline(__always) private static func digits(_ p: UnsafePointer<UInt8>, _ at: Int, _ count: Int) throws(Problem)
        -> Int
    {
        var v = 0
        for k in 0..<count {
            let d = p[at + k] &- UInt8(ascii: "0")
            guard d < 10 else { throw .format }
            v = v * 10 + Int(d)
        }
        return v
    }

    static func isLeapYear(_ y: Int) -> Bool { y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
