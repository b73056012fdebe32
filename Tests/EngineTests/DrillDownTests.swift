import Engine
import Foundation
import TallyTestSupport
import Testing

/// Event lists (drill-down) and funnels against brute-force references over the same events.
@Suite("Event lists and funnels")
struct DrillDownTests {
    struct Event {
        var id: String
        var type: String
        var at: Int64
        var visitor: String
        var session: String
        var path: String
        var country: String
    }

    static let start = QueryRange.date("2026-05-01")! * 86_400_000

    /// Few visitors with short sessions; times on whole seconds of a few days, so that many
    /// events share an instant (the cursor must order them by event_id).
    static let events: [Event] = {
        var rng = SeededRandom(state: 11)
        var out: [Event] = []
        let types = ["page_view", "page_view", "page_view", "page_view", "signup", "purchase", "scroll"]
        let paths = ["/", "/pricing", "/", "/pricing", "/blog", "/docs"]
        // Each session's events fall within half an hour of its start.
        let sessionStarts = (0..<1200).map { _ in Int64.random(in: 0..<(3 * 86_400 - 1800), using: &rng) }
        for i in 0..<4000 {
            let v = Int.random(in: 0..<300, using: &rng)
            let s = Int.random(in: 0..<4, using: &rng)
            let seconds = sessionStarts[v * 4 + s] + Int64.random(in: 0..<1800, using: &rng)
            out.append(Event(
                id: String(format: "e%05d", Int.random(in: 0..<100_000, using: &rng)) + "-\(i)",
                type: types.randomElement(using: &rng)!,
                at: start + seconds / 60 * 60_000,
                visitor: "v\(v)", session: "v\(v)-s\(s)",
                path: paths.randomElement(using: &rng)!, country: ["DE", "US", "FR"].randomElement(using: &rng)!))
        }
        return out
    }()

    static func batch(_ events: ArraySlice<Event>) -> EventBatch {
        EventBatch.of(events.map { e in
            var r = EventRow(site: "shop.example", type: e.type, at: e.at, visitor: e.visitor, session: e.session,
                             id: e.id, path: e.path)
            r.values[.countryCode] = e.country
            return r
        })
    }

    /// Two parts and the in-memory buffer.
    static func withStore(_ body: (EventStore) throws -> Void) async throws {
        let dir = TemporaryDirectory()
        var options = StoreOptions(directory: dir.path)
        options.backgroundFlush = false
        options.granuleRows = 64
        let store = try EventStore(options: options)
        let n = events.count
        _ = try await store.ingest(batch(events[0..<(n / 3)]))
        try store.flush()
        _ = try await store.ingest(batch(events[(n / 3)..<(2 * n / 3)]))
        try store.flush()
        _ = try await store.ingest(batch(events[(2 * n / 3)...]))
        try body(store)
        try store.close()
    }

    static func ids(_ page: EventPage) -> [String] {
        (0..<page.events.count).map { page.events[string: .eventID].string(at: $0) ?? "" }
    }

    static func newestFirst(_ a: Event, _ b: Event) -> Bool {
        a.at != b.at ? a.at > b.at : Array(b.id.utf8).lexicographicallyPrecedes(Array(a.id.utf8))
    }

    // MARK: Event lists

    @Test("pages of an event list, followed by their cursors, are the matching events newest first, each once",
          arguments: [nil, "visitor", "contains", "or"])
    func eventListPages(filterKind: String?) async throws {
        let filter: QueryFilter?
        let keep: (Event) -> Bool
        switch filterKind {
        case "visitor":
            filter = .condition(.column(.visitorID), .is, ["v7"])
            keep = { $0.visitor == "v7" }
        case "contains":
            filter = .and([.condition(.column(.pagePath), .contains, ["PRIC"]), .condition(.column(.eventType), .is, ["page_view"])])
            keep = { $0.path.contains("pric") && $0.type == "page_view" }
        case "or":
            filter = .or([.condition(.column(.countryCode), .is, ["DE"]), .not(.condition(.column(.eventType), .isNot, ["signup"]))])
            keep = { $0.country == "DE" || $0.type == "signup" }
        default:
            filter = nil
            keep = { _ in true }
        }
        let from = Self.start + 3_600_000
        let to = Self.start + 2 * 86_400_000
        let expected = Self.events.filter { $0.at >= from && $0.at < to && keep($0) }.sorted(by: Self.newestFirst).map(\.id)
        #expect(!expected.isEmpty)
        try await Self.withStore { store in
            var seen: [String] = []
            var cursor: EventCursor?
            var pages = 0
            repeat {
                var q = EventListQuery(site: "shop.example", from: from, to: to, filter: filter,
                                       columns: [.eventID, .pagePath], limit: 37, after: cursor)
                q.rawFloor = nil
                let page = try EventList.run(q, on: store.snapshot())
                seen += Self.ids(page)
                #expect(page.events.count == 37 || page.next == nil)
                // Cursors are opaque tokens that survive a round trip.
                cursor = try page.next.map { try EventCursor(token: $0.token) }
                pages += 1
            } while cursor != nil && pages < 1000
            #expect(seen == expected)
        }
    }

    @Test("a visitor's history is found through the bloom filters, and other sites and ranges are not listed")
    func visitorHistory() async throws {
        try await Self.withStore { store in
            let q = EventListQuery(site: "shop.example", from: Self.start, to: Self.start + 3 * 86_400_000,
                                   filter: .condition(.column(.visitorID), .is, ["v42"]), limit: 1000)
            let page = try EventList.run(q, on: store.snapshot())
            let expected = Self.events.filter { $0.visitor == "v42" }.sorted(by: Self.newestFirst).map(\.id)
            #expect(Self.ids(page) == expected)
            #expect(page.next == nil)
            #expect(page.stats.granulesSkippedByBloom > 0)
            let other = try EventList.run(EventListQuery(site: "other.example", from: Self.start, to: Self.start + 3 * 86_400_000),
                                          on: store.snapshot())
            #expect(other.events.count == 0)
        }
    }

    @Test("ids stored in binary form (ULID, UUID) are found by their text, in parts and in the buffer")
    func binaryIDs() async throws {
        let dir = TemporaryDirectory()
        var options = StoreOptions(directory: dir.path)
        options.backgroundFlush = false
        let store = try EventStore(options: options)
        defer { try? store.close() }
        let ulid = "01J9ZK3V8M3K2Q6W7X8Y9Z0ABC"
        let uuid = "6f1c2f9e-8f7b-4c1e-9a53-2f4b8f0e9d11"
        let rows = (0..<300).map { i in
            EventRow(site: "s", at: Self.start + Int64(i) * 1000, visitor: [ulid, uuid, "v-text"][i % 3],
                     session: i % 2 == 0 ? "01J9ZK3V8M3K2Q6W7X8Y9Z0AB\(i % 10)" : uuid, id: "e\(i)")
        }
        _ = try await store.ingest(EventBatch.of(Array(rows[0..<200])))
        try store.flush()
        _ = try await store.ingest(EventBatch.of(Array(rows[200...])))
        for (column, value) in [(EventColumn.visitorID, ulid), (.visitorID, uuid), (.sessionID, uuid), (.sessionID, "01J9ZK3V8M3K2Q6W7X8Y9Z0AB4")] {
            let q = EventListQuery(site: "s", from: Self.start, to: Self.start + 86_400_000,
                                   filter: .condition(.column(column), .is, [value]), limit: 1000)
            let page = try EventList.run(q, on: store.snapshot())
            let expected = rows.filter { ($0.values[column] ?? nil) == value }.map { $0.values[.eventID]!! }.reversed()
            #expect(Self.ids(page) == Array(expected), "\(column.name) \(value)")
        }
    }

    @Test("a damaged block is a storage error (the server answers 500), not the asker's")
    func damagedPart() async throws {
        let dir = TemporaryDirectory()
        var options = StoreOptions(directory: dir.path)
        options.backgroundFlush = false
        options.summarizeAtFlush = false  // the session question reads the part's rows, not its summaries
        var store = try EventStore(options: options)
        _ = try await store.ingest(Self.batch(Self.events[0..<2000]))
        try store.flush()
        try store.close()
        let parts = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/parts").filter { $0.hasSuffix(".part") }
        let path = dir.path + "/parts/" + parts[0]
        // One byte in the middle of every occurred_at block: every question reads them.
        let part = try Part.openForInspection(path: path, name: parts[0], number: 1)
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        for block in part.footer.column(.occurredAt)!.granules { bytes[block.offset + block.length / 2] ^= 0x5A }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        store = try EventStore(options: options)
        defer { try? store.close() }
        let range = (Self.start, Self.start + 3 * 86_400_000)
        let questions: [(String, () throws -> Void)] = [
            ("report", { _ = try QueryExecutor.run(Query(site: "shop.example", from: range.0, to: range.1, metrics: [.events],
                                                         dimensions: [.time(.hour)], exact: true), on: store.snapshot()) }),
            ("sessions", { _ = try QueryExecutor.run(Query(site: "shop.example", from: range.0, to: range.1,
                                                           metrics: [.session(.bounceRate)]), on: store.snapshot()) }),
            ("funnel", { _ = try FunnelExecutor.run(FunnelQuery(funnel: FunnelDefinition(name: "f", steps: Self.steps),
                                                                site: "shop.example", from: range.0, to: range.1), on: store.snapshot()) }),
            ("events", { _ = try EventList.run(EventListQuery(site: "shop.example", from: range.0, to: range.1), on: store.snapshot()) }),
        ]
        for (name, ask) in questions {
            do {
                try ask()
                Issue.record("\(name): a damaged part was read without an error")
            } catch let e as QueryError {
                #expect(e.kind == .storage, "\(name): \(e)")
            }
        }
    }

    @Test("bad limits and cursors are refused naming the parameter")
    func eventListErrors() throws {
        #expect(throws: QueryError.invalid("limit", "must be 1–1000, not 0")) {
            try EventList.run(EventListQuery(site: "s", from: 0, to: 1, limit: 0), on: Snapshot())
        }
        #expect(throws: QueryError.self) { try EventCursor(token: "not a cursor!") }
        do {
            _ = try EventCursor(token: "bm9wZQ")  // "nope": no colon
            Issue.record("accepted a malformed cursor")
        } catch {
            #expect(error.parameter == "cursor")
        }
    }

    // MARK: Funnels

    static let steps = [
        FunnelStep(eventType: "page_view", filter: .condition(.column(.pagePath), .is, ["/"])),
        FunnelStep(eventType: "page_view", filter: .condition(.column(.pagePath), .is, ["/pricing"])),
        FunnelStep(eventType: "signup"),
        FunnelStep(eventType: "purchase"),
    ]

    static func meets(_ e: Event, _ step: Int) -> Bool {
        switch step {
        case 0: e.type == "page_view" && e.path == "/"
        case 1: e.type == "page_view" && e.path == "/pricing"
        case 2: e.type == "signup"
        default: e.type == "purchase"
        }
    }

    /// The level by definition, searched exhaustively: the longest k for which events
    /// e1 … ek exist at increasing positions of the (time, step)-ordered list of (event, step)
    /// pairs, ei meeting step i, all within `window` of e1.
    static func referenceLevel(_ group: [Event], window: Int64) -> Int {
        var pairs: [(at: Int64, step: Int)] = []
        for e in group { for s in 0..<4 where meets(e, s) { pairs.append((e.at, s)) } }
        pairs.sort { $0.at != $1.at ? $0.at < $1.at : $0.step < $1.step }
        var best = 0
        func extend(_ position: Int, level: Int, first: Int64) {
            best = max(best, level)
            if level == 4 { return }
            for p in (position + 1)..<max(position + 1, pairs.count) where pairs[p].step == level && pairs[p].at <= first + window {
                extend(p, level: level + 1, first: first)
            }
        }
        for (p, x) in pairs.enumerated() where x.step == 0 { extend(p, level: 1, first: x.at) }
        return best
    }

    @Test("funnel entrants per step equal the exhaustive reference, per session and per visitor",
          arguments: [FunnelDefinition.CountBy.session, .visitor], [Int64(600_000), 86_400_000])
    func funnelMatchesReference(countBy: FunnelDefinition.CountBy, window: Int64) async throws {
        let from = Self.start
        let to = Self.start + 3 * 86_400_000
        let funnel = FunnelDefinition(name: "buy", steps: Self.steps, windowMilliseconds: window, countBy: countBy)
        let groups = Dictionary(grouping: Self.events) { countBy == .session ? $0.session : $0.visitor }
        var expected = [0, 0, 0, 0]
        for (_, g) in groups {
            let level = Self.referenceLevel(g, window: window)
            for i in 0..<level { expected[i] += 1 }
        }
        try await Self.withStore { store in
            let result = try FunnelExecutor.run(FunnelQuery(funnel: funnel, site: "shop.example", from: from, to: to),
                                                on: store.snapshot())
            #expect(result.total.reached == expected)
            #expect(expected[3] > 0 && expected[0] > expected[3])
            #expect(result.total.conversionFromFirst(2) == Double(expected[2]) / Double(expected[0]))
            #expect(result.total.conversionFromPrevious(3) == Double(expected[3]) / Double(expected[2]))
            #expect(result.total.medianSecondsFromPrevious[0] == nil)
            #expect(result.total.medianSecondsFromPrevious[1].map { $0 >= 0 && $0 <= Double(window) / 1000 } == true)

            // A breakdown splits the same entrants by a dimension of their first step.
            var q = FunnelQuery(funnel: funnel, site: "shop.example", from: from, to: to)
            q.breakdown = .column(.countryCode)
            let split = try FunnelExecutor.run(q, on: store.snapshot())
            #expect(Set(split.breakdown.map(\.value)) == [.string("DE"), .string("US"), .string("FR")])
            for i in 0..<4 { #expect(split.breakdown.reduce(0) { $0 + $1.steps.reached[i] } == expected[i]) }
            #expect(split.breakdown.map { $0.steps.reached[0] } == split.breakdown.map { $0.steps.reached[0] }.sorted(by: >))
        }
    }

    /// One session's events as (type, seconds after the start).
    static func level(_ sequence: [(String, Int64)], strict: Bool, window: Int64 = 3_600_000) async throws -> FunnelResult {
        let dir = TemporaryDirectory()
        var options = StoreOptions(directory: dir.path)
        options.backgroundFlush = false
        let store = try EventStore(options: options)
        defer { try? store.close() }
        _ = try await store.ingest(EventBatch.of(sequence.enumerated().map { i, x in
            EventRow(site: "s", type: x.0, at: start + x.1 * 1000, id: "e\(i)")
        }))
        let steps = ["A", "B", "C"].map { FunnelStep(eventType: $0) }
        let funnel = FunnelDefinition(name: "f", steps: steps, windowMilliseconds: window, strictOrder: strict)
        return try FunnelExecutor.run(FunnelQuery(funnel: funnel, site: "s", from: start, to: start + 86_400_000),
                                      on: store.snapshot())
    }

    @Test("strict order and the window, on ClickHouse's documented cases")
    func funnelModes() async throws {
        // windowFunnel's doc: A->B->D->C stops at D in strict_order (level 2), reaches C otherwise.
        #expect(try await Self.level([("A", 0), ("B", 1), ("D", 2), ("C", 3)], strict: false).total.reached == [1, 1, 1])
        #expect(try await Self.level([("A", 0), ("B", 1), ("D", 2), ("C", 3)], strict: true).total.reached == [1, 1, 0])
        // An event before the first step does not interrupt; a step out of order does.
        #expect(try await Self.level([("D", 0), ("A", 1), ("B", 2), ("C", 3)], strict: true).total.reached == [1, 1, 1])
        #expect(try await Self.level([("A", 0), ("C", 1), ("B", 2), ("C", 3)], strict: true).total.reached == [1, 0, 0])
        #expect(try await Self.level([("A", 0), ("C", 1), ("B", 2), ("C", 3)], strict: false).total.reached == [1, 1, 1])
        // The window runs from step 1: C at 2 h is out of a 1 h window, unless a later A restarts it.
        #expect(try await Self.level([("A", 0), ("B", 1800), ("C", 7200)], strict: false).total.reached == [1, 1, 0])
        #expect(try await Self.level([("A", 0), ("B", 1800), ("A", 5000), ("B", 6000), ("C", 7200)], strict: false)
            .total.reached == [1, 1, 1])
        // Step times: median seconds from the previous step of the chain that counted.
        let timed = try await Self.level([("A", 0), ("B", 10), ("A", 100), ("B", 130), ("C", 190)], strict: false)
        #expect(timed.total.medianSecondsFromPrevious == [nil, 30, 60])
        // No step 1, no entrant.
        #expect(try await Self.level([("B", 0), ("C", 1)], strict: false).total.reached == [0, 0, 0])
    }

    @Test("funnel definitions that cannot run are refused naming the field")
    func funnelErrors() throws {
        let none = FunnelDefinition(name: "f", steps: [])
        #expect(throws: QueryError.self) { try none.validate() }
        do {
            try FunnelDefinition(name: "f", steps: [FunnelStep(eventType: "a")], windowMilliseconds: 0).validate()
            Issue.record("accepted a zero window")
        } catch {
            #expect(error.parameter == "window_seconds")
        }
    }
}
