@_spi(Testing) import Engine
import Foundation
import TallyTestSupport
import Testing

@Suite("Daily rollups")
struct RollupTests {
    static let day: Int64 = 86_400_000
    static let t0 = QueryRange.date("2026-08-01")! * 86_400_000

    static func options(_ dir: TemporaryDirectory, clock: ManualClock = ManualClock(t0 + 70 * day),
                        zones: SiteTimeZones = SiteTimeZones(), fanIn: Int? = nil) -> StoreOptions {
        var o = StoreOptions(directory: dir.path)
        if let fanIn { o.mergePolicy.fanIn = fanIn }
        o.backgroundFlush = false
        o.clock = clock
        o.granuleRows = 128
        o.siteTimeZones = zones
        return o
    }

    /// Events over `days` days from `start` on two sites, with every column a default rollup
    /// groups by (nulls and empties included) and visitors/sessions recurring.
    static func batch(_ rng: inout SeededRandom, _ n: Int, tag: String, start: Int64 = t0, days: Int64 = 45,
                      received: Int64? = nil) -> EventBatch {
        func pick(_ values: [String?]) -> String? { values[Int(rng.next() % UInt64(values.count))] }
        let rows = (0..<n).map { i -> EventRow in
            let visitor = rng.next() % 300
            var r = EventRow(site: pick(["a.com", "ny.com"])!,
                             type: pick(["page_view", "page_view", "widget_impression", "widget_click", "signup"])!,
                             at: start + Int64(rng.next() % UInt64(days * day)), visitor: "v\(visitor)",
                             session: "s\(visitor)-\(rng.next() % 3)", id: "\(tag)-\(i)", path: pick(["/", "/a", "/b", "/c/d", ""])!)
            r.values[.referrerDomain] = pick(["google.com", "", "news.ycombinator.com"])
            r.values[.countryCode] = pick(["DE", "US", "", "FR"])
            r.values[.deviceType] = pick(["desktop", "mobile"])
            r.values[.browser] = pick(["Firefox", "Chrome", ""])
            r.values[.os] = pick(["Linux", "iOS"])
            r.values[.utmSource] = pick([nil, "newsletter", "twitter"])
            r.values[.utmMedium] = pick([nil, "email"])
            r.values[.utmCampaign] = pick([nil, "spring", "fall"])
            r.values[.campaignID] = pick([nil, nil, "c-42"])
            r.values[.propDeviceSlug] = pick([nil, "phone", "tablet"])
            if rng.next() % 2 == 0 {
                r.ints[.propMappingID] = Int64(rng.next() % 4)
                r.ints[.propPostID] = Int64(100 + rng.next() % 5)
            }
            if let received { r.ints[.receivedAt] = received }
            return r
        }
        return .of(rows)
    }

    static let metrics: [QueryMetric] = [.events, .pageviews, .uniqueVisitors, .sessions, .count("widget_click"),
                                         try! QueryMetric(name: "ctr")]

    /// Queries covering every default rollup, time buckets, filters and campaign.
    static func queries(site: String, zone: QueryTimeZone, from: Int64, to: Int64) throws -> [Query] {
        var out: [Query] = []
        func q(_ dims: [QueryDimension], _ filter: QueryFilter? = nil) -> Query {
            Query(site: site, from: from, to: to, timeZone: zone, metrics: metrics, dimensions: dims, filter: filter,
                  limit: 10_000)
        }
        // Uniques come from rows of the rollup's sketch types: the queries keep to them.
        func typed(_ def: RollupDefinition, _ filter: QueryFilter? = nil) -> QueryFilter? {
            guard let types = def.sketchTypes else { return filter }
            let only = QueryFilter.condition(.column(.eventType), .is, types)
            return filter.map { .and([only, $0]) } ?? only
        }
        let pageviews = QueryFilter.condition(.column(.eventType), .is, QueryMetric.pageviewTypes)
        out.append(q([]))
        for def in RollupDefinition.defaults {
            out.append(q(def.dimensions.map { .column($0) }, typed(def)))
            for d in def.dimensions { out.append(q([.column(d), .time(.day)], typed(def))) }
        }
        out.append(q([.column(.eventType), .time(.week)]))
        out.append(q([.time(.month)]))
        out.append(q([.time(.dayOfWeek)]))
        out.append(q([.campaign], pageviews))
        out.append(q([.column(.pagePath)], .and([.or([.condition(.column(.eventType), .is, ["page_view"]), pageviews]),
                                                .not(.condition(.column(.pagePath), .prefix, ["/c"]))])))
        out.append(q([.column(.browser)], .and([pageviews, .or([.condition(.column(.os), .is, ["iOS"]),
                                                               .condition(.column(.deviceType), .contains, ["desk"])])])))
        out.append(q([.column(.propMappingID), .column(.propPostID)],
                     .condition(.column(.eventType), .is, ["widget_click", "widget_impression"])))
        // Top-level `is` conditions on a number and on text narrow the rollup rows before grouping.
        out.append(q([.column(.propDeviceSlug)], .and([.condition(.column(.eventType), .is, ["widget_click", "widget_impression"]),
                                                      .condition(.column(.propMappingID), .is, ["1", "3", "x"])])))
        out.append(q([.column(.browser), .time(.day)], .and([pageviews, .condition(.column(.os), .is, ["iOS"])])))
        // Filters the narrowing decides whole (no mask after it), a number as it prints, one
        // not as it prints ("01" is not the value 1's text: raw keeps no row), a type dimension.
        out.append(q([.column(.propDeviceSlug)], .and([.condition(.column(.eventType), .is, ["widget_click", "widget_impression"]),
                                                      .condition(.column(.propMappingID), .is, ["1", "3"])])))
        out.append(q([.column(.propPostID)], .and([.condition(.column(.eventType), .is, ["widget_click", "widget_impression"]),
                                                  .condition(.column(.propMappingID), .is, ["01", "2"])])))
        out.append(q([.column(.eventType)], pageviews))
        return out
    }

    /// Every query answered from a rollup (source as expected) equals the raw answer exactly.
    static func expectRollupsEqualRaw(_ snapshot: Snapshot, site: String, zone: QueryTimeZone, from: Int64, to: Int64,
                                      source: QuerySource = .rollup, sourceLocation: SourceLocation = #_sourceLocation) throws {
        for query in try queries(site: site, zone: zone, from: from, to: to) {
            let fast = try QueryExecutor.run(query, on: snapshot)
            var rawQuery = query
            rawQuery.allowRollups = false
            let raw = try QueryExecutor.run(rawQuery, on: snapshot)
            let name = query.dimensions.map(\.name).joined(separator: ",")
            #expect(fast.source == source, "[\(name)] answered from \(fast.source)", sourceLocation: sourceLocation)
            #expect(raw.source == .raw, sourceLocation: sourceLocation)
            #expect(fast.rows == raw.rows, "[\(name)] rollup \(fast.rows.prefix(3)) raw \(raw.rows.prefix(3))",
                    sourceLocation: sourceLocation)
            #expect(!raw.rows.isEmpty, sourceLocation: sourceLocation)
            // A page of the answer ordered by a count: the rollup path merges sketches of the
            // page's groups only; ordered by uniques, of every group first.
            guard !query.dimensions.isEmpty, !query.dimensions.contains(where: \.isTime) else { continue }
            let orders: [[(name: String, descending: Bool)]] = [[], [("unique_visitors", true)], [("sessions", false)]]
            for order in orders {
                var paged = query
                paged.limit = 2
                paged.offset = 1
                paged.orderBy = order
                var rawPaged = paged
                rawPaged.allowRollups = false
                let page = try QueryExecutor.run(paged, on: snapshot)
                let rawPage = try QueryExecutor.run(rawPaged, on: snapshot)
                #expect(page.source == source, sourceLocation: sourceLocation)
                #expect(page.rows == rawPage.rows, "[\(name)] page \(order): rollup \(page.rows) raw \(rawPage.rows)",
                        sourceLocation: sourceLocation)
                #expect(page.totalRows == raw.rows.count, sourceLocation: sourceLocation)
                #expect(page.rows == Array(raw.rows.dropFirst().prefix(2)) || !order.isEmpty, sourceLocation: sourceLocation)
            }
            // No limit with an offset, an offset at the end, one near Int.max: as raw, no trap.
            for (limit, offset) in [(Int?.none, 1), (2, raw.rows.count), (2, Int.max - 1)] {
                var paged = query
                paged.limit = limit
                paged.offset = offset
                var rawPaged = paged
                rawPaged.allowRollups = false
                #expect(try QueryExecutor.run(paged, on: snapshot).rows == QueryExecutor.run(rawPaged, on: snapshot).rows,
                        sourceLocation: sourceLocation)
            }
        }
    }

    static func ingest(_ store: EventStore, _ rng: inout SeededRandom, flushes: Int, rows: Int, tag: String,
                       start: Int64 = t0, days: Int64 = 45) async throws {
        for f in 0..<flushes {
            _ = try await store.ingest(batch(&rng, rows, tag: "\(tag)\(f)", start: start, days: days))
            try store.flush()
        }
    }

    @Test("every default rollup answers exactly as the raw events do, in UTC and in a UTC-5 site's days")
    func rollupsEqualRaw() async throws {
        let dir = TemporaryDirectory()
        let ny = try QueryTimeZone(identifier: "America/New_York")
        let store = try EventStore(options: Self.options(dir, zones: SiteTimeZones(["ny.com": ny])))
        var rng = SeededRandom(state: 5)
        try await Self.ingest(store, &rng, flushes: 4, rows: 1500, tag: "f")
        let snapshot = store.snapshot()
        #expect(!(snapshot.rollups["pages"] ?? []).isEmpty)
        try Self.expectRollupsEqualRaw(snapshot, site: "a.com", zone: .utc, from: Self.t0, to: Self.t0 + 45 * Self.day)
        let nyFrom = ny.startOfDay(ny.day(Self.t0 + Self.day)), nyTo = ny.startOfDay(ny.day(Self.t0 + 40 * Self.day))
        try Self.expectRollupsEqualRaw(snapshot, site: "ny.com", zone: ny, from: nyFrom, to: nyTo)
        // Uniques over types a rollup keeps no sketches for come from raw events; counts alone
        // still come from the rollup.
        for filter in [nil, QueryFilter.condition(.column(.eventType), .isNot, ["signup"]),
                       .condition(.column(.eventType), .is, ["page_view", "signup"])] {
            let uniques = Query(site: "a.com", from: Self.t0, to: Self.t0 + 45 * Self.day, metrics: [.uniqueVisitors],
                                dimensions: [.column(.pagePath)], filter: filter)
            #expect(try QueryExecutor.run(uniques, on: snapshot).source == .raw)
            var counts = uniques
            counts.metrics = [.events, .count("signup")]
            let fromRollup = try QueryExecutor.run(counts, on: snapshot)
            counts.allowRollups = false
            #expect(fromRollup.source == .rollup)
            #expect(try fromRollup.rows == QueryExecutor.run(counts, on: snapshot).rows)
        }
        // Asked in another zone than the site's rollup days, a query goes to the raw events.
        let q = Query(site: "ny.com", from: Self.t0, to: Self.t0 + 10 * Self.day, metrics: [.events], dimensions: [.time(.day)])
        #expect(try QueryExecutor.run(q, on: snapshot).source == .raw)
        try store.close()
    }

    @Test("uniques merged from many days' sketches equal raw as the union stays sparse, turns dense from sparse days, or meets a dense day; every page of top pages is the slice of the whole answer")
    func denseUnionsAndPages() async throws {
        let dir = TemporaryDirectory()
        let store = try EventStore(options: Self.options(dir))
        var rows: [EventRow] = []
        // 600 new visitors a day (sparse day sketches), 5,000 on the twelfth day (a dense one).
        for d in 0..<12 {
            for i in 0..<(d == 11 ? 5000 : 600) {
                rows.append(EventRow(site: "big.com", at: Self.t0 + Int64(d) * Self.day + Int64(i) * 1000,
                                     visitor: "v\(d)-\(i)", session: "s\(d)-\(i)", id: "e\(d)-\(i)",
                                     path: "/p\(i % 60)"))
            }
        }
        _ = try await store.ingest(.of(rows))
        try store.flush()
        let snapshot = store.snapshot()
        func both(_ q: Query) throws -> (fast: QueryResult, raw: QueryResult) {
            var raw = q
            raw.allowRollups = false
            return (try QueryExecutor.run(q, on: snapshot), try QueryExecutor.run(raw, on: snapshot))
        }
        let metrics: [QueryMetric] = [.events, .uniqueVisitors, .sessions]
        // Page views only: the pages rollup keeps sketches for them (the others for all types).
        let views = QueryFilter.condition(.column(.eventType), .is, QueryMetric.pageviewTypes)
        // 2,400 visitors (sparse union), 6,600 (dense from sparse days), 11,600 (with the dense day).
        for days: Int64 in [4, 11, 12] {
            for dims: [QueryDimension] in [[], [.time(.day)], [.column(.pagePath)]] {
                let (fast, raw) = try both(Query(site: "big.com", from: Self.t0, to: Self.t0 + days * Self.day,
                                                 metrics: metrics, dimensions: dims, filter: views))
                #expect(fast.source == .rollup)
                #expect(fast.rows == raw.rows, "\(days) days by \(dims.map(\.name)): \(fast.rows.prefix(2)) vs \(raw.rows.prefix(2))")
            }
            let total = try both(Query(site: "big.com", from: Self.t0, to: Self.t0 + days * Self.day, metrics: [.uniqueVisitors]))
            if days == 4 { #expect(total.raw.rows[0][0] == .int(2400)) }  // exact while sparse and small
            // Pages of 60 (ties in every count, broken by the path) under each order.
            for order: [(name: String, descending: Bool)] in [[], [("unique_visitors", true)], [("page_path", false)],
                                                              [("events", false)], [("sessions", true)]] {
                var whole = Query(site: "big.com", from: Self.t0, to: Self.t0 + days * Self.day, metrics: metrics,
                                  dimensions: [.column(.pagePath)], filter: views)
                whole.orderBy = order
                let all = try both(whole)
                #expect(all.fast.rows == all.raw.rows && all.raw.rows.count == 60)
                for (limit, offset) in [(5, 0), (5, 7), (1, 59), (14, 1)] {
                    var page = whole
                    page.limit = limit
                    page.offset = offset
                    let (fast, raw) = try both(page)
                    let slice = Array(all.raw.rows.dropFirst(offset).prefix(limit))
                    #expect(fast.rows == slice, "\(order) limit \(limit) offset \(offset)")
                    #expect(raw.rows == slice, "\(order) limit \(limit) offset \(offset) (raw)")
                    #expect(fast.totalRows == 60 && raw.totalRows == 60)
                }
            }
        }
        try store.close()
    }

    @Test("a question over more rollup rows than one core sums (top pages, referrers with nulls, counts of a type) equals raw, whole and paged")
    func rowsSummedOnBothCores() async throws {
        let dir = TemporaryDirectory()
        let store = try EventStore(options: Self.options(dir))
        var rng = SeededRandom(state: 17)
        // One site, 20 days, 4,000 pages: ~48k rollup rows in one part (two halves are summed
        // apart from 32,768 rows on).
        let rows = (0..<60_000).map { i -> EventRow in
            let visitor = rng.next() % 5_000
            var r = EventRow(site: "big.com", type: rng.next() % 2 == 0 ? "page_view" : "widget_click",
                             at: Self.t0 + Int64(rng.next() % UInt64(20 * Self.day)), visitor: "v\(visitor)",
                             session: "s\(visitor)", id: "big-\(i)", path: "/p\(rng.next() % 4_000)")
            r.values[.referrerDomain] = rng.next() % 5 == 0 ? "" : "r\(rng.next() % 3_000).com"
            return r
        }
        _ = try await store.ingest(.of(rows))
        try store.flush()
        let snapshot = store.snapshot()
        let pages = try #require(snapshot.rollups["pages"]?.first)
        #expect(pages.rows >= 1 << 15)
        let pageviews = QueryFilter.condition(.column(.eventType), .is, QueryMetric.pageviewTypes)
        let questions = [
            Query(site: "big.com", from: Self.t0, to: Self.t0 + 20 * Self.day, metrics: [.pageviews, .uniqueVisitors],
                  dimensions: [.column(.pagePath)], filter: pageviews, limit: 50),
            Query(site: "big.com", from: Self.t0 + Self.day, to: Self.t0 + 19 * Self.day, metrics: [.events, .count("widget_click")],
                  dimensions: [.column(.referrerDomain)], limit: 10_000),
            Query(site: "big.com", from: Self.t0, to: Self.t0 + 20 * Self.day, metrics: [.pageviews, .sessions],
                  dimensions: [.column(.referrerDomain)], filter: pageviews, limit: 20, offset: 7),
        ]
        for query in questions {
            let fast = try QueryExecutor.run(query, on: snapshot)
            var raw = query
            raw.allowRollups = false
            let slow = try QueryExecutor.run(raw, on: snapshot)
            #expect(fast.source == .rollup)
            #expect(!fast.rows.isEmpty)
            #expect(fast.rows == slow.rows, "\(query.dimensions.map(\.name)): \(fast.rows.prefix(3)) vs \(slow.rows.prefix(3))")
            #expect(fast.totalRows == slow.totalRows)
        }
        try store.close()
    }

    @Test("rollups stay equal to raw after merges, late events, a restart, buffered rows and a partial last day")
    func afterMergesAndRestarts() async throws {
        let dir = TemporaryDirectory()
        let o = Self.options(dir, fanIn: 2)
        var store = try EventStore(options: o)
        var rng = SeededRandom(state: 9)
        try await Self.ingest(store, &rng, flushes: 5, rows: 800, tag: "a")
        _ = try store.mergeNow()
        try store.mergeRollups()
        // Late events for old days, then everything merged down and reopened.
        try await Self.ingest(store, &rng, flushes: 2, rows: 300, tag: "late", start: Self.t0, days: 5)
        _ = try store.mergeNow(force: true)
        #expect(try store.mergeRollups(force: true) > 0)
        try store.close()
        store = try EventStore(options: o)
        let perMonth = store.snapshot().rollups.values.allSatisfy { parts in Set(parts.map(\.partition)).count == parts.count }
        #expect(perMonth)
        // Rows only in the buffer count too.
        _ = try await store.ingest(Self.batch(&rng, 200, tag: "buffered"))
        try Self.expectRollupsEqualRaw(store.snapshot(), site: "a.com", zone: .utc, from: Self.t0, to: Self.t0 + 45 * Self.day)
        // A range ending mid-day: whole days from rollups, the rest from raw parts.
        try Self.expectRollupsEqualRaw(store.snapshot(), site: "a.com", zone: .utc, from: Self.t0,
                                       to: Self.t0 + 30 * Self.day + 7 * 3_600_000, source: .mixed)
        try store.close()
    }

    @Test("background rollup merges stay below maxRollupMergeRows in all and still answer as raw; a forced merge takes everything")
    func rollupMergeCap() async throws {
        let dir = TemporaryDirectory()
        var o = Self.options(dir, fanIn: 2)
        var store = try EventStore(options: o)
        var rng = SeededRandom(state: 21)
        try await Self.ingest(store, &rng, flushes: 8, rows: 600, tag: "a", days: 20)
        let flushed = store.snapshot().rollups
        try store.close()
        // Room for about three flushed parts of the largest rollup month in one merge.
        let largest = flushed.values.joined().map(\.rows).max() ?? 0
        o.mergePolicy.maxRollupMergeRows = 3 * largest
        store = try EventStore(options: o)
        var merges = 0
        while true {
            let n = try store.mergeRollups()
            if n == 0 { break }
            merges += n
        }
        #expect(merges > 0)
        let merged = store.snapshot().rollups
        for part in merged.values.joined() where part.level > 0 {
            #expect(part.rows < o.mergePolicy.maxRollupMergeRows, "\(part.path): \(part.rows) rows")
        }
        // Some month kept several parts because merging them would pass the cap.
        let kept = merged.values.contains { parts in
            Dictionary(grouping: parts, by: \.partition).values.contains { $0.count >= 2 }
        }
        #expect(kept)
        try Self.expectRollupsEqualRaw(store.snapshot(), site: "a.com", zone: .utc, from: Self.t0, to: Self.t0 + 45 * Self.day)
        #expect(try store.mergeRollups(force: true) > 0)
        let forced = store.snapshot().rollups
        #expect(forced.values.allSatisfy { parts in Set(parts.map(\.partition)).count == parts.count })
        try Self.expectRollupsEqualRaw(store.snapshot(), site: "a.com", zone: .utc, from: Self.t0, to: Self.t0 + 45 * Self.day)
        try store.close()
    }

    @Test("a full tier whose two oldest rollup parts do not fit under the cap together still merges the others")
    func rollupCapSkipsBigParts() async throws {
        let dir = TemporaryDirectory()
        var o = Self.options(dir, fanIn: 3)
        o.mergePolicy.rollupBaseRows = 1 << 20  // every part in tier 0 by rows: levels decide
        var store = try EventStore(options: o)
        var rng = SeededRandom(state: 33)
        // Two big flushes (hundreds of pages groups each), then small ones, all in one month.
        try await Self.ingest(store, &rng, flushes: 2, rows: 600, tag: "big", days: 20)
        let big = store.snapshot().rollups["pages"]!.map(\.rows)
        try store.close()
        // Either big part fits under the cap beside small ones, not beside the other big one.
        o.mergePolicy.maxRollupMergeRows = big.max()! + 100
        #expect(big.reduce(0, +) >= o.mergePolicy.maxRollupMergeRows)
        store = try EventStore(options: o)
        try await Self.ingest(store, &rng, flushes: 6, rows: 10, tag: "small", days: 20)
        while try store.mergeRollups() > 0 {}
        let pages = store.snapshot().rollups["pages"]!
        // By stopping at the first part that did not fit, all eight stayed (the tier blocked).
        #expect(pages.count <= 3, "\(pages.map { "\($0.rows)@\($0.level)" })")
        #expect(pages.allSatisfy { $0.rows < o.mergePolicy.maxRollupMergeRows })
        #expect(pages.contains { $0.level > 0 })
        try Self.expectRollupsEqualRaw(store.snapshot(), site: "a.com", zone: .utc, from: Self.t0, to: Self.t0 + 45 * Self.day)
        try store.close()
    }

    @Test("rollup parts of the same day, whose merges collapse into the same groups, are rewritten once per level, not once per merge")
    func collapsingMergesClimb() async throws {
        let dir = TemporaryDirectory()
        let store = try EventStore(options: Self.options(dir, fanIn: 2))
        var rng = SeededRandom(state: 5)
        let flushes = 24
        for f in 0..<flushes {
            // One day, a few hundred rows: every flush has nearly all the day's groups.
            _ = try await store.ingest(Self.batch(&rng, 300, tag: "d\(f)", days: 1))
            try store.flush()
            while try store.mergeRollups() > 0 {}
        }
        let parts = store.snapshot().rollups.values.joined()
        // Two at a time: about log2(24) levels. By rows alone every merge took the merged part
        // again (it does not grow), so its level reached ~23.
        let deepest = parts.map(\.level).max() ?? 0
        #expect(deepest >= 2 && deepest <= 5, "deepest level \(deepest)")
        try Self.expectRollupsEqualRaw(store.snapshot(), site: "a.com", zone: .utc, from: Self.t0, to: Self.t0 + 2 * Self.day)
        try store.close()
    }

    @Test("with no memory kept for rollup rows every answer is the same: rows are read back from the part files, those of parts a merge deleted (an older snapshot still reads them) and after a reopen too")
    func rollupRowsReadBack() async throws {
        let dir = TemporaryDirectory()
        var o = Self.options(dir, fanIn: 2)
        o.rollupCacheBytes = 0
        var store = try EventStore(options: o)
        var rng = SeededRandom(state: 9)
        try await Self.ingest(store, &rng, flushes: 5, rows: 800, tag: "a")
        let range = (from: Self.t0, to: Self.t0 + 45 * Self.day)
        let before = store.snapshot()
        try Self.expectRollupsEqualRaw(before, site: "a.com", zone: .utc, from: range.from, to: range.to)
        _ = try store.mergeNow(force: true)
        #expect(try store.mergeRollups(force: true) > 0)
        let gone = before.rollups.values.joined().filter { !FileManager.default.fileExists(atPath: $0.path) }
        #expect(!gone.isEmpty)
        try Self.expectRollupsEqualRaw(before, site: "a.com", zone: .utc, from: range.from, to: range.to)
        try Self.expectRollupsEqualRaw(store.snapshot(), site: "ny.com", zone: .utc, from: range.from, to: range.to)
        #expect(store.rollupCacheForTesting.loads > 0)
        // Each part's rows, read back from its deleted file, are as many as its header said.
        for part in gone { #expect(try part.inspection().rows == part.rows) }
        try store.close()
        store = try EventStore(options: o)
        // Opened with their headers only: nothing decoded until the queries ask.
        #expect(store.rollupCacheForTesting.loads == 0 && store.rollupCacheForTesting.parts == 0)
        try Self.expectRollupsEqualRaw(store.snapshot(), site: "a.com", zone: .utc, from: range.from, to: range.to)
        #expect(store.rollupCacheForTesting.loads > 0)
        try store.close()
    }

    @Test("a rollup part whose header (dictionaries) is far longer than the first bytes decompressed at open, and handed to the compression stream as one piece of over a megabyte, reopens whole and answers as raw")
    func longHeaderReopens() async throws {
        let dir = TemporaryDirectory()
        let o = Self.options(dir)
        var store = try EventStore(options: o)
        // 16,000 distinct paths of ~70 bytes: a pages dictionary of ~1.1 MB before the rows,
        // handed to zstd as one piece (`RollupPart.write` feeds the payload its header, then
        // column by column).
        let rows = (0..<16_000).map { i in
            EventRow(site: "a.com", type: "page_view", at: Self.t0 + Int64(i) * 60_000, visitor: "v\(i % 97)",
                     session: "s\(i % 301)", id: "e\(i)", path: "/articles/\(i)-" + String(repeating: "long-slug-", count: 6))
        }
        _ = try await store.ingest(.of(rows))
        try store.flush()
        try store.close()
        store = try EventStore(options: o)
        let pages = try #require(store.snapshot().rollups["pages"]?.first)
        #expect(pages.rows == 16_000)
        #expect(store.rollupCacheForTesting.parts == 0)
        #expect(pages.sameContent(as: try RollupPart.open(path: pages.path)))
        let q = Query(site: "a.com", from: Self.t0, to: Self.t0 + 5 * Self.day, metrics: [.pageviews, .uniqueVisitors],
                      dimensions: [.column(.pagePath)], filter: .condition(.column(.eventType), .is, ["page_view"]))
        let fast = try QueryExecutor.run(q, on: store.snapshot())
        var raw = q
        raw.allowRollups = false
        #expect(fast.source == .rollup)
        #expect(try fast.rows == QueryExecutor.run(raw, on: store.snapshot()).rows)
        try store.close()
    }

    @Test("ids stored in binary form (ULIDs against occurred_at, UUIDs) give rollups the same uniques as raw parts, over rollup days and raw hours alike")
    func binaryIdentifierUniques() async throws {
        let dir = TemporaryDirectory()
        var options = Self.options(dir)
        options.granuleRows = PartFormat.defaultGranuleRows
        let store = try EventStore(options: options)
        var rng = SeededRandom(state: 31)
        var ulids = ULIDGenerator(using: SeededRandom(state: 32))
        // Visitors: ULIDs made over the year before (stored as a delta from occurred_at and the
        // random bytes); sessions: UUIDs (stored as 16 bytes). 9,000 visitors recur over 12
        // days: every sketch of the total is dense, so ids hashed any other way than their
        // text would show in the estimate.
        let visitors = (0..<9000).map { i in ulids.next(ms: Self.t0 - Int64(i) * 3_600_000) }
        func uuid() -> String {
            let b = (0..<16).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
                .uuidString.lowercased()
        }
        var rows: [EventRow] = []
        for d in 0..<13 {
            // The thirteenth day: its first hours only, answered raw next to the rollup days.
            for i in 0..<(d == 12 ? 900 : 1500) {
                let visitor = visitors[Int(rng.next() % UInt64(visitors.count))]
                let at = Self.t0 + Int64(d) * Self.day + Int64(i) * (d == 12 ? 10_000 : 50_000)
                rows.append(EventRow(site: "bin.com", type: i % 4 == 3 ? "widget_click" : "page_view", at: at,
                                     visitor: visitor, session: uuid(), id: "e\(d)-\(i)", path: "/p\(i % 7)"))
            }
        }
        _ = try await store.ingest(.of(rows))
        try store.flush()
        let snapshot = store.snapshot()
        let views = QueryFilter.condition(.column(.eventType), .is, QueryMetric.pageviewTypes)
        for (to, source) in [(Self.t0 + 12 * Self.day, QuerySource.rollup), (Self.t0 + 12 * Self.day + 3 * 3_600_000, .mixed)] {
            for dims: [QueryDimension] in [[], [.column(.pagePath)], [.time(.day)]] {
                let q = Query(site: "bin.com", from: Self.t0, to: to, metrics: [.uniqueVisitors, .sessions],
                              dimensions: dims, filter: views)
                var raw = q
                raw.allowRollups = false
                let fast = try QueryExecutor.run(q, on: snapshot)
                #expect(fast.source == source)
                #expect(try QueryExecutor.run(raw, on: snapshot).rows == fast.rows, "\(dims.map(\.name)) to \(to)")
            }
        }
        try store.close()
    }

    @Test("a page of rollup groups tied in every count and on ids equal as doubles (2^53, 2^53 + 1) is the slice of the whole answer")
    func pagesTiedOnLargeIDs() async throws {
        let dir = TemporaryDirectory()
        let store = try EventStore(options: Self.options(dir))
        var rows: [EventRow] = []
        // Four mappings with the same counts and visitors; two of them differ only beyond a
        // Double's 53 bits, so neither sorts before the other and first seen decides.
        let ids: [Int64] = [1 << 53 + 1, 7, 1 << 53, 3]
        for (k, id) in ids.enumerated() {
            for i in 0..<6 {
                var r = EventRow(site: "t.com", type: "widget_impression", at: Self.t0 + Int64(k * 6 + i) * 60_000,
                                 visitor: "v\(i)", session: "s\(i)", id: "e\(k)-\(i)")
                r.ints[.propMappingID] = id
                rows.append(r)
            }
        }
        _ = try await store.ingest(.of(rows))
        try store.flush()
        let snapshot = store.snapshot()
        var whole = Query(site: "t.com", from: Self.t0, to: Self.t0 + Self.day, metrics: [.events, .uniqueVisitors],
                          dimensions: [.column(.propMappingID)],
                          filter: .condition(.column(.eventType), .is, ["widget_impression"]))
        for order: [(name: String, descending: Bool)] in [[], [("mapping_id", false)], [("events", true), ("mapping_id", true)]] {
            whole.orderBy = order
            let all = try QueryExecutor.run(whole, on: snapshot)
            #expect(all.source == .rollup && all.rows.count == 4)
            for (limit, offset) in [(1, 0), (1, 1), (2, 1), (1, 2), (2, 2)] {
                var page = whole
                page.limit = limit
                page.offset = offset
                let result = try QueryExecutor.run(page, on: snapshot)
                #expect(result.rows == Array(all.rows.dropFirst(offset).prefix(limit)), "\(order) limit \(limit) offset \(offset)")
            }
        }
        try store.close()
    }

    @Test("a flushed part too varied to keep page_path in a dictionary rolls its pages up as raw does, beside the columns its rollups code by the part's dictionaries")
    func pagesWithoutDictionary() async throws {
        let dir = TemporaryDirectory()
        var options = Self.options(dir)
        options.granuleRows = PartFormat.defaultGranuleRows
        let store = try EventStore(options: options)
        var rng = SeededRandom(state: 31)
        // More than 4,096 rows with more distinct paths than a quarter of them: the part
        // writer stores page_path as values, the other columns (nulls, empties) as codes.
        var batch = Self.batch(&rng, 70_000, tag: "varied", days: 3)
        var paths = StringColumn()
        for i in 0..<batch.count { paths.append(i % 7 == 0 ? "" : "/p/\(i % 30_000)") }
        batch[string: .pagePath] = paths
        _ = try await store.ingest(batch)
        try store.flush()
        let snapshot = store.snapshot()
        #expect(snapshot.parts.count == 1)
        #expect(snapshot.parts.first?.footer.column(.pagePath)?.dictionary.length == 0)
        #expect((snapshot.parts.first?.footer.column(.utmSource)?.dictionarySize ?? 0) > 0)
        let pageviews = QueryFilter.condition(.column(.eventType), .is, QueryMetric.pageviewTypes)
        let questions: [([QueryDimension], QueryFilter?)] = [
            ([.column(.pagePath)], pageviews),
            ([.column(.utmSource), .column(.utmMedium), .column(.utmCampaign), .column(.campaignID)], pageviews),
            ([.column(.propMappingID), .column(.propPostID), .column(.propDeviceSlug)],
             .condition(.column(.eventType), .is, ["widget_click", "widget_impression"])),
        ]
        for (dimensions, filter) in questions {
            let query = Query(site: "a.com", from: Self.t0, to: Self.t0 + 3 * Self.day, timeZone: .utc, metrics: Self.metrics,
                              dimensions: dimensions, filter: filter, limit: 10_000)
            var rawQuery = query
            rawQuery.allowRollups = false
            let fast = try QueryExecutor.run(query, on: snapshot)
            let raw = try QueryExecutor.run(rawQuery, on: snapshot)
            let name = dimensions.map(\.name).joined(separator: ",")
            #expect(fast.source == .rollup, "[\(name)] answered from \(fast.source)")
            #expect(fast.rows == raw.rows, "[\(name)] rollup \(fast.rows.prefix(3)) raw \(raw.rows.prefix(3))")
            #expect(raw.rows.count > 1)
        }
        try store.close()
    }

    @Test("a merge that drops a duplicate takes it out of the rollups too")
    func duplicateCorrections() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock(Self.t0 + Self.day)
        let store = try EventStore(options: Self.options(dir, clock: clock))
        var rng = SeededRandom(state: 3)
        let original = Self.batch(&rng, 400, tag: "x", received: clock.nowMillis())
        _ = try await store.ingest(original)
        try store.flush()
        clock.advance(8 * Self.day)  // past the dedupe window: the same events are accepted again
        #expect(try await store.ingest(original.gather((0..<50).map(Int32.init))).accepted == 50)
        try store.flush()
        _ = try store.mergeNow(force: true)
        #expect(store.status.merges.duplicatesDropped == 50)
        try Self.expectRollupsEqualRaw(store.snapshot(), site: "a.com", zone: .utc, from: Self.t0, to: Self.t0 + 45 * Self.day)
        try store.close()
        // The correction survives a restart and a rollup merge.
        let reopened = try EventStore(options: Self.options(dir, clock: clock))
        try reopened.mergeRollups(force: true)
        try Self.expectRollupsEqualRaw(reopened.snapshot(), site: "ny.com", zone: .utc, from: Self.t0, to: Self.t0 + 45 * Self.day)
        try reopened.close()
    }

    @Test("parts a crash left without rollup rows are rolled up on open, exactly once")
    func crashMidFlush() async throws {
        let dir = TemporaryDirectory()
        var store = try EventStore(options: Self.options(dir))
        var rng = SeededRandom(state: 11)
        try await Self.ingest(store, &rng, flushes: 2, rows: 500, tag: "a")
        _ = try await store.ingest(Self.batch(&rng, 500, tag: "crash"))
        // The flush wrote raw parts and died before the rollup parts.
        try store.flushForTesting(onlyPartitions: [Partition(yyyymm: 202608)!, Partition(yyyymm: 202609)!])
        try store.abandonForTesting()
        // A read-only open (`tally query` on the crashed directory) writes no rollup part: it answers
        // the parts' rows raw beside the rollups.
        func files() throws -> [String] { try FileManager.default.subpathsOfDirectory(atPath: dir.path + "/rollups").sorted() }
        let before = try files()
        var readOnly = Self.options(dir)
        readOnly.readOnly = true
        let viewer = try EventStore(options: readOnly)
        #expect(viewer.openReport.rollupPartsRebuilt == 0)
        var sources: [QuerySource] = []
        for query in try Self.queries(site: "a.com", zone: .utc, from: Self.t0, to: Self.t0 + 45 * Self.day) {
            let fast = try QueryExecutor.run(query, on: viewer.snapshot())
            var raw = query
            raw.allowRollups = false
            #expect(try fast.rows == QueryExecutor.run(raw, on: viewer.snapshot()).rows)
            sources.append(fast.source)
        }
        #expect(sources.contains(.mixed) && !sources.contains(.raw))
        try viewer.close()
        #expect(try files() == before)
        store = try EventStore(options: Self.options(dir))
        #expect(store.openReport.rollupPartsRebuilt > 0)
        try Self.expectRollupsEqualRaw(store.snapshot(), site: "a.com", zone: .utc, from: Self.t0, to: Self.t0 + 45 * Self.day)
        try store.close()
        // Opening again rolls up nothing more.
        store = try EventStore(options: Self.options(dir))
        #expect(store.openReport.rollupPartsRebuilt == 0)
        try Self.expectRollupsEqualRaw(store.snapshot(), site: "a.com", zone: .utc, from: Self.t0, to: Self.t0 + 45 * Self.day)
        try store.close()
    }

    @Test("a flush that died with some of its rollup parts written: opening drops them and rolls the raw parts up",
          arguments: [1, 4, 7])
    func crashAmidRollupParts(kept: Int) async throws {
        let dir = TemporaryDirectory()
        var store = try EventStore(options: Self.options(dir))
        var rng = SeededRandom(state: 19)
        try await Self.ingest(store, &rng, flushes: 2, rows: 500, tag: "a")
        _ = try await store.ingest(Self.batch(&rng, 500, tag: "crash"))
        try store.flushForTesting(keptRollupParts: kept)
        try store.abandonForTesting()
        func files() throws -> [String] { try FileManager.default.subpathsOfDirectory(atPath: dir.path + "/rollups").sorted() }
        let before = try files()
        // A read-only open leaves the half-written parts on disk and out of its answers.
        var readOnly = Self.options(dir)
        readOnly.readOnly = true
        let viewer = try EventStore(options: readOnly)
        try Self.expectRollupsEqualRaw(viewer.snapshot(), site: "a.com", zone: .utc, from: Self.t0, to: Self.t0 + 45 * Self.day,
                                       source: .mixed)
        // `tally inspect` (an inventory) lists the parts an open keeps, not the half-written ones.
        let listed = try Inventory(directory: dir.path).rollups.values.joined().map(\.name)
        #expect(Set(listed) == Set(viewer.snapshot().rollups.values.joined().map(\.name)))
        #expect(listed.count + kept == before.filter { $0.hasSuffix(".rpart") }.count)
        try viewer.close()
        #expect(try files() == before)
        store = try EventStore(options: Self.options(dir))
        #expect(store.openReport.leftoversRemoved >= kept)
        #expect(store.openReport.rollupPartsRebuilt > 0)
        try Self.expectRollupsEqualRaw(store.snapshot(), site: "a.com", zone: .utc, from: Self.t0, to: Self.t0 + 45 * Self.day)
        try Self.expectRollupsEqualRaw(store.snapshot(), site: "ny.com", zone: .utc, from: Self.t0, to: Self.t0 + 45 * Self.day)
        try store.close()
        store = try EventStore(options: Self.options(dir))
        #expect(store.openReport.rollupPartsRebuilt == 0 && store.openReport.leftoversRemoved == 0)
        try Self.expectRollupsEqualRaw(store.snapshot(), site: "a.com", zone: .utc, from: Self.t0, to: Self.t0 + 45 * Self.day)
        try store.close()
    }

    @Test("each rollup row's sketches are those of adding its rows' visitors and sessions: flushed (sparse and dense), and merged from parts that share a day or not (two or three of them, sparse ones whose union stays sparse or turns dense); the same when entries are folded into sketches as they come",
          arguments: [0, 100])
    func sketchesHoldTheirRows(flatLimit: Int) async throws {
        let saved = EventStore.rollupFlatLimitForTesting
        if flatLimit > 0 { EventStore.rollupFlatLimitForTesting = flatLimit }
        defer { EventStore.rollupFlatLimitForTesting = saved }
        let dir = TemporaryDirectory()
        let store = try EventStore(options: Self.options(dir))
        func rows(day: Int64, _ range: Range<Int>, visitors: Int, tag: String) -> [EventRow] {
            range.map { i in
                EventRow(site: "a.com", type: i % 7 == 0 ? "widget_click" : "page_view",
                         at: Self.t0 + day * Self.day + Int64(i) * 10_000, visitor: "v\(day)-\(i % visitors)",
                         session: "s\(day)-\(i % (visitors * 2))\(tag)", id: "\(tag)\(day)-\(i)", path: "/p\(i % 3)")
            }
        }
        // Flush 1: day 0 dense (6,000 visitors), day 1's first half. Flush 2: day 1's second
        // half, day 2, day 3 dense (5,000). Flush 3: late events of day 0.
        // Days 4 and 5 are in all three: day 4's 2,000 visitors in each (their union stays
        // sparse) with 2,000 sessions of their own in each (a union of sparse sketches past the
        // sparse limit: dense), day 5 a few of each.
        func shared(_ tag: String) -> [EventRow] {
            rows(day: 4, 0..<2000, visitors: 2000, tag: tag) + rows(day: 5, 0..<12, visitors: 6, tag: tag)
        }
        let first = rows(day: 0, 0..<7000, visitors: 6000, tag: "a") + rows(day: 1, 0..<40, visitors: 25, tag: "a") + shared("a")
        let second = rows(day: 1, 40..<80, visitors: 25, tag: "a") + rows(day: 2, 0..<30, visitors: 30, tag: "a")
            + rows(day: 3, 0..<5200, visitors: 5000, tag: "a") + shared("b")
        let third = rows(day: 0, 0..<50, visitors: 50, tag: "late") + shared("c")
        func check(_ stage: String, _ all: [EventRow]) throws {
            for (name, parts) in store.snapshot().rollups where name == "events" || name == "pages" {
                let sketched = name == "pages" ? QueryMetric.pageviewTypes : nil
                var expected: [[String?]: (HyperLogLog, HyperLogLog)] = [:]
                for row in all where sketched?.contains(row.values[.eventType]!!) ?? true {
                    let day = Int32(row.ints[.occurredAt]!! / Self.day)
                    var key: [String?] = [row.values[.siteID]!, row.values[.eventType]!, String(day)]
                    if name == "pages" { key.append(row.values[.pagePath]!) }
                    var (v, s) = expected[key] ?? (HyperLogLog(), HyperLogLog())
                    v.add(row.values[.visitorID]!!)
                    s.add(row.values[.sessionID]!!)
                    expected[key] = (v, s)
                }
                var seen = 0
                for part in parts {
                    for r in 0..<part.rows {
                        let row = try part.rowForTesting(r)
                        guard sketched?.contains(row.key[1] ?? "") ?? true else { continue }
                        let key = Array(row.key[0..<2]) + [String(row.day)] + Array(row.key[2...])
                        let want = try #require(expected[key], "\(stage): \(name) row \(key)")
                        #expect(row.visitors == want.0 && row.sessions == want.1, "\(stage): \(name) row \(key)")
                        #expect(row.visitors.serialized() == want.0.serialized() && row.sessions.serialized() == want.1.serialized(),
                                "\(stage): \(name) row \(key)")
                        seen += 1
                    }
                }
                #expect(seen == expected.count, "\(stage): \(name)")
            }
        }
        _ = try await store.ingest(.of(first))
        try store.flush()
        try check("first flush", first)
        _ = try await store.ingest(.of(second))
        try store.flush()
        _ = try await store.ingest(.of(third))
        try store.flush()
        try store.mergeRollups(force: true)
        #expect(store.snapshot().rollups["events"]?.count == 1)
        try check("merged", first + second + third)
        try store.close()
        // Reopened from the files.
        let reopened = try EventStore(options: Self.options(dir))
        #expect(reopened.snapshot().rollups["pages"]?.count == 1)
        try reopened.close()
    }

    @Test("sketch offsets are kept compact, or in full where dense sketches in a row span 64 KiB: every row's sketches read back as added, reopened too")
    func sketchOffsetForms() async throws {
        let dir = TemporaryDirectory()
        let store = try EventStore(options: Self.options(dir))
        defer { try? store.close() }
        // Ten pages with 4,400 visitors each on one day: ten dense sketches side by side in the
        // pages rollup (~9 KiB each). One page on the next day with a few: sparse ones.
        var rows: [EventRow] = []
        for page in 0..<10 {
            rows += (0..<4_400).map { i in
                EventRow(site: "a.com", type: "page_view", at: Self.t0 + Int64(i) * 1_000, visitor: "v\(page)-\(i)",
                         session: "s\(page)-\(i)", id: "e\(page)-\(i)", path: "/dense\(page)")
            }
        }
        rows += (0..<30).map { i in
            EventRow(site: "a.com", type: "page_view", at: Self.t0 + Self.day + Int64(i) * 1_000, visitor: "w\(i % 9)",
                     session: "t\(i % 12)", id: "f\(i)", path: "/sparse")
        }
        // Each page row of `part`, and of its file reopened, holds the sketches of adding `rows`' visitors and sessions.
        func checkPages(_ part: RollupPart, _ rows: [EventRow]) throws {
            var expected: [String: (HyperLogLog, HyperLogLog)] = [:]
            for row in rows {
                var (v, s) = expected[row.values[.pagePath]!!] ?? (HyperLogLog(), HyperLogLog())
                v.add(row.values[.visitorID]!!)
                s.add(row.values[.sessionID]!!)
                expected[row.values[.pagePath]!!] = (v, s)
            }
            for p in [part, try RollupPart.open(path: part.path)] {
                #expect(p.rows == expected.count)
                for r in 0..<p.rows {
                    let row = try p.rowForTesting(r)
                    let want = try #require(expected[row.key[2] ?? ""])
                    #expect(row.visitors.serialized() == want.0.serialized() && row.sessions.serialized() == want.1.serialized(),
                            "\(row.key)")
                }
            }
            #expect(part.sameContent(as: try RollupPart.open(path: part.path)))
        }
        _ = try await store.ingest(.of(rows))
        try store.flush()
        let pages = try #require(store.snapshot().rollups["pages"]?.first)
        let events = try #require(store.snapshot().rollups["events"]?.first)
        #expect(try pages.sketchOffsetsInFullForTesting())
        #expect(try !events.sketchOffsetsInFullForTesting())
        #expect(pages.rows == 11)
        try checkPages(pages, rows)
        #expect(events.sameContent(as: try RollupPart.open(path: events.path)))

        // Forty sparse pages in a flush of their own: 81 offsets, six blocks, kept compact.
        let sparse = (0..<400).map { i in
            EventRow(site: "a.com", type: "page_view", at: Self.t0 + 2 * Self.day + Int64(i) * 1_000, visitor: "x\(i % 23)",
                     session: "y\(i % 31)", id: "g\(i)", path: "/p\(i % 40)")
        }
        _ = try await store.ingest(.of(sparse))
        try store.flush()
        let second = try #require(store.snapshot().rollups["pages"]?.first { $0.number != pages.number })
        #expect(try !second.sketchOffsetsInFullForTesting() && second.rows == 40)
        try checkPages(second, sparse)
    }

    @Test("every rollup part a store writes (flushes, corrections, merges, a rebuild in another zone) is what reopening its file gives")
    func writtenEqualsReopened() async throws {
        let dir = TemporaryDirectory()
        let zones = SiteTimeZones()
        let clock = ManualClock(Self.t0 + Self.day)
        let store = try EventStore(options: Self.options(dir, clock: clock, zones: zones))
        var checked: Set<String> = []
        func check(_ stage: String) throws {
            // Rows written by flushes and merges are not put in the cache (queries load them).
            #expect(store.rollupCacheForTesting.parts == 0, "\(stage)")
            defer { store.clearRollupCacheForTesting() }
            for (name, parts) in store.snapshot().rollups {
                for part in parts where !checked.contains(part.path) {
                    let reopened = try RollupPart.open(path: part.path)
                    // The header the writer opened the part with against the file's, and the
                    // rows loaded through the store against those of the file opened alone.
                    #expect(part.sameContent(as: reopened), "\(stage): \(name)/\(part.name)")
                    checked.insert(part.path)
                }
            }
        }
        var rng = SeededRandom(state: 29)
        let original = Self.batch(&rng, 400, tag: "x", received: clock.nowMillis())
        _ = try await store.ingest(original)
        try store.flush()
        try check("flush")
        let flushed = checked.count
        #expect(flushed >= RollupDefinition.defaults.count)
        // Duplicates past the dedupe window, dropped by a raw merge: correction parts (negative counts).
        clock.advance(8 * Self.day)
        _ = try await store.ingest(original.gather((0..<50).map(Int32.init)))
        try store.flush()
        _ = try store.mergeNow(force: true)
        #expect(store.status.merges.duplicatesDropped == 50)
        try check("correction")
        #expect(store.snapshot().rollups.values.joined().contains { (try? $0.inspection())?.correctsPart != nil })
        // (Inspecting loaded those parts' rows into the cache; the merge below must not.)
        store.clearRollupCacheForTesting()
        try store.mergeRollups(force: true)
        try check("rollup merge")
        zones.set("ny.com", try QueryTimeZone(identifier: "America/New_York"))
        _ = try store.rebuildRollups(from: Self.t0, to: Self.t0 + 45 * Self.day)
        try check("rebuild")
        #expect(checked.count > 3 * flushed)
        try store.close()
    }

    @Test("a read-only open of a directory from before rollups, with merged raw parts, rolls up once and commits it")
    func readOnlyRollUpCommits() async throws {
        let dir = TemporaryDirectory()
        var o = Self.options(dir)
        o.rollups = []
        let store = try EventStore(options: o)
        var rng = SeededRandom(state: 37)
        try await Self.ingest(store, &rng, flushes: 3, rows: 300, tag: "a")
        _ = try store.mergeNow(force: true)
        try store.close()
        var readOnly = Self.options(dir)
        readOnly.readOnly = true
        func files() throws -> [String] { try FileManager.default.subpathsOfDirectory(atPath: dir.path + "/rollups").sorted() }
        let first = try EventStore(options: readOnly)
        #expect(first.openReport.rollupPartsRebuilt > 0)
        try Self.expectRollupsEqualRaw(first.snapshot(), site: "a.com", zone: .utc, from: Self.t0, to: Self.t0 + 45 * Self.day)
        try first.close()
        let after = try files()
        let second = try EventStore(options: readOnly)
        #expect(second.openReport.rollupPartsRebuilt == 0)
        try Self.expectRollupsEqualRaw(second.snapshot(), site: "a.com", zone: .utc, from: Self.t0, to: Self.t0 + 45 * Self.day)
        try second.close()
        #expect(try files() == after)
    }

    @Test("a rollup whose coverage file was lost keeps its merged parts and counts nothing twice")
    func lostCoverageFile() async throws {
        let dir = TemporaryDirectory()
        var store = try EventStore(options: Self.options(dir))
        var rng = SeededRandom(state: 41)
        try await Self.ingest(store, &rng, flushes: 3, rows: 300, tag: "a")
        try store.mergeRollups(force: true)
        try await Self.ingest(store, &rng, flushes: 1, rows: 300, tag: "b")
        try store.close()
        for def in RollupDefinition.defaults { try FileManager.default.removeItem(atPath: dir.path + "/rollups/" + def.name + "/COVERED") }
        store = try EventStore(options: Self.options(dir))
        #expect(store.openReport.problems.contains { $0.contains("no COVERED file") })
        try Self.expectRollupsEqualRaw(store.snapshot(), site: "a.com", zone: .utc, from: Self.t0, to: Self.t0 + 45 * Self.day)
        try store.close()
    }

    /// Fails, once armed, the rename that publishes the coverage file of rollup `failing` and
    /// every removal of a raw part: a flush that fails midway and cannot clean up after itself.
    static func failingCoverage(_ failing: String) -> FaultInjectingFileSystem {
        FaultInjectingFileSystem(armed: false) { op in
            switch op {
            case .rename(_, let to): to.hasSuffix("/rollups/\(failing)/COVERED")
            case .remove(let path): path.hasSuffix(".part")
            default: false
            }
        }
    }

    @Test("a flush that fails after moving some coverage marks moves them back: the raw part it could not remove is rolled up on open")
    func failedFlushRestoresMarks() async throws {
        let dir = TemporaryDirectory()
        let fs = Self.failingCoverage(RollupDefinition.defaults[1].name)
        var o = Self.options(dir)
        o.fileSystem = fs
        let store = try EventStore(options: o)
        var rng = SeededRandom(state: 43)
        try await Self.ingest(store, &rng, flushes: 2, rows: 300, tag: "a")
        _ = try await store.ingest(Self.batch(&rng, 300, tag: "failing"))
        fs.armed = true
        #expect(throws: TallyError.self) { try store.flush() }
        try store.abandonForTesting()
        fs.armed = false
        let reopened = try EventStore(options: Self.options(dir))
        try Self.expectRollupsEqualRaw(reopened.snapshot(), site: "a.com", zone: .utc, from: Self.t0, to: Self.t0 + 45 * Self.day)
        try Self.expectRollupsEqualRaw(reopened.snapshot(), site: "ny.com", zone: .utc, from: Self.t0, to: Self.t0 + 45 * Self.day)
        try reopened.close()
    }

    @Test("a flush that fails on its second month's part removes the first month's: flushed again and reopened, every row is there once")
    func failedSecondPartLeavesNoCopy() async throws {
        let dir = TemporaryDirectory()
        // Once armed, the second part file a flush starts (its second month) cannot be written.
        var started = 0
        let fs = FaultInjectingFileSystem(armed: false) { op in
            guard case .openForWriting(let path) = op, path.hasSuffix(".part.tmp") else { return false }
            started += 1
            return started == 2
        }
        var o = Self.options(dir)
        o.fileSystem = fs
        var store = try EventStore(options: o)
        var rng = SeededRandom(state: 47)
        // 45 days from August 1st: two month partitions in one flush.
        _ = try await store.ingest(Self.batch(&rng, 600, tag: "two-months"))
        fs.armed = true
        #expect(throws: TallyError.self) { try store.flush() }
        fs.armed = false
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path + "/parts").filter { $0.hasSuffix(".part") }.isEmpty)
        try store.flush()
        #expect(store.snapshot().parts.count == 2)
        try store.close()
        store = try EventStore(options: Self.options(dir))
        #expect(store.snapshot().parts.reduce(0) { $0 + $1.rows } == 600)
        try Self.expectRollupsEqualRaw(store.snapshot(), site: "a.com", zone: .utc, from: Self.t0, to: Self.t0 + 45 * Self.day)
        try store.close()
    }

    @Test("a rebuild that meets a damaged raw part fails, and the rollup parts it would have replaced stay and answer")
    func rebuildStopsAtDamage() async throws {
        let dir = TemporaryDirectory()
        var store = try EventStore(options: Self.options(dir))
        var rng = SeededRandom(state: 53)
        try await Self.ingest(store, &rng, flushes: 2, rows: 400, tag: "a")
        let before = store.snapshot()
        let question = Query(site: "a.com", from: Self.t0, to: Self.t0 + 45 * Self.day, timeZone: .utc, metrics: [.events],
                             dimensions: [.column(.countryCode)], filter: nil, limit: 100)
        let answer = try QueryExecutor.run(question, on: before)
        try store.close()
        // One byte in the middle of every occurred_at block of the last raw part.
        let name = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/parts").filter { $0.hasSuffix(".part") }.sorted().last!
        let path = dir.path + "/parts/" + name
        let part = try Part.openForInspection(path: path, name: name, number: 1)
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        for block in part.footer.column(.occurredAt)!.granules { bytes[block.offset + block.length / 2] ^= 0x5A }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        store = try EventStore(options: Self.options(dir))
        let rollups = store.snapshot().rollups.mapValues { $0.map(\.name).sorted() }
        #expect(throws: TallyError.self) { _ = try store.rebuildRollups(from: Self.t0, to: Self.t0 + 45 * Self.day) }
        #expect(store.snapshot().rollups.mapValues { $0.map(\.name).sorted() } == rollups)
        let after = try QueryExecutor.run(question, on: store.snapshot())
        #expect(answer.source == .rollup)
        #expect(after.source == .rollup && after.rows == answer.rows)
        try store.close()
    }

    @Test("a coverage file of version 1 (before it was a commit mark) opens as it did, then is rewritten as version 2")
    func coverageVersion1() async throws {
        let dir = TemporaryDirectory()
        var store = try EventStore(options: Self.options(dir))
        var rng = SeededRandom(state: 23)
        try await Self.ingest(store, &rng, flushes: 4, rows: 400, tag: "a")
        // Raw parts merged (rollup parts not): rolling up level-0 raw parts again could not
        // restore the rows of the flushes' rollup parts.
        _ = try store.mergeNow(force: true)
        try store.close()
        // A version-1 directory's mark lagged its parts' coverage (only opens and drops wrote it).
        for def in RollupDefinition.defaults {
            var w = [UInt8]("TLYRCOV1".utf8)
            withUnsafeBytes(of: UInt64(1).littleEndian) { w += $0 }
            withUnsafeBytes(of: CRC32C.checksum(w).littleEndian) { w += $0 }
            try Data(w).write(to: URL(fileURLWithPath: dir.path + "/rollups/" + def.name + "/COVERED"))
        }
        store = try EventStore(options: Self.options(dir))
        #expect(store.openReport.rollupPartsRebuilt == 0 && store.openReport.leftoversRemoved == 0)
        try Self.expectRollupsEqualRaw(store.snapshot(), site: "a.com", zone: .utc, from: Self.t0, to: Self.t0 + 45 * Self.day)
        try store.close()
        for def in RollupDefinition.defaults {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: dir.path + "/rollups/" + def.name + "/COVERED"))
            #expect(Array(bytes.prefix(8)) == Array("TLYRCOV2".utf8))
        }
    }

    @Test("a data directory without rollups gets them built on open; a rebuild after a time zone change matches raw")
    func buildAndRebuild() async throws {
        let dir = TemporaryDirectory()
        var o = Self.options(dir)
        o.rollups = []
        var store = try EventStore(options: o)
        var rng = SeededRandom(state: 13)
        try await Self.ingest(store, &rng, flushes: 3, rows: 500, tag: "a")
        try store.close()
        let zones = SiteTimeZones()
        store = try EventStore(options: Self.options(dir, zones: zones))
        #expect(store.openReport.rollupPartsRebuilt > 0)
        try Self.expectRollupsEqualRaw(store.snapshot(), site: "a.com", zone: .utc, from: Self.t0, to: Self.t0 + 45 * Self.day)
        let berlin = try QueryTimeZone(identifier: "Europe/Berlin")
        zones.set("a.com", berlin)
        let months = try store.rebuildRollups(from: Self.t0, to: Self.t0 + 45 * Self.day)
        #expect(months == [Partition(yyyymm: 202608)!, Partition(yyyymm: 202609)!])
        let from = berlin.startOfDay(berlin.day(Self.t0 + Self.day)), to = berlin.startOfDay(berlin.day(Self.t0 + 44 * Self.day))
        try Self.expectRollupsEqualRaw(store.snapshot(), site: "a.com", zone: berlin, from: from, to: to)
        try store.close()
    }

    @Test("raw months go after 90 days, rollup months after 2 years; old ranges are answered from rollups alone")
    func retention() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock(Self.t0 + 50 * Self.day)
        var o = Self.options(dir, clock: clock)
        o.retention = 90 * Self.day
        let store = try EventStore(options: o)
        var rng = SeededRandom(state: 17)
        try await Self.ingest(store, &rng, flushes: 2, rows: 600, tag: "a", days: 31)  // August only
        let range = Query(site: "a.com", from: Self.t0, to: Self.t0 + 31 * Self.day, metrics: [.events, .uniqueVisitors])
        var raw = range
        raw.allowRollups = false
        let before = try QueryExecutor.run(raw, on: store.snapshot())
        clock.advance(100 * Self.day)
        #expect(try store.dropExpiredPartitions() == [Partition(yyyymm: 202608)!])
        #expect(try store.dropExpiredRollups().isEmpty)
        let after = try QueryExecutor.run(range, on: store.snapshot())
        #expect(after.source == .rollup)
        #expect(after.rows == before.rows)
        clock.advance(2 * 365 * Self.day)
        #expect(try store.dropExpiredRollups().map(\.1).allSatisfy { $0 == Partition(yyyymm: 202608)! })
        let empty = store.snapshot().rollups.values.allSatisfy(\.isEmpty)
        #expect(empty)
        try store.close()
    }

    @Test("rollup parts of format version 1 (every row with sketches, varint sketches) still open and answer")
    func version1Parts() async throws {
        let dir = TemporaryDirectory()
        var rng = SeededRandom(state: 23)
        let store = try EventStore(options: Self.options(dir))
        try await Self.ingest(store, &rng, flushes: 2, rows: 800, tag: "v")
        let before = try QueryExecutor.run(Query(site: "a.com", from: Self.t0, to: Self.t0 + 45 * Self.day,
                                                 metrics: [.events, .uniqueVisitors], dimensions: [.time(.day)]),
                                           on: store.snapshot())
        try store.close()
        let events = dir.path + "/rollups/events"
        let files = try FileManager.default.contentsOfDirectory(atPath: events).filter { $0.hasSuffix(".rpart") }
        #expect(!files.isEmpty)
        for f in files { try RollupPart.downgradeToVersion1ForTesting(events + "/" + f) }
        let reopened = try EventStore(options: Self.options(dir))
        #expect(reopened.snapshot().rollups["events"]?.allSatisfy { $0.sketchTypes == nil } == true)
        try Self.expectRollupsEqualRaw(reopened.snapshot(), site: "a.com", zone: .utc, from: Self.t0, to: Self.t0 + 45 * Self.day)
        let after = try QueryExecutor.run(Query(site: "a.com", from: Self.t0, to: Self.t0 + 45 * Self.day,
                                                metrics: [.events, .uniqueVisitors], dimensions: [.time(.day)]),
                                          on: reopened.snapshot())
        #expect(after.source == .rollup && after.rows == before.rows)
        try reopened.close()
    }
}
