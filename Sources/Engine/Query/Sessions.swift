import Foundation

/// Questions about sessions: bounce rate, visit duration, views per visit, entry and exit pages,
/// conversions, and the session list.
///
/// A session is the events of one property sharing a session_id. Its start and end are its
/// first and last event's occurred_at; its entry and exit pages are the page_path of its
/// first and last pageview (none without pageviews); its other dimensions (device, browser,
/// os, country, region, referrer, source, utm_*, campaign) are those of its first event; it
/// bounced when it has exactly one pageview. A session belongs to the range its start falls
/// in, with all its events, and time buckets are those of its start. Sessions are derived
/// from the raw events read from `sessionSpan` before the range to `sessionSpan` after it: a
/// session longer than that (a client keeping one session_id for over a day) is cut there.
/// The tracker and seed 000 rotate session ids after 30 minutes without events.
public enum SessionExecutor {
    /// How far around the range events are read to find whole sessions.
    public static let sessionSpan: Int64 = 86_400_000

    /// Dimensions a session has (those of its first event), besides entry/exit page and time.
    static let attributeColumns: Set<EventColumn> = [
        .deviceType, .browser, .os, .countryCode, .region, .referrerDomain, .source, .utmSource, .utmMedium,
        .utmCampaign, .utmTerm, .utmContent, .campaignID,
    ]

    /// Whether the query is about sessions (a session metric, or an entry/exit page dimension
    /// or filter).
    public static func applies(_ q: Query) -> Bool {
        q.metrics.contains(where: \.isSession) || q.dimensions.contains(where: \.isSession)
            || (q.filter?.dimensions.contains(where: \.isSession) ?? false)
    }

    static func isSessionDimension(_ d: QueryDimension) -> Bool {
        switch d {
        case .entryPage, .exitPage, .campaign: true
        case .column(let c): attributeColumns.contains(c)
        case .time: true
        case .prop: false
        }
    }

    static func validate(_ q: Query) throws(QueryError) {
        for m in q.metrics {
            switch m {
            case .events, .pageviews, .uniqueVisitors, .sessions, .session: continue
            default:
                throw QueryError.invalid(
                    "metrics", "\(m.name) is a metric of events; with session metrics or entry/exit pages use events, pageviews, "
                        + "unique_visitors, sessions, bounce_rate, bounces, visit_duration, visit_duration_median, "
                        + "views_per_visit or conversions:<event_type>")
            }
        }
        for (parameter, dimensions) in [("dimensions", q.dimensions), ("filters", q.filter?.dimensions ?? [])] {
            for d in dimensions where !isSessionDimension(d) {
                throw QueryError.invalid(
                    parameter, "\(d.name) is a dimension of events, not of sessions; sessions have entry_page, exit_page, "
                        + "device_type, browser, os, country_code, region, referrer_domain, source, utm_*, campaign_id "
                        + "and time buckets of their start")
            }
        }
    }

    // MARK: Building sessions from events

    /// Sessions being assembled from events that arrive in any order (parts, then the buffer).
    final class Builder {
        /// The dimensions of each session's first event that the question needs.
        let attributes: [QueryDimension]
        let attributeSpaces: [ValueSpace]
        let conversionTypes: [String]
        let zone: QueryTimeZone
        let maxSessions: Int
        /// With ids: the session and visitor ids' text, for the session list.
        let keepIDs: Bool

        let pages = ValueSpace()
        let ids = ValueSpace()
        var index: [UInt64: Int32] = [:]
        var visitor: [UInt64] = []
        var start: [Int64] = []
        var end: [Int64] = []
        var events: [Int32] = []
        var pageviews: [Int32] = []
        var entryTime: [Int64] = []
        var entryPage: [UInt32] = []
        var exitTime: [Int64] = []
        var exitPage: [UInt32] = []
        /// [attribute][session]
        var attributeCodes: [[UInt32]]
        var conversions: [UInt64] = []
        var sessionID: [UInt32] = []
        var visitorID: [UInt32] = []
        var rowsRead = 0

        init(attributes: [QueryDimension], conversionTypes: [String], zone: QueryTimeZone, maxSessions: Int, keepIDs: Bool) {
            self.attributes = attributes
            attributeSpaces = attributes.map { _ in ValueSpace() }
            attributeCodes = attributes.map { _ in [] }
            self.conversionTypes = conversionTypes
            self.zone = zone
            self.maxSessions = maxSessions
            self.keepIDs = keepIDs
        }

        var columns: [EventColumn] {
            var c: Set<EventColumn> = [.occurredAt, .eventType, .sessionID, .visitorID, .pagePath]
            for a in attributes { c.formUnion(a.storedColumns) }
            return c.sorted()
        }

        var count: Int { start.count }

        func add(_ b: EventBatch) throws(QueryError) {
            let n = b.count
            rowsRead += n
            let times = b[int: .occurredAt].values
            let sessions = b[string: .sessionID]
            let visitors = b[string: .visitorID]
            let types = b[string: .eventType]
            let paths = b[string: .pagePath]
            let codes = attributes.enumerated().map { i, d in
                ExecutionPlan.codes(of: d, in: b, space: attributeSpaces[i], zone: zone)
            }
            let noPage = pages.code(.null)
            for r in 0..<n {
                let hash = sessions.withValue(r) { $0.isEmpty ? 0 : TallyHash.hash($0) }
                if hash == 0 { continue }
                let t = times[r]
                let isPageview = types.withValue(r) { t in QueryMetric.pageviewTypes.contains { p in Self.equal(t, p) } }
                var conversionBits: UInt64 = 0
                if !conversionTypes.isEmpty {
                    types.withValue(r) { t in
                        for (k, c) in conversionTypes.enumerated() where Self.equal(t, c) { conversionBits |= 1 << UInt64(k) }
                    }
                }
                let s: Int
                if let existing = index[hash] {
                    s = Int(existing)
                } else {
                    guard count < maxSessions else {
                        throw QueryError(kind: .budget, parameter: "query",
                                         message: "more than \(maxSessions) sessions; narrow the range or filter")
                    }
                    s = count
                    index[hash] = Int32(s)
                    visitor.append(visitors.withValue(r) { $0.isEmpty ? 0 : TallyHash.hash($0) })
                    start.append(t)
                    end.append(t)
                    events.append(0)
                    pageviews.append(0)
                    entryTime.append(.max)
                    entryPage.append(noPage)
                    exitTime.append(.min)
                    exitPage.append(noPage)
                    for k in 0..<attributes.count { attributeCodes[k].append(codes[k][r]) }
                    conversions.append(0)
                    if keepIDs {
                        sessionID.append(sessions.withValue(r) { ids.code(bytes: $0) })
                        visitorID.append(visitors.withValue(r) { ids.code(bytes: $0) })
                    }
                }
                events[s] += 1
                conversions[s] |= conversionBits
                if t < start[s] {
                    start[s] = t
                    for k in 0..<attributes.count { attributeCodes[k][s] = codes[k][r] }
                    if keepIDs { visitorID[s] = visitors.withValue(r) { ids.code(bytes: $0) } }
                    visitor[s] = visitors.withValue(r) { $0.isEmpty ? 0 : TallyHash.hash($0) }
                }
                if t > end[s] { end[s] = t }
                if isPageview {
                    pageviews[s] += 1
                    if t < entryTime[s] {
                        entryTime[s] = t
                        entryPage[s] = paths.withValue(r) { pages.code(bytes: $0) }
                    }
                    if t > exitTime[s] {
                        exitTime[s] = t
                        exitPage[s] = paths.withValue(r) { pages.code(bytes: $0) }
                    }
                }
            }
        }

        static func equal(_ bytes: UnsafeRawBufferPointer, _ s: String) -> Bool {
            var s = s
            return s.withUTF8 { ByteOrder.equal(bytes, UnsafeRawBufferPointer($0)) }
        }

        /// An empty builder asking the same question (for another scan worker).
        func sibling() -> Builder {
            Builder(attributes: attributes, conversionTypes: conversionTypes, zone: zone, maxSessions: maxSessions, keepIDs: keepIDs)
        }

        /// Reads the events around [from, to) of `site` from the snapshot (parts and buffer) on
        /// both cores: each worker assembles the sessions of its parts, then they are combined.
        func read(site: String, from: Int64, to: Int64, snapshot: Snapshot, deadline: QueryExecutor.Deadline) throws(QueryError)
            -> ScanStats
        {
            let request = ScanRequest(site: site, from: from - sessionSpan, to: to + sessionSpan, columns: columns)
            do {
                var first = true
                let (workers, stats) = try snapshot.scanInParallel(request, workers: 2, makeState: { () -> Builder in
                    defer { first = false }
                    return first ? self : sibling()
                }) { builder, b in
                    try deadline.check()
                    try builder.add(b)
                }
                for w in workers where w !== self { try absorb(w) }
                return stats
            } catch let e as QueryError {
                throw e
            } catch {
                throw QueryError(kind: .invalid, parameter: "query", message: "reading the data failed: \(error)")
            }
        }

        /// Adds the sessions another builder assembled (the same session in both is combined:
        /// counts add up, the earlier start brings its dimensions, the earlier entry and later
        /// exit pageview win).
        func absorb(_ o: Builder) throws(QueryError) {
            rowsRead += o.rowsRead
            let pageMap = o.pages.values.map { pages.code($0) }
            let attributeMaps = attributes.indices.map { k in o.attributeSpaces[k].values.map { attributeSpaces[k].code($0) } }
            let idMap = keepIDs ? o.ids.values.map { ids.code($0) } : []
            for (hash, position) in o.index {
                let j = Int(position)
                guard let existing = index[hash] else {
                    guard count < maxSessions else {
                        throw QueryError(kind: .budget, parameter: "query",
                                         message: "more than \(maxSessions) sessions; narrow the range or filter")
                    }
                    index[hash] = Int32(count)
                    visitor.append(o.visitor[j])
                    start.append(o.start[j])
                    end.append(o.end[j])
                    events.append(o.events[j])
                    pageviews.append(o.pageviews[j])
                    entryTime.append(o.entryTime[j])
                    entryPage.append(pageMap[Int(o.entryPage[j])])
                    exitTime.append(o.exitTime[j])
                    exitPage.append(pageMap[Int(o.exitPage[j])])
                    for k in 0..<attributes.count { attributeCodes[k].append(attributeMaps[k][Int(o.attributeCodes[k][j])]) }
                    conversions.append(o.conversions[j])
                    if keepIDs {
                        sessionID.append(idMap[Int(o.sessionID[j])])
                        visitorID.append(idMap[Int(o.visitorID[j])])
                    }
                    continue
                }
                let s = Int(existing)
                events[s] += o.events[j]
                pageviews[s] += o.pageviews[j]
                conversions[s] |= o.conversions[j]
                if o.start[j] < start[s] {
                    start[s] = o.start[j]
                    visitor[s] = o.visitor[j]
                    for k in 0..<attributes.count { attributeCodes[k][s] = attributeMaps[k][Int(o.attributeCodes[k][j])] }
                    if keepIDs { visitorID[s] = idMap[Int(o.visitorID[j])] }
                }
                end[s] = max(end[s], o.end[j])
                if o.entryTime[j] < entryTime[s] {
                    entryTime[s] = o.entryTime[j]
                    entryPage[s] = pageMap[Int(o.entryPage[j])]
                }
                if o.exitTime[j] > exitTime[s] {
                    exitTime[s] = o.exitTime[j]
                    exitPage[s] = pageMap[Int(o.exitPage[j])]
                }
            }
        }

        /// The value of dimension `d` for session `s` (attributes are looked up by position).
        func value(_ d: QueryDimension, _ s: Int) -> QueryValue {
            switch d {
            case .entryPage: return pages.values[Int(entryPage[s])]
            case .exitPage: return pages.values[Int(exitPage[s])]
            case .time(let bucket): return bucket.label(bucket.key(start[s], zone), zone)
            default:
                let k = attributes.firstIndex(of: d)!
                return attributeSpaces[k].values[Int(attributeCodes[k][s])]
            }
        }
    }

    // MARK: Session metrics

    struct Accumulator {
        var sessions = 0
        var events = 0
        var pageviews = 0
        var bounces = 0
        var withPageviews = 0
        var durationSum: Int64 = 0
        var durations: [Int64] = []
        var visitors = HyperLogLog()
        var exactVisitors: Set<UInt64> = []
        var conversions: [Int]
    }

    public static func run(_ q: Query, on snapshot: Snapshot, budget: QueryBudget = QueryBudget()) throws(QueryError)
        -> QueryResult
    {
        try validate(q)
        let deadline = QueryExecutor.Deadline(milliseconds: budget.milliseconds)
        var used = q.dimensions
        for d in q.filter?.dimensions ?? [] where !used.contains(d) { used.append(d) }
        let attributes = used.filter { !$0.isSession && !$0.isTime }
        var conversionTypes: [String] = []
        var needsMedian = false
        for m in q.metrics {
            if case .session(.conversions(let t)) = m, !conversionTypes.contains(t) { conversionTypes.append(t) }
            if case .session(.visitDurationMedian) = m { needsMedian = true }
        }
        guard conversionTypes.count <= 64 else { throw QueryError.invalid("metrics", "at most 64 conversions:<event_type> metrics") }
        let builder = Builder(attributes: attributes, conversionTypes: conversionTypes, zone: q.timeZone,
                              maxSessions: budget.maxGroups * 16, keepIDs: false)
        let from = max(q.from, q.rawFloor ?? .min)
        var stats = try builder.read(site: q.site, from: from, to: q.to, snapshot: snapshot, deadline: deadline)

        // Each session of the range: its dimension values, the filter, its group.
        let spaces = used.map { _ in ValueSpace() }
        let filter = q.filter.map { CompiledFilter($0, dimensions: used) }
        var groups: [GroupKey: Int] = [:]
        var accumulators: [Accumulator] = []
        var codes = used.map { _ in [UInt32](repeating: 0, count: 1) }
        let dims = q.dimensions.count
        for s in 0..<builder.count where builder.start[s] >= from && builder.start[s] < q.to {
            for (i, d) in used.enumerated() { codes[i][0] = spaces[i].code(builder.value(d, s)) }
            if let filter, !ExecutionPlan.evaluate(filter, row: 0, codes: codes, spaces: spaces) { continue }
            var key = GroupKey()
            for d in 0..<dims { key[d] = codes[d][0] }
            let g: Int
            if let existing = groups[key] {
                g = existing
            } else {
                guard groups.count < budget.maxGroups else {
                    throw QueryError(kind: .budget, parameter: "dimensions",
                                     message: "more than \(budget.maxGroups) groups; narrow the range, filter or drop a dimension")
                }
                g = accumulators.count
                groups[key] = g
                accumulators.append(Accumulator(conversions: Array(repeating: 0, count: conversionTypes.count)))
            }
            let duration = builder.end[s] - builder.start[s]
            accumulators[g].sessions += 1
            accumulators[g].events += Int(builder.events[s])
            let views = Int(builder.pageviews[s])
            accumulators[g].pageviews += views
            if views > 0 { accumulators[g].withPageviews += 1 }
            if views == 1 { accumulators[g].bounces += 1 }
            accumulators[g].durationSum += duration
            if needsMedian { accumulators[g].durations.append(duration) }
            if builder.visitor[s] != 0 {
                if q.exact { accumulators[g].exactVisitors.insert(builder.visitor[s]) } else {
                    accumulators[g].visitors.add(hash: builder.visitor[s])
                }
            }
            for k in 0..<conversionTypes.count where builder.conversions[s] & (1 << UInt64(k)) != 0 {
                accumulators[g].conversions[k] += 1
            }
        }
        func value(_ m: QueryMetric, _ a: Accumulator) -> QueryValue {
            func rounded(_ x: Double, _ places: Double) -> QueryValue { .double((x * places).rounded() / places) }
            switch m {
            case .sessions: return .int(Int64(a.sessions))
            case .events: return .int(Int64(a.events))
            case .pageviews: return .int(Int64(a.pageviews))
            case .uniqueVisitors: return .int(Int64(q.exact ? a.exactVisitors.count : a.visitors.count))
            case .session(.bounces): return .int(Int64(a.bounces))
            case .session(.bounceRate):
                return rounded(a.withPageviews == 0 ? 0 : Double(a.bounces) / Double(a.withPageviews) * 100, 100)
            case .session(.visitDuration):
                return rounded(a.sessions == 0 ? 0 : Double(a.durationSum) / Double(a.sessions) / 1000, 10)
            case .session(.visitDurationMedian):
                guard !a.durations.isEmpty else { return .double(0) }
                let d = a.durations.sorted()
                let m = d.count % 2 == 1 ? Double(d[d.count / 2]) : Double(d[d.count / 2 - 1] + d[d.count / 2]) / 2
                return rounded(m / 1000, 10)
            case .session(.viewsPerVisit):
                return rounded(a.sessions == 0 ? 0 : Double(a.pageviews) / Double(a.sessions), 100)
            case .session(.conversions(let t)): return .int(Int64(a.conversions[conversionTypes.firstIndex(of: t)!]))
            default: return .null  // refused by validate
            }
        }
        var rows: [[QueryValue]] = []
        for (key, g) in groups {
            var row: [QueryValue] = []
            for d in 0..<dims { row.append(spaces[d].values[Int(key[d])]) }
            for m in q.metrics { row.append(value(m, accumulators[g])) }
            rows.append(row)
        }
        let empty = Accumulator(conversions: Array(repeating: 0, count: conversionTypes.count))
        var result = try ExecutionPlan.finish(q, rows: rows, emptyMetrics: q.metrics.map { value($0, empty) },
                                              rowsScanned: builder.rowsRead)
        stats.rowsMatched = builder.rowsRead
        result.stats = stats
        return result
    }

    // MARK: Session list

    /// One session as listed by `GET /v1/sessions`.
    public struct Record: Sendable {
        public var sessionID: String
        public var visitorID: String
        public var start: Int64
        public var end: Int64
        public var events: Int
        public var pageviews: Int
        public var entryPage: String?
        public var exitPage: String?
        /// The listed dimensions of its first event, by name.
        public var dimensions: [(name: String, value: QueryValue)]
        public var bounced: Bool { pageviews == 1 }
    }

    public static let listedDimensions: [QueryDimension] = [
        .column(.deviceType), .column(.browser), .column(.os), .column(.countryCode), .column(.referrerDomain),
        .column(.source), .column(.utmSource), .column(.utmMedium), .column(.utmCampaign),
    ]

    /// The sessions that start in the query's range and pass its filter, newest first, after
    /// `query.offset`, at most `query.limit` (default 100), and how many there are in all.
    public static func list(_ q: Query, on snapshot: Snapshot, budget: QueryBudget = QueryBudget()) throws(QueryError)
        -> (sessions: [Record], total: Int, stats: ScanStats)
    {
        for d in q.filter?.dimensions ?? [] where !isSessionDimension(d) {
            throw QueryError.invalid("filters", "\(d.name) is a dimension of events, not of sessions")
        }
        let deadline = QueryExecutor.Deadline(milliseconds: budget.milliseconds)
        var used = listedDimensions
        for d in q.filter?.dimensions ?? [] where !used.contains(d) { used.append(d) }
        let builder = Builder(attributes: used.filter { !$0.isSession && !$0.isTime }, conversionTypes: [], zone: q.timeZone,
                              maxSessions: budget.maxGroups * 16, keepIDs: true)
        let from = max(q.from, q.rawFloor ?? .min)
        let stats = try builder.read(site: q.site, from: from, to: q.to, snapshot: snapshot, deadline: deadline)
        let spaces = used.map { _ in ValueSpace() }
        let filter = q.filter.map { CompiledFilter($0, dimensions: used) }
        var codes = used.map { _ in [UInt32](repeating: 0, count: 1) }
        var selected: [Int] = []
        for s in 0..<builder.count where builder.start[s] >= from && builder.start[s] < q.to {
            if let filter {
                for (i, d) in used.enumerated() { codes[i][0] = spaces[i].code(builder.value(d, s)) }
                if !ExecutionPlan.evaluate(filter, row: 0, codes: codes, spaces: spaces) { continue }
            }
            selected.append(s)
        }
        let ids = builder.ids.values
        func id(_ code: UInt32) -> String { ids[Int(code)] == .null ? "" : ids[Int(code)].description }
        selected.sort { a, b in
            builder.start[a] != builder.start[b] ? builder.start[a] > builder.start[b]
                : id(builder.sessionID[a]) > id(builder.sessionID[b])
        }
        let page = selected.dropFirst(q.offset).prefix(q.limit ?? 100)
        let sessions = page.map { s in
            func text(_ v: QueryValue) -> String? { v == .null ? nil : v.description }
            return Record(
                sessionID: id(builder.sessionID[s]), visitorID: id(builder.visitorID[s]), start: builder.start[s],
                end: builder.end[s], events: Int(builder.events[s]), pageviews: Int(builder.pageviews[s]),
                entryPage: text(builder.value(.entryPage, s)), exitPage: text(builder.value(.exitPage, s)),
                dimensions: listedDimensions.map { ($0.name, builder.value($0, s)) })
        }
        return (sessions, selected.count, stats)
    }
}
