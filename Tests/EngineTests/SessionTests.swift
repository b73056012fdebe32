import Engine
import Foundation
import TallyTestSupport
import Testing

/// Session metrics and the session list against a reference that assembles sessions from the
/// same events here.
@Suite("Sessions")
struct SessionTests {
    struct Event {
        var type: String
        var at: Int64
        var visitor: String
        var session: String
        var path: String
        var device: String
        var country: String
    }

    static let start = QueryRange.date("2026-06-01")! * 86_400_000

    /// 600 sessions over four days, up to 40 minutes long; every event at its own millisecond.
    static let events: [Event] = {
        var rng = SeededRandom(state: 5)
        var out: [Event] = []
        var used: Set<Int64> = []
        for s in 0..<600 {
            let visitor = "v\(Int.random(in: 0..<250, using: &rng))"
            let begin = start + Int64.random(in: 0..<(4 * 86_400_000), using: &rng)
            let n = [1, 1, 2, 3, 5, 8].randomElement(using: &rng)!
            for _ in 0..<n {
                var at = begin + Int64.random(in: 0..<2_400_000, using: &rng)
                while used.contains(at) { at += 1 }
                used.insert(at)
                out.append(Event(
                    type: ["page_view", "page_view", "pageview", "widget_impression", "signup"].randomElement(using: &rng)!,
                    at: at, visitor: visitor, session: "\(visitor)-s\(s)",
                    path: ["/", "/pricing", "/blog", "/docs"].randomElement(using: &rng)!,
                    device: ["desktop", "mobile"].randomElement(using: &rng)!,
                    country: ["DE", "US"].randomElement(using: &rng)!))
            }
        }
        return out.shuffled(using: &rng)
    }()

    /// Where a store's sessions come from: parts' rows, their session summaries built from the
    /// parts, the summaries each flush wrote from the rows in memory, or the summaries of parts
    /// merged after ingest (the buffer's rows in every case).
    enum Source: String, CaseIterable, Sendable {
        case raw, summaries, flushed, merged
    }

    static func withStore(_ source: Source = .raw, _ body: (EventStore) throws -> Void) async throws {
        let dir = TemporaryDirectory()
        var options = StoreOptions(directory: dir.path)
        options.backgroundFlush = false
        options.granuleRows = 128
        options.summarizeAtFlush = source == .flushed
        let store = try EventStore(options: options)
        let batches = stride(from: 0, to: events.count, by: 700).map { events[$0..<min(events.count, $0 + 700)] }
        for (i, slice) in batches.enumerated() {
            _ = try await store.ingest(EventBatch.of(slice.enumerated().map { k, e in
                var r = EventRow(site: "shop", type: e.type, at: e.at, visitor: e.visitor, session: e.session,
                                 id: "e\(i)-\(k)", path: e.path)
                r.values[.deviceType] = e.device
                r.values[.countryCode] = e.country
                return r
            }))
            if i % 2 == 0 { try store.flush() }  // parts and the buffer both hold sessions' events
        }
        switch source {
        case .raw: break
        case .summaries: #expect(try store.buildSessionSummaries() == store.snapshot().parts.count)
        case .flushed: #expect(try store.buildSessionSummaries() == 0)
        case .merged:
            _ = try store.mergeNow(force: true)
            try store.buildSessionSummaries()
        }
        try body(store)
        try store.close()
    }

    // MARK: Reference

    struct Session {
        var id: String
        var visitor: String
        var events: [Event]
        var start: Int64 { events.first!.at }
        var end: Int64 { events.last!.at }
        var pageviews: [Event] { events.filter { $0.type == "page_view" || $0.type == "pageview" } }

        func value(_ d: String) -> QueryValue {
            switch d {
            case "entry_page": pageviews.first.map { .string($0.path) } ?? .null
            case "exit_page": pageviews.last.map { .string($0.path) } ?? .null
            case "device_type": .string(events.first!.device)
            case "country_code": .string(events.first!.country)
            case "day": .string(CivilTime.iso8601(ms: start).prefix(10).description)
            default: fatalError(d)
            }
        }
    }

    static let sessions: [Session] = Dictionary(grouping: events, by: \.session).map { id, events in
        let sorted = events.sorted { $0.at < $1.at }
        return Session(id: id, visitor: sorted.first!.visitor, events: sorted)
    }

    static func metric(_ name: String, _ s: [Session]) -> QueryValue {
        func rounded(_ x: Double, _ p: Double) -> QueryValue { .double((x * p).rounded() / p) }
        let withViews = s.filter { !$0.pageviews.isEmpty }.count
        let bounces = s.filter { $0.pageviews.count == 1 }.count
        let durations = s.map { $0.end - $0.start }.sorted()
        switch name {
        case "sessions": return .int(Int64(s.count))
        case "unique_visitors": return .int(Int64(Set(s.map(\.visitor)).count))
        case "events": return .int(Int64(s.reduce(0) { $0 + $1.events.count }))
        case "pageviews": return .int(Int64(s.reduce(0) { $0 + $1.pageviews.count }))
        case "bounces": return .int(Int64(bounces))
        case "bounce_rate": return rounded(withViews == 0 ? 0 : Double(bounces) / Double(withViews) * 100, 100)
        case "visit_duration": return rounded(Double(durations.reduce(0, +)) / Double(s.count) / 1000, 10)
        case "visit_duration_median":
            let m = durations.count % 2 == 1 ? Double(durations[durations.count / 2])
                : Double(durations[durations.count / 2 - 1] + durations[durations.count / 2]) / 2
            return rounded(m / 1000, 10)
        case "views_per_visit": return rounded(Double(s.reduce(0) { $0 + $1.pageviews.count }) / Double(s.count), 100)
        case "conversions:signup": return .int(Int64(s.filter { $0.events.contains { $0.type == "signup" } }.count))
        default: fatalError(name)
        }
    }

    static let metrics = ["sessions", "unique_visitors", "events", "pageviews", "bounces", "bounce_rate", "visit_duration",
                          "visit_duration_median", "views_per_visit", "conversions:signup"]
    /// Sessions starting from day 1 to day 3 (some start the day before and run into it).
    static let from = start + 86_400_000
    static let to = start + 3 * 86_400_000

    static func reference(_ dimensions: [String], where keep: (Session) -> Bool = { _ in true }) -> Set<[QueryValue]> {
        let inRange = sessions.filter { $0.start >= from && $0.start < to && keep($0) }
        let groups = Dictionary(grouping: inRange) { s in dimensions.map { s.value($0) } }
        return Set(groups.map { key, s in key + metrics.map { metric($0, s) } })
    }

    static func run(_ store: EventStore, _ dimensions: [String], filter: QueryFilter? = nil) throws -> QueryResult {
        let q = Query(site: "shop", from: from, to: to, metrics: try metrics.map { try QueryMetric(name: $0) },
                      dimensions: try dimensions.map { try QueryDimension(name: $0) }, filter: filter, exact: true,
                      denseTime: false)
        return try QueryExecutor.run(q, on: store.snapshot())
    }

    // MARK: Tests

    @Test("session metrics by session dimensions equal the reference",
          arguments: Source.allCases, [[], ["entry_page"], ["exit_page"], ["device_type"], ["day"], ["entry_page", "country_code"]])
    func metricsByDimension(source: Source, dimensions: [String]) async throws {
        try await Self.withStore(source) { store in
            let result = try Self.run(store, dimensions)
            #expect(Set(result.rows) == Self.reference(dimensions))
            #expect(result.columns == dimensions + Self.metrics)
            // Summaries answer for the parts; the buffer's rows are read raw.
            #expect((result.stats.sessionSummariesRead > 0) == (source != .raw))
            #expect((result.stats.granulesRead > 0) == (source == .raw))
        }
    }

    @Test("filters on entry and exit pages and on the first event's dimensions", arguments: Source.allCases)
    func filters(source: Source) async throws {
        try await Self.withStore(source) { store in
            let cases: [(QueryFilter, (Session) -> Bool)] = [
                (.condition(.entryPage, .is, ["/"]), { $0.value("entry_page") == .string("/") }),
                (.condition(.exitPage, .contains, ["PRIC"]), { $0.value("exit_page") == .string("/pricing") }),
                (.condition(.entryPage, .is, [nil]), { $0.pageviews.isEmpty }),
                (.and([.condition(.column(.deviceType), .isNot, ["mobile"]), .not(.condition(.exitPage, .prefix, ["/b"]))]),
                 { $0.events.first!.device != "mobile" && $0.value("exit_page") != .string("/blog") }),
            ]
            for (filter, keep) in cases {
                let result = try Self.run(store, ["device_type"], filter: filter)
                #expect(Set(result.rows) == Self.reference(["device_type"], where: keep), "\(filter)")
            }
        }
    }

    @Test("the session list: sessions starting in the range, newest first, paged, with their pages and dimensions")
    func sessionList() async throws {
        try await Self.withStore { store in
            var q = Query(site: "shop", from: Self.from, to: Self.to, metrics: [.sessions])
            q.filter = .condition(.column(.deviceType), .is, ["desktop"])
            q.limit = 25
            q.offset = 10
            let (listed, total, _) = try SessionExecutor.list(q, on: store.snapshot())
            let expected = Self.sessions.filter { $0.start >= Self.from && $0.start < Self.to && $0.events.first!.device == "desktop" }
                .sorted { $0.start > $1.start }
            #expect(total == expected.count)
            #expect(listed.map(\.sessionID) == expected.dropFirst(10).prefix(25).map(\.id))
            for (record, session) in zip(listed, expected.dropFirst(10)) {
                #expect(record.visitorID == session.visitor)
                #expect(record.start == session.start && record.end == session.end)
                #expect(record.events == session.events.count && record.pageviews == session.pageviews.count)
                #expect(record.entryPage.map { QueryValue.string($0) } ?? .null == session.value("entry_page"))
                #expect(record.exitPage.map { QueryValue.string($0) } ?? .null == session.value("exit_page"))
                #expect(record.dimensions.first { $0.name == "country_code" }?.value == .string(session.events.first!.country))
            }
        }
    }

    @Test("events of one session at the same millisecond give the same answer whichever was stored first")
    func ties() async throws {
        func answer(_ order: [(String, String)]) async throws -> ([[QueryValue]], [QueryValue]) {
            let dir = TemporaryDirectory()
            var options = StoreOptions(directory: dir.path)
            options.backgroundFlush = false
            let store = try EventStore(options: options)
            defer { try? store.close() }
            for (i, (path, device)) in order.enumerated() {
                var r = EventRow(site: "shop", at: Self.start, visitor: "v1", session: "s1", id: "e\(i)", path: path)
                r.values[.deviceType] = device
                _ = try await store.ingest(EventBatch.of([r, EventRow(site: "shop", at: Self.start + 1000, id: "x\(i)", path: "/z")]))
                if i == 0 { try store.flush() }  // one in a part, one in the buffer
            }
            let q = Query(site: "shop", from: Self.start, to: Self.start + 86_400_000, metrics: [.sessions],
                          dimensions: [.entryPage, .exitPage, .column(.deviceType)], denseTime: false)
            let sessions = try QueryExecutor.run(q, on: store.snapshot()).rows
            var f = FunnelQuery(funnel: FunnelDefinition(name: "f", steps: [FunnelStep(eventType: "page_view")]), site: "shop",
                                from: Self.start, to: Self.start + 86_400_000)
            f.breakdown = .column(.deviceType)
            let funnel = try FunnelExecutor.run(f, on: store.snapshot()).breakdown.map(\.value)
            return (sessions, funnel)
        }
        let one = try await answer([("/b", "mobile"), ("/a", "desktop")])
        let other = try await answer([("/a", "desktop"), ("/b", "mobile")])
        #expect(one.0 == other.0)
        #expect(one.0 == [[.string("/a"), .string("/z"), .string("desktop"), .int(1)]])
        #expect(one.1 == other.1)
    }

    @Test("session metrics with event dimensions or event metrics are refused naming the parameter")
    func errors() async throws {
        try await Self.withStore { store in
            let bad: [([String], [String], String)] = [
                (["bounce_rate"], ["page_path"], "dimensions"),
                (["bounce_rate", "count:signup"], [], "metrics"),
                (["pageviews"], ["entry_page", "props.plan"], "dimensions"),
                (["bounce_rate", "sum:value"], [], "metrics"),
            ]
            for (metrics, dimensions, parameter) in bad {
                let q = Query(site: "shop", from: Self.from, to: Self.to, metrics: try metrics.map { try QueryMetric(name: $0) },
                              dimensions: try dimensions.map { try QueryDimension(name: $0) })
                #expect(throws: QueryError.self) { try QueryExecutor.run(q, on: store.snapshot()) }
                do { _ = try QueryExecutor.run(q, on: store.snapshot()) } catch let e as QueryError { #expect(e.parameter == parameter) }
            }
            #expect(throws: QueryError.self) { try QueryMetric(name: "ratio:bounces/sessions") }
        }
    }
}
