import Foundation
import Server
import Workload

/// Request bodies for `tally bench ingest`, rendered before the clock starts: seed-000 flat
/// batches (`{"events":[...]}`) from the workload generator, each event's `site_id` removed
/// (the server puts it in the write key's property) and bot user agents replaced by a browser's
/// (the server filters bots). `stamp` writes a run-unique sequence number into every event_id
/// of a copy, so that no two POSTs of a run repeat an id (the server's dedupe would answer
/// "duplicates") and neither do two runs against the same server.
struct IngestPayloads: Sendable {
    struct Body: Sendable {
        var bytes: [UInt8]
        /// Byte offset of each event's event_id value (26 ULID characters) in `bytes`.
        var idOffsets: [Int]
        /// Byte offsets of the visitor_id and session_id values that are ULIDs.
        var identityOffsets: [Int] = []
    }

    let bodies: [Body]
    let eventsPerBody: Int

    /// The user agent that replaces a bot's: common desktop Chrome.
    static let browserUserAgent = Array(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36"
            .utf8)

    /// ULID characters 10..<18 of every event_id hold the run's nonce, 18..<26 the event's
    /// sequence number (40 bits each, Crockford base32); 0..<10 keep the time of occurred_at.
    static let nonceOffset = 10
    static let sequenceOffset = 18
    static let sequenceDigits = 8
    static let maxSequence: UInt64 = 1 << 40
    /// ULID characters 10..<14 of every visitor_id and session_id hold the pool cycle (how many
    /// times the bodies were posted before, 20 bits): each pass over the pool brings new
    /// visitors and sessions, as live traffic does. Posting the same ones again made every
    /// visitor's events a hundred copies apart only in event_id (the same visitor, type and
    /// millisecond), which no real site sends and which sent every merge comparison to the ids.
    static let cycleOffset = 10
    static let cycleDigits = 4

    /// `count` bodies of `batch` events each from the generator with `seed`; every event_id
    /// carries `nonce` (its low 40 bits).
    init(batch: Int, count: Int, seed: UInt64 = 42, nonce: UInt64) {
        // Live traffic: the last 30 days (the server refuses events older than its raw retention).
        var generator = WorkloadGenerator(WorkloadConfig(seed: seed, events: batch * count, days: 30,
                                                         end: (Int64(Date().timeIntervalSince1970 * 1000) / 86_400_000 + 1) * 86_400_000))
        let bots = BotRules.builtIn
        var nonceChars = [UInt8](repeating: 0, count: 8)
        Self.base32(nonce, into: &nonceChars)
        var bodies: [Body] = []
        var ndjson: [UInt8] = []
        while bodies.count < count {
            ndjson.removeAll(keepingCapacity: true)
            let n = generator.nextNDJSON(batch, into: &ndjson)
            if n == 0 { break }
            var body = Body(bytes: Array(#"{"events":["#.utf8), idOffsets: [])
            body.bytes.reserveCapacity(ndjson.count + 16)
            for line in ndjson.split(separator: UInt8(ascii: "\n")) {
                if !body.idOffsets.isEmpty { body.bytes.append(UInt8(ascii: ",")) }
                var event = Array(line)
                if let site = Self.stringValue(of: "site_id", in: event) {
                    // `,"site_id":"…"` (event_id is always the first member, so a comma precedes it)
                    let keyStart = site.lowerBound - #""site_id":""#.utf8.count
                    event.removeSubrange((keyStart - 1)..<(site.upperBound + 1))
                }
                if let ua = Self.stringValue(of: "user_agent", in: event),
                   bots.reason(forUserAgent: String(decoding: event[ua], as: UTF8.self)) != nil
                {
                    event.replaceSubrange(ua, with: Self.browserUserAgent)
                }
                guard let id = Self.stringValue(of: "event_id", in: event), id.count == 26 else {
                    preconditionFailure("the generator writes a 26-character ULID event_id first")
                }
                event.replaceSubrange((id.lowerBound + Self.nonceOffset)..<(id.lowerBound + Self.sequenceOffset),
                                      with: nonceChars)
                body.idOffsets.append(body.bytes.count + id.lowerBound)
                for key in ["visitor_id", "session_id"] {
                    if let v = Self.stringValue(of: key, in: event), v.count == 26 {
                        body.identityOffsets.append(body.bytes.count + v.lowerBound)
                    }
                }
                body.bytes += event
            }
            body.bytes += Array("]}".utf8)
            bodies.append(body)
        }
        self.bodies = bodies
        eventsPerBody = batch
    }

    /// Writes `sequence`, `sequence + 1`, … into the event_ids of `bytes`, a copy of `body`,
    /// and `cycle` into its visitor and session ids.
    static func stamp(_ bytes: UnsafeMutableRawBufferPointer, body: Body, firstSequence sequence: UInt64, cycle: UInt64 = 0) {
        for (i, offset) in body.idOffsets.enumerated() {
            let digits = UnsafeMutableRawBufferPointer(
                rebasing: bytes[(offset + sequenceOffset)..<(offset + sequenceOffset + sequenceDigits)])
            base32(sequence + UInt64(i), into: digits)
        }
        for offset in body.identityOffsets {
            base32(cycle, into: UnsafeMutableRawBufferPointer(rebasing: bytes[(offset + cycleOffset)..<(offset + cycleOffset + cycleDigits)]))
        }
    }

    static let crockford = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    /// The low 5 × count bits of `value` as Crockford base32 digits, most significant first.
    static func base32<Digits: MutableCollection<UInt8>>(_ value: UInt64, into digits: inout Digits)
    where Digits.Index == Int {
        var v = value
        var i = digits.endIndex
        while i > digits.startIndex {
            i -= 1
            digits[i] = crockford[Int(v & 31)]
            v >>= 5
        }
    }

    static func base32(_ value: UInt64, into digits: UnsafeMutableRawBufferPointer) {
        var d = digits
        base32(value, into: &d)
    }

    /// The range of the string value of the first member `key` in a flat JSON object line,
    /// without its quotes (escapes are skipped over, not decoded).
    static func stringValue(of key: String, in line: [UInt8]) -> Range<Int>? {
        let needle = Array("\"\(key)\":\"".utf8)
        guard line.count >= needle.count else { return nil }
        var i = 0
        while i + needle.count <= line.count {
            if line[i] == needle[0] && line[i..<(i + needle.count)].elementsEqual(needle) {
                let start = i + needle.count
                var j = start
                while j < line.count && line[j] != UInt8(ascii: "\"") {
                    j += line[j] == UInt8(ascii: "\\") ? 2 : 1
                }
                return j < line.count ? start..<j : nil
            }
            i += 1
        }
        return nil
    }
}
