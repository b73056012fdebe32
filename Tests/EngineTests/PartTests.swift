import Engine
import Foundation
import TallyTestSupport
import Testing

@Suite("Parts")
struct PartTests {
    static let t0: Int64 = 1_785_542_400_000  // 2026-08-01T00:00:00Z
    static let hour: Int64 = 3_600_000

    func open(_ dir: TemporaryDirectory, granule: Int = 4) throws -> EventStore {
        var o = StoreOptions(directory: dir.path)
        o.backgroundFlush = false
        o.clock = ManualClock(Self.t0)
        o.granuleRows = granule
        return try EventStore(options: o)
    }

    /// Rows exercising every column type: empty strings, multi-byte UTF-8, nulls, max lengths,
    /// binary-encodable ids mixed with free-form ones.
    static func awkwardRows() -> EventBatch {
        var b = EventBatch()
        let ulids = ["01JC3Z8K9QX4M2N7P5R6S8T0VW", "01JC3Z8K9QX4M2N7P5R6S8T0VX", "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"]
        for i in 0..<23 {
            for c in EventColumn.allCases {
                switch c.kind {
                case .int64:
                    if c.isNullable && i % 3 == 0 { b[int: c].appendNull() } else {
                        b[int: c].append(c == .occurredAt || c == .receivedAt ? Self.t0 + Int64(i) * 977 : Int64(i * 1_000_003 - 7))
                    }
                case .identifier:
                    if c.isNullable && i % 4 == 0 { b[string: c].appendNull() } else if i < 12 {
                        // Granules of binary ids; event ids stay unique (duplicates would be refused).
                        b[string: c].append(c == .eventID ? "01JC3Z8K9QX4M2N7P5R6S8T0" + (i < 10 ? "0\(i)" : "\(i)") : ulids[i % 3])
                    } else {
                        // event_id is never empty here: the store gives empty ids a ULID.
                        b[string: c].append(i % 2 == 0 && c != .eventID ? "" : "visitor-\(i)-ü")
                    }
                case .string, .lowCardinality:
                    if c.isNullable && i % 5 == 1 { b[string: c].appendNull() } else if i == 7 {
                        b[string: c].append(String(repeating: "é", count: c.maxLength / 2))
                    } else if i % 6 == 0 {
                        b[string: c].append("")
                    } else {
                        b[string: c].append("\(c.name)-\(i % 4)-日本語-🙂")
                    }
                }
            }
            b.endRow()
        }
        return b
    }

    static func rows(_ b: EventBatch) -> [[String]] {
        (0..<b.count).map { i in
            b.columns.map { c in
                if c.kind == .int64 { return b[int: c].value(at: i).map(String.init) ?? "NULL" }
                return b[string: c].string(at: i) ?? "NULL"
            }
        }
    }

    /// The first differing (row, column) of two sorted row sets, as text, for a readable failure.
    static func firstDifference(_ a: [[String]], _ b: [[String]]) -> String? {
        if a.count != b.count { return "\(a.count) rows vs \(b.count)" }
        let cols = EventColumn.allCases
        for (x, y) in zip(a, b) where x != y {
            for k in x.indices where x[k] != y[k] {
                return "\(cols[k].name): \(x[k].prefix(60)) vs \(y[k].prefix(60))"
            }
        }
        return nil
    }

    @Test("every column type round-trips through a part: empty, multi-byte, null, max length")
    func columnRoundTrip() async throws {
        let dir = TemporaryDirectory()
        let store = try open(dir)
        let input = Self.awkwardRows()
        _ = try await store.ingest(input)
        let buffered = Self.rows(input).sorted { $0.lexicographicallyPrecedes($1) }
        var before: [[String]] = []
        try store.snapshot().scan(ScanRequest()) { before += Self.rows($0) }
        #expect(Self.firstDifference(before.sorted { $0.lexicographicallyPrecedes($1) }, buffered) == nil)
        try store.flush()
        var after: [[String]] = []
        let stats = try store.snapshot().scan(ScanRequest()) { after += Self.rows($0) }
        #expect(stats.granulesRead == 6)
        #expect(Self.firstDifference(after.sorted { $0.lexicographicallyPrecedes($1) }, buffered) == nil)
        try store.close()
    }

    @Test("an event list pages through a part's rows of every column type exactly as stored, a few rows per granule")
    func eventListReadsSelectedRows() async throws {
        let dir = TemporaryDirectory()
        let store = try open(dir)
        let input = Self.awkwardRows()
        _ = try await store.ingest(input)
        try store.flush()
        let sites = Set((0..<input.count).compactMap { input[string: .siteID].string(at: $0) }).filter { !$0.isEmpty }
        #expect(sites.count > 1)
        for site in sites.sorted() {
            let expected = Self.rows(input).filter { $0[EventColumn.allCases.firstIndex(of: .siteID)!] == site }
                .sorted { a, b in
                    let t = EventColumn.allCases.firstIndex(of: .occurredAt)!, e = EventColumn.allCases.firstIndex(of: .eventID)!
                    return Int64(a[t])! != Int64(b[t])! ? Int64(a[t])! > Int64(b[t])! : Array(a[e].utf8).lexicographicallyPrecedes(Array(b[e].utf8)) == false
                }
            var listed: [[String]] = []
            var cursor: EventCursor?
            repeat {
                let page = try EventList.run(EventListQuery(site: site, from: Self.t0 - Self.hour, to: Self.t0 + Self.hour,
                                                            limit: 2, after: cursor), on: store.snapshot())
                listed += Self.rows(page.events)
                cursor = page.next
            } while cursor != nil && listed.count <= expected.count
            #expect(Self.firstDifference(listed, expected) == nil, "site \(site)")
        }
        try store.close()
    }

    @Test("rows inside a part are sorted by site, day, event type, visitor (by its hash), time")
    func sortOrder() async throws {
        let dir = TemporaryDirectory()
        let store = try open(dir)
        var rows: [EventRow] = []
        var rng = SystemRandomNumberGenerator()
        for i in 0..<200 {
            rows.append(EventRow(site: ["b.com", "a.com", "c.org"].randomElement(using: &rng)!,
                                 type: ["page_view", "widget_click", "custom"].randomElement(using: &rng)!,
                                 at: Self.t0 + Int64.random(in: 0..<(20 * 86_400_000), using: &rng),
                                 visitor: "v\(Int.random(in: 0..<9, using: &rng))", id: "e\(i)"))
        }
        _ = try await store.ingest(.of(rows))
        try store.flush()
        var keys: [(String, Int64, String, UInt64, String, Int64)] = []
        try store.snapshot().scan(ScanRequest(columns: [.siteID, .occurredAt, .eventType, .visitorID])) { b in
            for i in 0..<b.count {
                let t = b[int: .occurredAt].values[i]
                let visitor = b[string: .visitorID].string(at: i)!
                keys.append((b[string: .siteID].string(at: i)!, t / 86_400_000, b[string: .eventType].string(at: i)!,
                             TallyHash.hash(visitor), visitor, t))
            }
        }
        #expect(keys.count == 200)
        for k in 1..<keys.count {
            let a = keys[k - 1]
            let b = keys[k]
            #expect(!((b.0, b.1, b.2, b.3, b.4, b.5) < (a.0, a.1, a.2, a.3, a.4, a.5)), "row \(k) is out of order")
        }
        try store.close()
    }

    @Test("pruning reads exactly the granules that can hold the site and time range")
    func pruning() async throws {
        let dir = TemporaryDirectory()
        let store = try open(dir, granule: 10)
        // 3 sites × 10 days × 10 events: each (site, day) fills exactly one granule.
        var rows: [EventRow] = []
        for site in ["a.com", "b.com", "c.com"] {
            for day in 0..<10 {
                for k in 0..<10 {
                    rows.append(EventRow(site: site, at: Self.t0 + Int64(day) * 86_400_000 + Int64(k) * Self.hour,
                                         visitor: "v\(k)", id: "\(site)-\(day)-\(k)"))
                }
            }
        }
        _ = try await store.ingest(.of(rows))
        try store.flush()
        let snap = store.snapshot()
        let request = ScanRequest(site: "b.com", from: Self.t0 + 2 * 86_400_000, to: Self.t0 + 5 * 86_400_000,
                                  columns: [.eventID])
        var ids: [String] = []
        let stats = try snap.scan(request) { b in for i in 0..<b.count { ids.append(b[string: .eventID].string(at: i)!) } }
        #expect(stats.granules == 30)
        #expect(stats.granulesRead == 3)
        #expect(stats.granulesSkippedByIndex == 27)
        #expect(Set(ids) == Set((2..<5).flatMap { d in (0..<10).map { "b.com-\(d)-\($0)" } }))
        let counted = try snap.count(request)
        #expect(counted.count == 30)
        #expect(counted.stats.granulesFromIndex == 3 && counted.stats.granulesRead == 0)
        // A bloom filter rules out granules without the visitor.
        let byID = try snap.count(ScanRequest(site: "c.com", filters: [ColumnFilter(.eventID, ["c.com-7-3"])]))
        #expect(byID.count == 1)
        #expect(byID.stats.granulesSkippedByBloom >= 5)
        // Unknown site: the whole part is skipped.
        #expect(try snap.count(ScanRequest(site: "zzz.com")).stats.partsSkipped == 1)
        try store.close()
    }

    @Test("a flipped byte in a part is reported with the file and offset, and other parts stay readable")
    func flippedByte() async throws {
        let dir = TemporaryDirectory()
        var store = try open(dir)
        _ = try await store.ingest(.of((0..<20).map { EventRow(at: Self.t0 + Int64($0), visitor: "v\($0)", id: "a\($0)") }))
        try store.flush()
        _ = try await store.ingest(.of((0..<20).map { EventRow(site: "other.com", at: Self.t0 + Int64($0), id: "b\($0)") }))
        try store.flush()
        try store.close()
        let parts = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/parts").filter { $0.hasSuffix(".part") }.sorted()
        #expect(parts.count == 2)
        let path = dir.path + "/parts/" + parts[0]
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[40] ^= 0x10  // inside the first block of the first granule
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        store = try open(dir)
        var failure: String?
        do { try store.snapshot().scan(ScanRequest(site: "example.com")) { _ in } } catch { failure = "\(error)" }
        #expect(failure?.contains(parts[0]) == true)
        #expect(failure?.contains("checksum mismatch") == true)
        #expect(failure?.contains("offset") == true)
        #expect(try store.snapshot().count(ScanRequest(site: "other.com")).count == 20)
        try store.close()
    }

    /// Two parts, closed: 20 rows of the default site, then 5 of x.com. Returns the first's name.
    func twoParts(_ dir: TemporaryDirectory) async throws -> String {
        let store = try open(dir)
        _ = try await store.ingest(.of((0..<20).map { EventRow(at: Self.t0 + Int64($0), id: "a\($0)") }))
        try store.flush()
        _ = try await store.ingest(.of((0..<5).map { EventRow(site: "x.com", at: Self.t0 + Int64($0), id: "b\($0)") }))
        try store.flush()
        try store.close()
        return try FileManager.default.contentsOfDirectory(atPath: dir.path + "/parts").filter { $0.hasSuffix(".part") }.sorted()[0]
    }

    @Test("a part whose footer is damaged is reported on open and the rest of the store opens")
    func damagedFooter() async throws {
        let dir = TemporaryDirectory()
        let first = try await twoParts(dir)
        let path = dir.path + "/parts/" + first
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count - 30] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let store = try open(dir)
        #expect(store.openReport.problems.count == 1)
        #expect(store.openReport.problems.first?.contains(first) == true)
        #expect(try store.snapshot().count(ScanRequest(site: "x.com")).count == 5)
        try store.close()
    }

    @Test("a part whose footer lists a granule of no rows (checksum intact) is reported on open, not merged")
    func emptyGranule() async throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/parts/" + (try await twoParts(dir))
        let part = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        // The footer (FORMAT.md, "Part file"): rows, granule rows, 40 bytes of times and WAL LSN,
        // level, sources, granule count, then the first granule's rows. Rows and the first
        // granule's rows are single-byte varints here (20 and 4): the first granule is emptied
        // and the total lowered to match, the CRC in the trailer recomputed.
        let damaged = PartFileBytes.rewritingFooter(part) { footer in
            #expect(footer[8] == 20 && footer[9] == 4)
            #expect(footer[50] == 0 && footer[51] == 0)  // level 0, no sources
            #expect(footer[52] == 5)  // granules of 4 rows
            #expect(footer[53] == 4)
            footer[53] = 0
            footer[8] = 16
        }
        try Data(damaged).write(to: URL(fileURLWithPath: path))
        let store = try open(dir)
        #expect(store.openReport.problems.count == 1)
        #expect(store.openReport.problems.first?.contains("no rows") == true, "\(store.openReport.problems)")
        #expect(try store.snapshot().count(ScanRequest(site: "x.com")).count == 5)
        _ = try store.mergeNow(force: true)
        try store.close()
    }

    @Test("count and scan agree with a brute-force filter for random sites, ranges and types, buffered or in parts")
    func countMatchesBruteForce() async throws {
        let dir = TemporaryDirectory()
        let store = try open(dir, granule: 16)
        var rng = SystemRandomNumberGenerator()
        let sites = ["a.com", "b.com", "c.com", "d.org"]
        let types = ["page_view", "widget_click", "widget_impression"]
        var rows: [EventRow] = []
        for i in 0..<900 {
            rows.append(EventRow(site: sites.randomElement(using: &rng)!, type: types.randomElement(using: &rng)!,
                                 at: Self.t0 + Int64.random(in: 0..<(40 * 86_400_000), using: &rng),
                                 visitor: "v\(Int.random(in: 0..<50, using: &rng))", id: "e\(i)"))
        }
        _ = try await store.ingest(.of(Array(rows[0..<600])))
        try store.flush()
        _ = try await store.ingest(.of(Array(rows[600...])))  // these stay buffered
        let snapshot = store.snapshot()
        for _ in 0..<40 {
            let site = Bool.random(using: &rng) ? sites.randomElement(using: &rng)! : nil
            let a = Self.t0 + Int64.random(in: -86_400_000..<(41 * 86_400_000), using: &rng)
            let b = a + Int64.random(in: 0..<(20 * 86_400_000), using: &rng)
            let type = Bool.random(using: &rng) ? types.randomElement(using: &rng)! : nil
            let filters = type.map { [ColumnFilter(.eventType, [$0])] } ?? []
            let expected = rows.filter { r in
                let t = r.ints[.occurredAt]!!
                return (site == nil || r.values[.siteID]!! == site!) && t >= a && t < b
                    && (type == nil || r.values[.eventType]!! == type!)
            }.count
            let request = ScanRequest(site: site, from: a, to: b, filters: filters, columns: [.eventID])
            var scanned = 0
            try snapshot.scan(request) { scanned += $0.count }
            #expect(try snapshot.count(request).count == expected)
            #expect(scanned == expected)
        }
        try store.close()
    }
}
