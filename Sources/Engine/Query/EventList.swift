import Foundation

/// Where a page of an event list ends: the last row's occurred_at and event_id. The next page
/// holds the rows strictly older in (occurred_at, event_id) order.
public struct EventCursor: Sendable, Equatable {
    public var occurredAt: Int64
    public var eventID: String

    public init(occurredAt: Int64, eventID: String) {
        self.occurredAt = occurredAt
        self.eventID = eventID
    }

    /// The opaque form handed to clients: base64url of `<occurred_at ms>:<event_id>`.
    public var token: String {
        Data("\(occurredAt):\(eventID)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public init(token: String) throws(QueryError) {
        var b64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b64.count % 4 != 0 { b64 += "=" }
        guard let data = Data(base64Encoded: b64), let text = String(data: data, encoding: .utf8),
            let colon = text.firstIndex(of: ":"), let ms = Int64(text[..<colon]), (0..<(1 << 48)).contains(ms)
        else { throw QueryError.invalid("cursor", "'\(token)' is not a cursor this server handed out") }
        occurredAt = ms
        eventID = String(text[text.index(after: colon)...])
    }
}

/// A drill-down question: the raw events of one property matching a filter, newest first.
public struct EventListQuery: Sendable {
    public var site: String
    /// occurred_at in [from, to), ms UTC.
    public var from: Int64
    public var to: Int64
    /// For time-bucket conditions (`hour_of_day==9`).
    public var timeZone: QueryTimeZone
    public var filter: QueryFilter?
    /// The columns each event carries in the answer.
    public var columns: [EventColumn]
    public var limit: Int
    /// Continue after this row (the previous page's `next`).
    public var after: EventCursor?
    /// Raw events older than this (the property's raw retention) are not listed.
    public var rawFloor: Int64?

    public init(site: String, from: Int64, to: Int64, timeZone: QueryTimeZone = .utc, filter: QueryFilter? = nil,
                columns: [EventColumn] = EventColumn.allCases, limit: Int = 100, after: EventCursor? = nil) {
        self.site = site
        self.from = from
        self.to = to
        self.timeZone = timeZone
        self.filter = filter
        self.columns = columns
        self.limit = limit
        self.after = after
    }

    public static let maxLimit = 1_000
}

/// One page of events, newest first.
public struct EventPage: Sendable {
    /// The rows, carrying the query's columns (plus occurred_at and event_id).
    public var events: EventBatch
    /// The cursor of the next page; nil on the last page.
    public var next: EventCursor?
    public var stats: ScanStats
}

/// Lists raw events newest first, in two passes. The first reads only occurred_at and the
/// columns the filter needs, keeping the newest `limit + 1` candidate rows: parts are visited
/// newest first and a part or granule whose newest row is older than the current `limit + 1`-th
/// candidate is skipped unread, so the first page of a busy property reads a few granules,
/// and a visitor's or session's history is found through the bloom filters. The second pass
/// reads the answer's columns of the granules that hold the winners only.
public enum EventList {
    public static func run(_ q: EventListQuery, on snapshot: Snapshot, budget: QueryBudget = QueryBudget())
        throws(QueryError) -> EventPage
    {
        guard (1...EventListQuery.maxLimit).contains(q.limit) else {
            throw QueryError.invalid("limit", "must be 1–\(EventListQuery.maxLimit), not \(q.limit)")
        }
        if let d = q.filter?.dimensions.first(where: \.isSession) {
            throw QueryError.invalid("filters", "\(d.name) is a dimension of sessions; list them with GET /v1/sessions")
        }
        var from = q.from
        var to = q.to
        if let floor = q.rawFloor { from = max(from, floor) }
        if let after = q.after { to = min(to, after.occurredAt &+ 1) }
        var output = EventBatch(columns: Array(Set(q.columns + [.occurredAt, .eventID])))
        guard from < to else { return EventPage(events: output, next: nil, stats: ScanStats()) }
        do {
            return try list(q, from: from, to: to, snapshot: snapshot, budget: budget, output: &output)
        } catch let e as QueryError {
            throw e
        } catch {
            throw QueryError.storage("reading the data", error)
        }
    }

    /// A row that may be on the page: where it is and when it happened.
    struct Candidate {
        var time: Int64
        /// Index into the snapshot's parts, then into its buffered batches.
        var source: Int32
        var granule: Int32
        var row: Int32
    }

    static func list(_ q: EventListQuery, from: Int64, to: Int64, snapshot: Snapshot, budget: QueryBudget,
                     output: inout EventBatch) throws -> EventPage {
        let deadline = QueryExecutor.Deadline(milliseconds: budget.milliseconds)
        let rowFilter = q.filter.map { RowFilter($0, zone: q.timeZone) }
        var firstColumns: Set<EventColumn> = [.occurredAt]
        if let rowFilter { firstColumns.formUnion(rowFilter.columns) }
        let pushed = q.filter?.pushedDown ?? []
        let plan = ScanPlan(ScanRequest(site: q.site, from: from, to: to, filters: pushed, columns: firstColumns.sorted()))
        // A filter of `is` conditions on ids only (a visitor's or a session's history) is decided
        // in parts on the ids' binary form (`Part.identifierRows`), or their hashes where stored
        // as text: decoding and comparing the text of a million visitor ids took 300 ms.
        let idColumns: Set<EventColumn> = [.visitorID, .sessionID, .eventID, .userIDHash]
        let conjuncts: [QueryFilter]
        if case .and(let fs)? = q.filter { conjuncts = fs } else { conjuncts = q.filter.map { [$0] } ?? [] }
        let byHash = !pushed.isEmpty && pushed.count == conjuncts.count && pushed.allSatisfy { idColumns.contains($0.column) }
        let wanted = pushed.map { f in
            let texts = f.values.compactMap { $0.map { Array($0.utf8) } }
            return (column: f.column, texts: texts, hashes: HashSet(texts.map { TallyHash.hash($0) }))
        }
        let cursorTime = q.after?.occurredAt
        let keep = q.limit + 1
        var stats = ScanStats()
        var candidates: [Candidate] = []
        // Rows at the cursor's instant: some are before the cursor, some after (decided by
        // event_id in the second pass), so they never count towards `keep`.
        var atCursor: [Candidate] = []
        var threshold = Int64.min
        func offer(_ b: EventBatch, rows: [Int32], source: Int, granule: Int) {
            let matches = rowFilter?.matches(b)
            let times = b[int: .occurredAt].values
            for r in rows where matches?[Int(r)] ?? true {
                let t = times[Int(r)]
                guard t >= threshold else { continue }
                let c = Candidate(time: t, source: Int32(source), granule: Int32(granule), row: r)
                if t == cursorTime { atCursor.append(c) } else { candidates.append(c) }
            }
            if candidates.count >= keep * 4 { trim() }
        }
        func trim() {
            guard candidates.count >= keep else { return }
            candidates.sort { $0.time > $1.time }
            threshold = candidates[keep - 1].time
            // Ties with the last kept row stay: the second pass orders them by event_id.
            var end = keep
            while end < candidates.count, candidates[end].time == threshold { end += 1 }
            candidates.removeSubrange(end...)
        }

        for (i, batch) in snapshot.buffered.enumerated() {
            stats.bufferedRowsScanned += batch.count
            let rows = plan.matching(batch)
            if !rows.isEmpty { offer(batch, rows: rows, source: snapshot.parts.count + i, granule: 0) }
        }
        let order = snapshot.parts.indices.sorted { snapshot.parts[$0].footer.maxTime > snapshot.parts[$1].footer.maxTime }
        for p in order {
            let part = snapshot.parts[p]
            trim()
            if candidates.count >= keep, part.footer.maxTime < threshold { break }
            stats.parts += 1
            guard let granules = try plan.granules(of: part, stats: &stats) else {
                stats.partsSkipped += 1
                continue
            }
            var dictionaries: [EventColumn: StringColumn] = [:]
            let (siteCode, siteFound) = Part.lookup(q.site, in: part.sites)
            // Newest granules first: a part sorted by site, type and day has granules of a few
            // days each, so once the page is full the older ones are skipped unread.
            for g in granules.sorted(by: { part.footer.granules[$0].maxTime > part.footer.granules[$1].maxTime }) {
                trim()
                if candidates.count >= keep, part.footer.granules[g].maxTime < threshold {
                    stats.granulesSkippedByIndex += 1
                    continue
                }
                try deadline.check()
                stats.granulesRead += 1
                if byHash {
                    guard siteFound, let (selected, times) = try part.rows(granule: g, site: siteCode, from: from, to: to) else { continue }
                    var rows = selected ?? (0..<Int32(times.count)).map { $0 }
                    for (column, texts, hashes) in wanted where !rows.isEmpty {
                        // Binary ids compared as bytes; ids stored as text by their hashes.
                        if let exact = try part.identifierRows(column, granule: g, selected: rows, occurred: times, wanted: texts) {
                            rows = exact
                            continue
                        }
                        let h = try part.identifierHashes(column, granule: g, selected: rows, occurred: times, dictionaries: &dictionaries)
                        rows = zip(rows, h).compactMap { hashes.contains($0.1) ? $0.0 : nil }
                    }
                    stats.rowsMatched += rows.count
                    for r in rows where times[Int(r)] >= threshold {
                        let c = Candidate(time: times[Int(r)], source: Int32(p), granule: Int32(g), row: r)
                        if c.time == cursorTime { atCursor.append(c) } else { candidates.append(c) }
                    }
                    continue
                }
                let b = try part.readBatch(plan.readColumns, granule: g, dictionaries: &dictionaries)
                let rows = plan.matching(b)
                stats.rowsMatched += rows.count
                if !rows.isEmpty { offer(b, rows: rows, source: p, granule: g) }
            }
        }
        trim()

        // Second pass: the winners' granules, all answer columns, ordered by (time, event_id).
        var bySource: [Int64: [Candidate]] = [:]
        for c in candidates + atCursor { bySource[Int64(c.source) << 32 | Int64(c.granule), default: []].append(c) }
        var rows: [(time: Int64, id: [UInt8], batch: Int, row: Int)] = []
        var batches: [EventBatch] = []
        let columns = output.columns
        // A part's dictionaries are read once for all its granules (page_url's and user_agent's
        // are megabytes: reading them per granule cost 10 s for one visitor's 78 events).
        var dictionaries: [Int: [EventColumn: StringColumn]] = [:]
        for (_, group) in bySource.sorted(by: { $0.key < $1.key }) {
            let s = Int(group[0].source)
            let b: EventBatch
            // Row of the group's candidates in `b`: a part's granule is read for those rows only.
            var position: [Int32: Int] = [:]
            if s >= snapshot.parts.count {
                b = snapshot.buffered[s - snapshot.parts.count]
            } else {
                let wanted = Array(Set(group.map(\.row))).sorted()
                for (i, r) in wanted.enumerated() { position[r] = i }
                b = try snapshot.parts[s].readBatch(columns, granule: Int(group[0].granule), rows: wanted,
                                                    dictionaries: &dictionaries[s, default: [:]])
            }
            let ids = b[string: .eventID]
            for c in group {
                let r = position[c.row] ?? Int(c.row)
                rows.append((c.time, ids.withValue(r) { Array($0) }, batches.count, r))
            }
            batches.append(b)
        }
        if let after = q.after {
            let cursorID = Array(after.eventID.utf8)
            rows.removeAll { $0.time == after.occurredAt && !lessBytes($0.id, cursorID) }
        }
        rows.sort { $0.time != $1.time ? $0.time > $1.time : lessBytes($1.id, $0.id) }
        let page = rows.prefix(q.limit)
        for r in page { output.append(from: batches[r.batch], row: r.row) }
        var next: EventCursor?
        if rows.count > q.limit, let last = page.last {
            next = EventCursor(occurredAt: last.time, eventID: String(decoding: last.id, as: UTF8.self))
        }
        return EventPage(events: output, next: next, stats: stats)
    }

    static func lessBytes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.withUnsafeBytes { x in b.withUnsafeBytes { y in ByteOrder.compare(x, y) < 0 } }
    }
}
