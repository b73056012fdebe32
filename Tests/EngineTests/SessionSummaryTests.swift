@_spi(Testing) import Engine
import Foundation
import TallyTestSupport
import Testing
import Workload

/// Per-session summaries kept beside the parts (`SessionSummaryFile`): session questions
/// answered from them equal the same questions answered from the parts' rows, and the files
/// live and die with their parts.
/// Serialized: two tests lower the global limits of session summary files for a merge.
@Suite("Session summaries", .serialized)
struct SessionSummaryTests {
    static let config = WorkloadConfig(seed: 11, events: 40_000, sites: 2, days: 40)

    /// A store holding the generated events: one part per 4,000 events (sessions span parts),
    /// the last 3,000 events left in the buffer.
    static func generatedStore(_ dir: TemporaryDirectory, summarizeAtFlush: Bool = false) async throws -> (EventStore, site: String) {
        var options = StoreOptions(directory: dir.path)
        options.backgroundFlush = false
        options.granuleRows = 512
        options.summarizeAtFlush = summarizeAtFlush
        let store = try EventStore(options: options)
        var generator = WorkloadGenerator(config)
        var total = 0
        while true {
            var batch = EventBatch(columns: EventColumn.allCases)
            let n = generator.nextEvents(total < config.events - 3_000 ? 4_000 : 3_000, into: &batch)
            if n == 0 { break }
            _ = try await store.ingest(batch)
            total += n
            if total <= config.events - 3_000 { try store.flush() }
        }
        return (store, generator.siteIDs[0])
    }

    static let dimensionSets: [[String]] = [
        [], ["entry_page"], ["exit_page"], ["device_type"], ["country_code", "browser"], ["os"], ["referrer_domain"],
        ["source"], ["utm_source", "utm_medium"], ["utm_campaign"], ["campaign_id"], ["campaign"], ["day"], ["hour_of_day"],
        ["entry_page", "device_type"],
    ]
    static let metrics = ["sessions", "unique_visitors", "events", "pageviews", "bounces", "bounce_rate", "visit_duration",
                          "visit_duration_median", "views_per_visit", "conversions:widget_click", "conversions:share"]

    /// Yields between queries: the test is long and CPU-bound, and other suites' HTTP servers
    /// run on the same few threads (a run without yields starved them into read timeouts).
    static func answers(_ store: EventStore, site: String, exact: Bool, budget: QueryBudget = QueryBudget()) async throws
        -> [[[QueryValue]]]
    {
        let end = config.end
        let ranges: [(Int64, Int64)] = [(config.start, end), (end - 12 * 86_400_000, end - 2 * 86_400_000)]
        let filters: [QueryFilter?] = [
            nil, .condition(.entryPage, .prefix, ["/"]), .condition(.column(.deviceType), .isNot, ["mobile"]),
            .or([.condition(.exitPage, .contains, ["a"]), .condition(.column(.countryCode), .is, ["US", "DE"])]),
        ]
        var out: [[[QueryValue]]] = []
        for (from, to) in ranges {
            // Every dimension unfiltered, every filter by device.
            for (dimensions, filter) in dimensionSets.map({ ($0, nil) }) + filters.dropFirst().map({ (["device_type"], $0) }) {
                do {
                    let q = Query(site: site, from: from, to: to, metrics: try metrics.map { try QueryMetric(name: $0) },
                                  dimensions: try dimensions.map { try QueryDimension(name: $0) }, filter: filter, exact: exact,
                                  denseTime: false)
                    out.append(try QueryExecutor.run(q, on: store.snapshot(), budget: budget).rows.sorted { "\($0)" < "\($1)" })
                    await Task.yield()
                }
            }
        }
        return out
    }

    @Test("generated traffic: every session metric, dimension and filter gives the same answer from summaries as from rows")
    func equivalence() async throws {
        let dir = TemporaryDirectory()
        var (store, site) = try await Self.generatedStore(dir)
        let options = store.options
        defer { try? store.close() }
        let raw = try await Self.answers(store, site: site, exact: true)
        let rawSketched = try await Self.answers(store, site: site, exact: false)
        #expect(raw.contains { $0.count > 5 })

        #expect(try store.buildSessionSummaries() == store.snapshot().parts.count)
        #expect(store.snapshot().parts.allSatisfy { $0.sessionSummaries != nil })
        let summarized = try await Self.answers(store, site: site, exact: true)
        #expect(summarized == raw)
        // Summarized sessions are handed over and dropped once they are whole: with a window
        // of one session that happens mid-stream, and the answers stay the same (sessions span
        // parts).
        let narrow = QueryBudget(sessionWindow: 1)
        #expect(try await Self.answers(store, site: site, exact: true, budget: narrow) == raw)
        let all = Query(site: site, from: Self.config.start, to: Self.config.end, metrics: [.sessions, .session(.bounces)],
                        denseTime: false)
        let whole = try QueryExecutor.run(all, on: store.snapshot())
        let windowed = try QueryExecutor.run(all, on: store.snapshot(), budget: narrow)
        #expect(windowed.rows == whole.rows)
        let sessions = try #require(whole.rows.first?.first.flatMap { if case .int(let n) = $0 { Int(n) } else { nil } })
        #expect(whole.stats.sessionsHeld >= sessions)
        #expect(windowed.stats.sessionsHeld * 4 < sessions)
        // The same visitor hashes go into the sketches: identical estimates, not just close ones.
        #expect(try await Self.answers(store, site: site, exact: false) == rawSketched)

        // A merge combines its inputs' summaries; built again from the merged rows they are the
        // same. It holds one session at a time before moving out those that are whole, and
        // writes blocks of 50 sessions as they fill.
        let saved = EventStore.sessionSummaryLimitsForTesting
        EventStore.sessionSummaryLimitsForTesting = (blockSessions: 50, combineWindow: 1)
        let merged = try { defer { EventStore.sessionSummaryLimitsForTesting = saved }; return try store.mergeNow(force: true) }()
        #expect(!merged.isEmpty)
        #expect(store.snapshot().parts.allSatisfy { $0.sessionSummaries != nil })
        #expect(store.snapshot().parts.allSatisfy { p in p.sessionSummaries!.chunks.allSatisfy { $0.sessions <= 50 } })
        #expect(try await Self.answers(store, site: site, exact: true) == raw)
        for part in store.snapshot().parts { try FileManager.default.removeItem(atPath: part.path.replacingOccurrences(of: ".part", with: ".sessions")) }
        try store.close()
        store = try EventStore(options: options)
        #expect(store.snapshot().parts.allSatisfy { $0.sessionSummaries == nil })
        #expect(try store.buildSessionSummaries() == store.snapshot().parts.count)
        #expect(try await Self.answers(store, site: site, exact: true) == raw)

        let q = Query(site: site, from: Self.config.start, to: Self.config.end, metrics: [.sessions, .session(.bounceRate)],
                      denseTime: false)
        let result = try QueryExecutor.run(q, on: store.snapshot())
        #expect(result.source == .sessionSummaries)
        #expect(result.stats.granulesRead == 0 && result.stats.sessionSummariesRead > 0)
    }

    @Test("a flush writes its parts' summaries from the rows in memory: every question answers as from the rows, nothing is left to build")
    func writtenAtFlush() async throws {
        let rawDir = TemporaryDirectory()
        let (rawStore, site) = try await Self.generatedStore(rawDir)
        defer { try? rawStore.close() }
        #expect(rawStore.snapshot().parts.allSatisfy { $0.sessionSummaries == nil })
        let raw = try await Self.answers(rawStore, site: site, exact: true)
        let rawSketched = try await Self.answers(rawStore, site: site, exact: false)

        let dir = TemporaryDirectory()
        var (store, _) = try await Self.generatedStore(dir, summarizeAtFlush: true)
        defer { try? store.close() }
        #expect(store.snapshot().parts.count == rawStore.snapshot().parts.count)
        #expect(store.snapshot().parts.allSatisfy { $0.sessionSummaries != nil })
        #expect(try store.buildSessionSummaries() == 0)
        #expect(try await Self.answers(store, site: site, exact: true) == raw)
        #expect(try await Self.answers(store, site: site, exact: false) == rawSketched)
        let q = Query(site: site, from: Self.config.start, to: Self.config.end, metrics: [.sessions, .session(.bounceRate)],
                      denseTime: false)
        let result = try QueryExecutor.run(q, on: store.snapshot())
        #expect(result.source == .sessionSummaries && result.stats.sessionSummariesRead > 0)
        // The files are found again on open, and verify finds them consistent with their parts.
        let options = store.options
        try store.close()
        store = try EventStore(options: options)
        #expect(store.snapshot().parts.allSatisfy { $0.sessionSummaries != nil })
        #expect(store.snapshot().parts.allSatisfy { PartVerifier.verify($0).isEmpty })
        #expect(try await Self.answers(store, site: site, exact: true) == raw)
    }

    @Test("flush-written summaries of one big site (rows split between cores), paths without a part dictionary, null and empty campaign values, events at the same millisecond, no rollups: as from the rows")
    func writtenAtFlushEdges() async throws {
        // 20,000 rows of one site in one part: more than two granules' worth, so its rows are
        // summarized in two halves and combined; every path distinct (no part dictionary, more
        // distinct values than rows / 4); utm_source null, empty or set; pairs of events at the
        // same millisecond with different pages (the entry and exit page decided by value).
        // (Events at the same millisecond that differ in a session dimension are left out: which
        // is first is decided by the dimensions a reader compares, all of the summaries' or only
        // the question's when rows are read — a difference older than flush-written summaries.)
        var rows: [EventRow] = []
        for i in 0..<20_000 {
            let session = i / 5
            var r = EventRow(site: "big", type: i % 3 == 2 ? "widget_click" : "page_view",
                             at: Self.june + Int64(session) * 40_000 + Int64(i % 5 / 2) * 7_000, visitor: "v\(session % 900)",
                             session: "s\(session)", id: "e\(i)", path: "/p\(i)")
            r.values[.utmSource] = session % 4 == 0 ? nil : (session % 4 == 1 ? "" : "news\(session % 7)")
            r.values[.deviceType] = session % 3 == 0 ? "mobile" : "desktop"
            rows.append(r)
        }
        func build(_ dir: TemporaryDirectory, atFlush: Bool) async throws -> EventStore {
            var options = StoreOptions(directory: dir.path)
            options.backgroundFlush = false
            options.summarizeAtFlush = atFlush
            options.rollups = []
            let store = try EventStore(options: options)
            _ = try await store.ingest(EventBatch.of(rows))
            try store.flush()
            return store
        }
        let rawDir = TemporaryDirectory(), dir = TemporaryDirectory()
        let rawStore = try await build(rawDir, atFlush: false)
        defer { try? rawStore.close() }
        let store = try await build(dir, atFlush: true)
        defer { try? store.close() }
        #expect(rawStore.snapshot().parts.count == 1 && rawStore.snapshot().parts[0].sessionSummaries == nil)
        #expect(store.snapshot().parts.count == 1 && store.snapshot().parts[0].sessionSummaries != nil)
        let metrics = ["sessions", "unique_visitors", "events", "pageviews", "bounces", "visit_duration", "conversions:widget_click"]
        for dimensions in [[], ["entry_page"], ["exit_page"], ["utm_source"], ["device_type"], ["entry_page", "utm_source"]] {
            let q = Query(site: "big", from: Self.june, to: Self.june + 2 * Self.day, metrics: try metrics.map { try QueryMetric(name: $0) },
                          dimensions: try dimensions.map { try QueryDimension(name: $0) }, exact: true, denseTime: false)
            let expected = try QueryExecutor.run(q, on: rawStore.snapshot())
            let answer = try QueryExecutor.run(q, on: store.snapshot())
            #expect(expected.source == .raw && answer.source == .sessionSummaries)
            let same = answer.rows.sorted { "\($0)" < "\($1)" } == expected.rows.sorted { "\($0)" < "\($1)" }
            #expect(same, "\(dimensions)")
        }
    }

    static let day: Int64 = 86_400_000
    static let june = QueryRange.date("2026-06-01")! * 86_400_000

    /// A store with `parts` flushed one by one, then `buffer` left unflushed.
    static func store(_ dir: TemporaryDirectory, parts: [[EventRow]], buffer: [EventRow]) async throws -> EventStore {
        var options = StoreOptions(directory: dir.path)
        options.backgroundFlush = false
        options.granuleRows = 128
        options.summarizeAtFlush = false
        let store = try EventStore(options: options)
        for p in parts where !p.isEmpty {
            _ = try await store.ingest(EventBatch.of(p))
            try store.flush()
        }
        if !buffer.isEmpty { _ = try await store.ingest(EventBatch.of(buffer)) }
        return store
    }

    static func answer(_ store: EventStore, from: Int64, to: Int64, dimensions: [String], budget: QueryBudget = QueryBudget())
        throws -> [[QueryValue]]
    {
        let metrics = ["sessions", "events", "pageviews", "bounces", "visit_duration", "unique_visitors"]
        let q = Query(site: "shop", from: from, to: to, metrics: try metrics.map { try QueryMetric(name: $0) },
                      dimensions: try dimensions.map { try QueryDimension(name: $0) }, exact: true, denseTime: false)
        return try QueryExecutor.run(q, on: store.snapshot(), budget: budget).rows.sorted { "\($0)" < "\($1)" }
    }

    @Test("late events in the buffer are combined with summarized sessions dropped mid-stream, once, starting before them or not")
    func lateEventsInBuffer() async throws {
        var rng = SeededRandom(state: 9)
        var rows: [(Int64, EventRow)] = []
        var used: Set<Int64> = []
        for s in 0..<800 {
            let v = "v\(Int.random(in: 0..<300, using: &rng))"
            let begin = Self.june + Int64.random(in: 0..<(6 * Self.day), using: &rng)
            for k in 0..<Int.random(in: 1...6, using: &rng) {
                var at = begin + Int64.random(in: 0..<3_000_000, using: &rng)
                while used.contains(at) { at += 1 }
                used.insert(at)
                var r = EventRow(site: "shop", type: ["page_view", "page_view", "click"].randomElement(using: &rng)!, at: at,
                                 visitor: v, session: "\(v)-\(s)", id: "e\(s)-\(k)",
                                 path: ["/", "/a", "/b", "/c"].randomElement(using: &rng)!)
                r.values[EventColumn.deviceType] = ["desktop", "mobile"].randomElement(using: &rng)!
                rows.append((at, r))
            }
        }
        // Parts of one day each, in time order; a tenth of all events arrive late, into the buffer.
        var parts = [[EventRow]](repeating: [], count: 7)
        var buffer: [EventRow] = []
        for (at, r) in rows {
            if Int.random(in: 0..<10, using: &rng) == 0 { buffer.append(r) } else { parts[Int((at - Self.june) / Self.day)].append(r) }
        }
        let dir = TemporaryDirectory()
        let store = try await Self.store(dir, parts: parts, buffer: buffer)
        defer { try? store.close() }
        let (from, to) = (Self.june + Self.day, Self.june + 5 * Self.day)
        let dimensionSets: [[String]] = [[], ["entry_page"], ["exit_page"], ["device_type"]]
        let raw = try dimensionSets.map { try Self.answer(store, from: from, to: to, dimensions: $0) }
        #expect(raw[0].first?.first.map { $0 != .int(0) } == true)
        try store.buildSessionSummaries()
        for (dimensions, expected) in zip(dimensionSets, raw) {
            #expect(try Self.answer(store, from: from, to: to, dimensions: dimensions) == expected, "\(dimensions)")
            #expect(try Self.answer(store, from: from, to: to, dimensions: dimensions, budget: QueryBudget(sessionWindow: 1))
                        == expected, "\(dimensions)")
        }
    }

    @Test("a merge holding one session at a time keeps a session of six days with no long gap whole, and writes the others meanwhile")
    func continuousLongSession() async throws {
        let t0 = Self.june
        // A kiosk tab: one event every 20 minutes for 6 days, one part per day, beside short sessions.
        var parts = [[EventRow]](repeating: [], count: 6)
        for k in 0..<(6 * 72) {
            parts[k / 72].append(EventRow(site: "shop", type: "page_view", at: t0 + Int64(k) * 1_200_000, visitor: "kiosk",
                                          session: "kiosk", id: "k\(k)", path: "/p\(k % 3)"))
        }
        for d in 0..<6 {
            for k in 0..<5 {
                let at = t0 + Int64(d) * Self.day + Int64(k) * 3_600_000 + 60_000
                parts[d].append(EventRow(site: "shop", type: "page_view", at: at, visitor: "v\(k)", session: "s\(d)-\(k)",
                                         id: "s\(d)-\(k)", path: "/q\(k)"))
            }
        }
        let dir = TemporaryDirectory()
        let store = try await Self.store(dir, parts: parts, buffer: [])
        defer { try? store.close() }
        let raw = try [[], ["entry_page"], ["exit_page"]].map { try Self.answer(store, from: t0, to: t0 + 7 * Self.day, dimensions: $0) }
        #expect(raw[0].first?.prefix(3) == [.int(31), .int(462), .int(462)])
        try store.buildSessionSummaries()
        let saved = EventStore.sessionSummaryLimitsForTesting
        EventStore.sessionSummaryLimitsForTesting = (blockSessions: 2, combineWindow: 1)
        let merged = try { defer { EventStore.sessionSummaryLimitsForTesting = saved }; return try store.mergeNow(force: true) }()
        #expect(!merged.isEmpty && store.snapshot().parts.count == 1)
        let summaries = try #require(store.snapshot().parts.first?.sessionSummaries)
        #expect(summaries.chunks.count == 16 && summaries.chunks.allSatisfy { $0.sessions <= 2 })
        #expect(summaries.chunks.reduce(0) { $0 + $1.sessions } == 31)
        // The short sessions did not wait for the kiosk's end: the kiosk (the earliest start)
        // is written with the last of them, after the first.
        #expect(summaries.chunks.first?.minStart == t0 + 60_000)
        #expect(summaries.chunks.contains { $0.minStart == t0 })
        for (dimensions, expected) in zip([[], ["entry_page"], ["exit_page"]], raw) {
            #expect(try Self.answer(store, from: t0, to: t0 + 7 * Self.day, dimensions: dimensions) == expected)
            #expect(try Self.answer(store, from: t0, to: t0 + 7 * Self.day, dimensions: dimensions,
                                    budget: QueryBudget(sessionWindow: 1)) == expected)
        }
    }

    @Test("a session with pieces more than an hour apart may count once per piece, but its buffered events count once")
    func longSession() async throws {
        let t0 = Self.june
        func view(_ at: Int64, _ id: String) -> EventRow {
            EventRow(site: "shop", type: "page_view", at: at, visitor: "v", session: "long", id: id, path: "/")
        }
        // Other sessions, so that a window of one is full after the first block.
        var first = [view(t0 + Self.day + 36_000_000, "a1")]
        var second = [view(t0 + 3 * Self.day + 36_000_000, "b1")]
        for k in 0..<3 {
            first.append(EventRow(site: "shop", at: t0 + Self.day + Int64(k) * 60_000, visitor: "f", session: "fa\(k)", id: "fa\(k)"))
            second.append(EventRow(site: "shop", at: t0 + 3 * Self.day + Int64(k) * 60_000, visitor: "f", session: "fb\(k)",
                                   id: "fb\(k)"))
        }
        // Late rows of the first piece, in the buffer (rows that reach a later piece hold the
        // earlier one: `rowsBridgePieces`).
        let buffer = [view(t0 + Self.day + 39_600_000, "c1"), view(t0 + Self.day + 40_000_000, "c2")]
        let dir = TemporaryDirectory()
        let store = try await Self.store(dir, parts: [first, second], buffer: buffer)
        defer { try? store.close() }
        let raw = try Self.answer(store, from: t0, to: t0 + 5 * Self.day, dimensions: [])
        #expect(raw.first?.prefix(3) == [.int(7), .int(10), .int(10)])
        try store.buildSessionSummaries()
        // Whole in the default window; split in two with a window of one (its buffered rows
        // go with the first piece, not with both).
        #expect(try Self.answer(store, from: t0, to: t0 + 5 * Self.day, dimensions: []) == raw)
        let narrow = try Self.answer(store, from: t0, to: t0 + 5 * Self.day, dimensions: [], budget: QueryBudget(sessionWindow: 1))
        #expect(narrow.first?.prefix(3) == [.int(8), .int(10), .int(10)])

        // A merge holding one session at a time writes its pieces as two sessions; a query
        // holding both counts it once.
        let saved = EventStore.sessionSummaryLimitsForTesting
        EventStore.sessionSummaryLimitsForTesting = (blockSessions: saved.blockSessions, combineWindow: 1)
        let merged = try { defer { EventStore.sessionSummaryLimitsForTesting = saved }; return try store.mergeNow(force: true) }()
        #expect(!merged.isEmpty && store.snapshot().parts.count == 1)
        let summaries = try #require(store.snapshot().parts.first?.sessionSummaries)
        #expect(summaries.chunks.reduce(0) { $0 + $1.sessions } == 8)
        #expect(try Self.answer(store, from: t0, to: t0 + 5 * Self.day, dimensions: []) == raw)
        // `tally verify` counts the two pieces as the one session_id its rows hold.
        let part = try #require(store.snapshot().parts.first)
        #expect(PartVerifier.verify(part).isEmpty, "\(PartVerifier.verify(part))")
    }

    @Test("rows within an hour of two summary pieces 80 minutes apart keep the session whole, holding one session at a time")
    func rowsBridgePieces() async throws {
        let t0 = Self.june + 10 * 3_600_000
        func view(_ at: Int64, _ id: String, session: String = "x", path: String = "/") -> EventRow {
            EventRow(site: "shop", type: "page_view", at: at, visitor: "v-\(session)", session: session, id: id, path: path)
        }
        // Session x: a summary piece ending at 10:00 (first part), buffered rows at 10:40, a
        // summary piece at 11:20 (second part); one other session in each part, the second's
        // starting at 11:05, so that a window of one is full after the first block.
        let first = [view(t0 - 600_000, "x1"), view(t0, "x2", path: "/a"), view(t0 - 3_600_000, "o1", session: "o1")]
        let second = [view(t0 + 80 * 60_000, "x4", path: "/c"), view(t0 + 65 * 60_000, "o2", session: "o2")]
        let buffer = [view(t0 + 40 * 60_000, "x3", path: "/b")]
        let dir = TemporaryDirectory()
        let store = try await Self.store(dir, parts: [first, second], buffer: buffer)
        defer { try? store.close() }
        let dimensionSets: [[String]] = [[], ["entry_page"], ["exit_page"]]
        let raw = try dimensionSets.map { try Self.answer(store, from: Self.june, to: Self.june + Self.day, dimensions: $0) }
        #expect(raw[0].first?.prefix(3) == [.int(3), .int(6), .int(6)])
        #expect(try store.buildSessionSummaries() == 2)
        let q = Query(site: "shop", from: Self.june, to: Self.june + Self.day, metrics: [.sessions, .session(.bounces)],
                      denseTime: false)
        let result = try QueryExecutor.run(q, on: store.snapshot(), budget: QueryBudget(sessionWindow: 1))
        #expect(result.source == .sessionSummaries && result.stats.sessionSummariesRead == 4)
        for (dimensions, expected) in zip(dimensionSets, raw) {
            #expect(try Self.answer(store, from: Self.june, to: Self.june + Self.day, dimensions: dimensions,
                                    budget: QueryBudget(sessionWindow: 1)) == expected, "\(dimensions)")
        }
    }

    @Test("a part with more than 64 event types keeps no types: conversions are counted from its rows")
    func manyTypes() async throws {
        let dir = TemporaryDirectory()
        var options = StoreOptions(directory: dir.path)
        options.backgroundFlush = false
        let store = try EventStore(options: options)
        defer { try? store.close() }
        let t0 = Self.june
        var rows: [EventRow] = []
        for s in 0..<100 {
            for k in 0..<3 {
                rows.append(EventRow(site: "shop", type: k == 0 ? "page_view" : "custom_\((s + k) % 70)",
                                     at: t0 + Int64(s) * 60_000 + Int64(k) * 1000, visitor: "v\(s % 7)", session: "s\(s)",
                                     id: "e\(s)-\(k)", path: "/p\(s % 3)"))
            }
        }
        _ = try await store.ingest(EventBatch.of(rows))
        try store.flush()
        try store.buildSessionSummaries()
        let summaries = try #require(store.snapshot().parts.first?.sessionSummaries)
        #expect(!summaries.hasTypes)
        let q = Query(site: "shop", from: t0, to: t0 + 86_400_000,
                      metrics: [.sessions, try QueryMetric(name: "conversions:custom_5")], denseTime: false)
        let result = try QueryExecutor.run(q, on: store.snapshot())
        // Sessions s with (s + 1) % 70 == 5 or (s + 2) % 70 == 5: s = 4, 74, 3, 73.
        #expect(result.rows == [[.int(100), .int(4)]])
        #expect(result.source == .raw)
        let plain = try QueryExecutor.run(Query(site: "shop", from: t0, to: t0 + 86_400_000, metrics: [.sessions, .session(.bounces)],
                                                denseTime: false), on: store.snapshot())
        #expect(plain.rows == [[.int(100), .int(100)]] && plain.source == .sessionSummaries)
    }

    static func summaryFiles(_ dir: TemporaryDirectory) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path + "/parts").filter { $0.hasSuffix(".sessions") }.sorted()
    }

    @Test("a merge of parts that have no summaries yet summarizes its inputs and combines theirs: the merged part has them, nothing is left to build, only its file stays")
    func mergeSummarizesInputs() async throws {
        let dir = TemporaryDirectory()
        let t0 = Self.june
        // Sessions span the flushes: s3 has events in all four parts.
        let store = try await Self.store(dir, parts: (0..<4).map { k in
            (0..<40).map { i in
                EventRow(site: "shop", at: t0 + Int64(k * 40 + i) * 30_000, visitor: "v\(i % 7)", session: "s\(i % 11)",
                         id: "e\(k)-\(i)", path: "/p\(i % 5)")
            }
        }, buffer: [])
        defer { try? store.close() }
        let q = Query(site: "shop", from: t0, to: t0 + 86_400_000, metrics: [.sessions, .pageviews, .session(.bounces)],
                      dimensions: [.entryPage], denseTime: false)
        let expected = try QueryExecutor.run(q, on: store.snapshot()).rows
        #expect(try Self.summaryFiles(dir).isEmpty)
        #expect(store.snapshot().parts.count == 4)
        _ = try store.mergeNow(force: true)
        let merged = try #require(store.snapshot().parts.first)
        #expect(store.snapshot().parts.count == 1 && merged.sessionSummaries != nil)
        #expect(try store.buildSessionSummaries() == 0)
        #expect(try Self.summaryFiles(dir) == [String(merged.name.dropLast(".part".count)) + ".sessions"])
        let result = try QueryExecutor.run(q, on: store.snapshot())
        #expect(result.rows == expected && result.source == .sessionSummaries)
    }

    @Test("a summary block whose checksum holds but whose contents do not decode fails the question, naming file and offset")
    func undecodableBlock() async throws {
        let dir = TemporaryDirectory()
        let t0 = Self.june
        var store = try await Self.store(dir, parts: [(0..<40).map { i in
            EventRow(site: "shop", at: t0 + Int64(i) * 10_000, visitor: "v\(i % 7)", session: "s\(i % 11)", id: "e\(i)",
                     path: "/p\(i % 3)")
        }], buffer: [])
        let options = store.options
        #expect(try store.buildSessionSummaries() == 1)
        let summaries = try #require(store.snapshot().parts.first?.sessionSummaries)
        let block = try #require(summaries.chunks.first?.block)
        try store.close()
        // The block rewritten in place as stored bytes (codec none) of garbage, its checksum right.
        let path = dir.path + "/parts/" + (try Self.summaryFiles(dir)[0])
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        let body = block.length - 16
        var header = [UInt8](repeating: 0, count: 16)
        header[0] = 0  // codec none
        header[1] = bytes[block.offset + 1]  // the session-summaries encoding
        for k in 0..<4 { header[4 + k] = UInt8(truncatingIfNeeded: body >> (8 * k)) }
        for k in 0..<4 { header[8 + k] = UInt8(truncatingIfNeeded: body >> (8 * k)) }
        let garbage = [UInt8](repeating: 0xFF, count: body)
        let crc = garbage.withUnsafeBytes { CRC32C.checksum($0, continuing: CRC32C.checksum(Array(header[0..<12]))) }
        for k in 0..<4 { header[12 + k] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(k))) }
        bytes.replaceSubrange(block.offset..<block.offset + block.length, with: header + garbage)
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        store = try EventStore(options: options)
        defer { try? store.close() }
        let q = Query(site: "shop", from: t0, to: t0 + 86_400_000, metrics: [.sessions, .session(.bounces)], denseTime: false)
        #expect(store.snapshot().parts.first?.sessionSummaries != nil)
        do {
            _ = try QueryExecutor.run(q, on: store.snapshot())
            Issue.record("an undecodable summary block was taken")
        } catch {
            let message = String(describing: error)
            #expect(message.contains(".sessions") && message.contains("offset \(block.offset)"), "\(message)")
        }
    }

    @Test("summaries are deleted with their part (merge, partition drop), orphans on open; damaged ones are not used")
    func lifecycle() async throws {
        let dir = TemporaryDirectory()
        var options = StoreOptions(directory: dir.path)
        options.backgroundFlush = false
        let t0 = Self.june
        func batch(_ k: Int) -> EventBatch {
            EventBatch.of((0..<50).map { i in
                EventRow(site: "shop", at: t0 + Int64(k * 50 + i) * 10_000, visitor: "v\(i % 9)", session: "s\(i % 13)",
                         id: "e\(k)-\(i)", path: "/p\(i % 4)")
            })
        }
        let q = Query(site: "shop", from: t0, to: t0 + 86_400_000, metrics: [.sessions, .pageviews, .session(.bounces)],
                      dimensions: [.entryPage], denseTime: false)
        var store = try EventStore(options: options)
        for k in 0..<3 {
            _ = try await store.ingest(batch(k))
            try store.flush()
        }
        let expected = try QueryExecutor.run(q, on: store.snapshot()).rows
        #expect(try store.buildSessionSummaries() == 0)  // each flush wrote its part's
        #expect(try Self.summaryFiles(dir).count == 3)
        _ = try store.mergeNow(force: true)
        #expect(try store.buildSessionSummaries() == 0)  // the merge combined its inputs' summaries
        let merged = try #require(store.snapshot().parts.first)
        #expect(try Self.summaryFiles(dir) == [String(merged.name.dropLast(".part".count)) + ".sessions"])
        #expect(try QueryExecutor.run(q, on: store.snapshot()).rows == expected)
        try store.close()

        // An orphan (its part gone) and an interrupted write are deleted on open.
        let parts = dir.path + "/parts/"
        let summaryName = try Self.summaryFiles(dir)[0]
        try FileManager.default.copyItem(atPath: parts + summaryName, toPath: parts + "202606_00009999_0.sessions")
        try FileManager.default.copyItem(atPath: parts + summaryName, toPath: parts + "202606_00009998_0.sessions.tmp")
        store = try EventStore(options: options)
        #expect(try Self.summaryFiles(dir) == [summaryName])
        #expect(store.snapshot().parts.first?.sessionSummaries != nil)
        try store.close()

        // A damaged block: the part is read raw, the answer stays right.
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: parts + summaryName)))
        bytes[20] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: parts + summaryName))
        store = try EventStore(options: options)
        var result = try QueryExecutor.run(q, on: store.snapshot())
        #expect(result.rows == expected)
        #expect(result.source == .raw)
        try store.close()

        // Summaries of another part (or a damaged footer) are not attached, and are built again.
        bytes[20] ^= 0xFF
        bytes[bytes.count - 30] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: parts + summaryName))
        store = try EventStore(options: options)
        #expect(store.snapshot().parts.first?.sessionSummaries == nil)
        #expect(try store.buildSessionSummaries() == 1)
        result = try QueryExecutor.run(q, on: store.snapshot())
        #expect(result.rows == expected && result.source == .sessionSummaries)

        // A dropped partition takes its summaries along.
        _ = try store.dropPartition(merged.partition)
        #expect(try Self.summaryFiles(dir).isEmpty)
        try store.close()
    }
}
