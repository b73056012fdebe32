import Engine
@testable import EventJSON
import Foundation
import Testing

@Suite("Timestamps")
struct TimestampTests {
    static func occurredAt(_ json: String) throws -> (Int64?, IngestError?) {
        let r = try decodeEvent(#"{"event_type":"e","occurred_at":\#(json)}"#)
        return (r.batch.count == 1 ? r.batch.int(.occurredAt) : nil, r.errors.first)
    }

    @Test("valid timestamps convert to epoch milliseconds UTC", arguments: [
        (#""2024-01-15T10:30:00.000Z""#, 1_705_314_600_000 as Int64),
        (#""2024-01-15T10:30:00Z""#, 1_705_314_600_000),
        (#""2024-01-15T10:30:00.250Z""#, 1_705_314_600_250),
        (#""2024-01-15T10:30:00.2Z""#, 1_705_314_600_200),
        (#""2024-01-15T10:30:00.25Z""#, 1_705_314_600_250),
        (#""2024-01-15T10:30:00.123456789Z""#, 1_705_314_600_123),
        (#""2024-01-15T10:30:00.999999Z""#, 1_705_314_600_999),
        (#""2024-01-15t10:30:00z""#, 1_705_314_600_000),
        (#""2024-01-15 10:30:00Z""#, 1_705_314_600_000),
        (#""2024-01-15T13:30:00+03:00""#, 1_705_314_600_000),
        (#""2024-01-15T05:00:00.5-05:30""#, 1_705_314_600_500),
        (#""2024-01-15T10:30:00-00:00""#, 1_705_314_600_000),
        (#""2024-02-29T23:59:59.999Z""#, 1_709_251_199_999),
        (#""2000-02-29T00:00:00Z""#, 951_782_400_000),
        (#""1970-01-01T00:00:00Z""#, 0),
        (#""1969-12-31T23:59:59Z""#, -1000),
        (#""0001-01-01T00:00:00Z""#, -62_135_596_800_000),
        (#""9999-12-31T23:59:59.999Z""#, 253_402_300_799_999),
        (#""2024-12-31T23:59:59Z""#, 1_735_689_599_000),
        (#""\u0032024-01-15T10:30:00Z""#, 1_705_314_600_000),
        ("1705314600250", 1_705_314_600_250),
        ("0", 0),
        ("-1000", -1000),
    ])
    func valid(json: String, expected: Int64) throws {
        let (v, e) = try TimestampTests.occurredAt(json)
        #expect(e == nil)
        #expect(v == expected)
    }

    @Test("invalid timestamps reject the event with a reason", arguments: [
        (#""2023-02-29T00:00:00Z""#, "day out of range for the month"),
        (#""1900-02-29T00:00:00Z""#, "day out of range for the month"),
        (#""2024-04-31T00:00:00Z""#, "day out of range for the month"),
        (#""2024-01-00T00:00:00Z""#, "day out of range for the month"),
        (#""2024-00-10T00:00:00Z""#, "month out of range"),
        (#""2024-13-10T00:00:00Z""#, "month out of range"),
        (#""2024-01-10T24:00:00Z""#, "hour out of range"),
        (#""2024-01-10T23:60:00Z""#, "minute out of range"),
        (#""2024-01-10T23:59:60Z""#, "second out of range"),
        (#""2024-01-10T23:59:59+24:00""#, "time zone offset out of range"),
        (#""2024-01-10T23:59:59+01:60""#, "time zone offset out of range"),
        (#""0000-01-01T00:00:00+00:01""#, "outside the years 0000-9999"),
        ("253402300800000", "outside the years 0000-9999"),
        ("-62167219200001", "outside the years 0000-9999"),
    ])
    func invalidRanges(json: String, reason: String) throws {
        let (v, e) = try TimestampTests.occurredAt(json)
        #expect(v == nil)
        #expect(e == IngestError(index: 0, field: "occurred_at", reason: reason))
    }

    @Test("malformed timestamps reject the event", arguments: [
        #""""#, #""2024-01-15""#, #""2024-01-15T10:30Z""#, #""2024-01-15T10:30:00""#, #""2024-01-15T10:30:00.Z""#,
        #""2024-01-15T10:30:00.1234567890Z""#, #""2024-01-15T10:30:00+0300""#, #""2024-01-15T10:30:00+03""#,
        #""2024-1-15T10:30:00Z""#, #""24-01-15T10:30:00Z""#, #""2024/01/15T10:30:00Z""#, #""2024-01-15X10:30:00Z""#,
        #""2024-01-15T10:30:00ZZ""#, #""2024-01-15T10:30:00Z ""#, #"" 2024-01-15T10:30:00Z""#, #""+2024-01-15T10:30:00Z""#,
        #""2024-01-15T1a:30:00Z""#, #""yesterday""#, #""1705314600250""#, #""2024-01-15T10:30:00.12a3Z""#,
    ])
    func malformed(json: String) throws {
        let (v, e) = try TimestampTests.occurredAt(json)
        #expect(v == nil)
        #expect(e?.field == "occurred_at")
    }

    @Test("days-from-civil agrees with Foundation's calendar across four centuries")
    func daysFromCivilMatchesFoundation() {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var date = DateComponents(calendar: calendar, year: 1800, month: 1, day: 1).date!
        let end = DateComponents(calendar: calendar, year: 2401, month: 1, day: 1).date!
        while date < end {
            let c = calendar.dateComponents([.year, .month, .day], from: date)
            let days = Timestamp.daysFromCivil(year: c.year!, month: c.month!, day: c.day!)
            #expect(Double(days) * 86_400 == date.timeIntervalSince1970)
            #expect(c.day! <= Timestamp.daysInMonth(year: c.year!, month: c.month!))
            date = calendar.date(byAdding: .day, value: 1, to: date)!
        }
    }

    @Test("every second of a leap day parses to the instant Foundation computes")
    func agreesWithISO8601Formatter() throws {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        for text in ["2024-02-29T00:00:00.000Z", "2024-02-29T12:34:56.789Z", "2024-02-29T23:59:59.999Z",
                     "1999-12-31T23:59:59.001Z", "2038-01-19T03:14:08.000Z"] {
            let expected = Int64((formatter.date(from: text)!.timeIntervalSince1970 * 1000).rounded())
            let parsed = try Array(text.utf8).withUnsafeBufferPointer { p throws(Timestamp.Problem) in
                try Timestamp.parse(p.baseAddress!, count: p.count)
            }
            #expect(parsed == expected)
        }
    }
}
