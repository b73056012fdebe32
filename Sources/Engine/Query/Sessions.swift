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

    /// The longest gap between two events of one session that session questions and merges
    /// assume while they combine partial summaries in bounded memory: a session that ended
    /// more than this before the first start of every block not yet read is whole. The
    /// tracker and seed 000 rotate session ids after 30 minutes without events; an hour leaves
    /// room for clocks and queued events. Pieces of one session_id further apart than this
    /// (partial summaries, of different parts or written apart by a merge) may count as
    /// separate sessions. Memory follows the sessions of this long, not of a day: with a day, a
    /// merge under sustained ingest into one property held ~2 days of its sessions and the
    /// 10-minute run at 50k events/s peaked at 512–554 MiB (jemalloc heap profile: 315 MB in one
    /// merge's session combine; BENCHMARKS.md, fifteenth session).
    public static let sessionGap: Int64 = 3_600_000

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
        let conversionTypes: [String]
        let zone: QueryTimeZone
        let maxSessions: Int
        /// With ids: the session and visitor ids' text, for the session list.
        let keepIDs: Bool

        /// Codes of page_path and of the first-event dimensions; shared by a builder made with
        /// `sharingValuesOf`, so the two builders' codes mean the same values.
        let pages: ValueSpace
        let attributeSpaces: [ValueSpace]
        let ids = ValueSpace()
        var index = HashIndex()
        /// Each session's key, in order of arrival.
        var sessionHash: [UInt64] = []
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
        /// Whether visitor ids are read (unique visitors, the session list); without them every
        /// session's visitor hash is 0.
        var needsVisitors = true

        init(attributes: [QueryDimension], conversionTypes: [String], zone: QueryTimeZone, maxSessions: Int, keepIDs: Bool,
             sharingValuesOf shared: Builder? = nil) {
            self.attributes = attributes
            pages = shared?.pages ?? ValueSpace()
            attributeSpaces = shared?.attributeSpaces ?? attributes.map { _ in ValueSpace() }
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

        /// Decoded rows (the in-memory buffer, and every read of the session list, which needs the ids' text).
        func add(_ b: EventBatch) throws(QueryError) {
            let n = b.count
            let sessions = b[string: .sessionID]
            let visitors = b[string: .visitorID]
            let types = b[string: .eventType]
            let paths = b[string: .pagePath]
            let codes = attributes.enumerated().map { i, d in
                ExecutionPlan.codes(of: d, in: b, space: attributeSpaces[i], zone: zone)
            }
            var rows = Rows(count: n)
            rows.times = b[int: .occurredAt].values
            for r in 0..<n {
                rows.sessions[r] = sessions.withValue(r) { $0.isEmpty ? 0 : TallyHash.hash($0) }
                if needsVisitors { rows.visitors[r] = visitors.withValue(r) { $0.isEmpty ? 0 : TallyHash.hash($0) } }
                types.withValue(r) { t in
                    rows.pageview[r] = QueryMetric.pageviewTypes.contains { p in Self.equal(t, p) }
                    for (k, c) in conversionTypes.enumerated() where Self.equal(t, c) { rows.conversions[r] |= 1 << UInt64(k) }
                }
                rows.pages[r] = paths.withValue(r) { pages.code(bytes: $0) }
            }
            rows.attributes = codes
            try fold(rows, ids: keepIDs ? (sessions, visitors) : nil)
        }

        /// One granule's or batch's rows, as the session fold needs them.
        struct Rows {
            var times: [Int64]
            /// TallyHash of session_id and visitor_id (0: none).
            var sessions: [UInt64]
            var visitors: [UInt64]
            var pageview: [Bool]
            var conversions: [UInt64]
            /// page_path as a code of `pages`.
            var pages: [UInt32]
            /// [attribute][row], codes of `attributeSpaces`.
            var attributes: [[UInt32]] = []

            init(count n: Int) {
                times = []
                sessions = Array(repeating: 0, count: n)
                visitors = Array(repeating: 0, count: n)
                pageview = Array(repeating: false, count: n)
                conversions = Array(repeating: 0, count: n)
                pages = Array(repeating: 0, count: n)
            }
        }

        func fold(_ rows: Rows, ids: (sessions: StringColumn, visitors: StringColumn)?) throws(QueryError) {
            let n = rows.times.count
            rowsRead += n
            let noPage = pages.code(.null)
            // The builder's arrays are worked on as locals: as stored properties of a class each
            // access was an exclusivity check (10 % of the time).
            var index = self.index, visitor = self.visitor, start = self.start, end = self.end
            var events = self.events, pageviews = self.pageviews, entryTime = self.entryTime
            var entryPage = self.entryPage, exitTime = self.exitTime, exitPage = self.exitPage
            var attributeCodes = self.attributeCodes, conversions = self.conversions
            self.index = HashIndex(capacity: 0)
            self.visitor = []; self.start = []; self.end = []; self.events = []; self.pageviews = []
            self.entryTime = []; self.entryPage = []; self.exitTime = []; self.exitPage = []
            self.attributeCodes = []; self.conversions = []
            defer {
                self.index = index; self.visitor = visitor; self.start = start; self.end = end
                self.events = events; self.pageviews = pageviews; self.entryTime = entryTime
                self.entryPage = entryPage; self.exitTime = exitTime; self.exitPage = exitPage
                self.attributeCodes = attributeCodes; self.conversions = conversions
            }
            let attributeCount = attributes.count
            for r in 0..<n {
                let hash = rows.sessions[r]
                if hash == 0 { continue }
                let t = rows.times[r]
                let (position, inserted) = index.findOrInsert(hash, Int32(start.count))
                let s = Int(position)
                if inserted {
                    guard s < maxSessions else {
                        throw QueryError(kind: .budget, parameter: "query",
                                         message: "more than \(maxSessions) sessions; narrow the range or filter")
                    }
                    sessionHash.append(hash)
                    visitor.append(rows.visitors[r])
                    start.append(t)
                    end.append(t)
                    events.append(0)
                    pageviews.append(0)
                    entryTime.append(.max)
                    entryPage.append(noPage)
                    exitTime.append(.min)
                    exitPage.append(noPage)
                    for k in 0..<attributeCount { attributeCodes[k].append(rows.attributes[k][r]) }
                    conversions.append(0)
                    if let ids {
                        sessionID.append(ids.sessions.withValue(r) { self.ids.code(bytes: $0) })
                        visitorID.append(ids.visitors.withValue(r) { self.ids.code(bytes: $0) })
                    }
                }
                events[s] += 1
                conversions[s] |= rows.conversions[r]
                if t < start[s] || (t == start[s] && !inserted
                    && firstBefore(rows.visitors[r], { rows.attributes[$0][r] }, visitor[s], { attributeCodes[$0][s] })) {
                    start[s] = t
                    for k in 0..<attributeCount { attributeCodes[k][s] = rows.attributes[k][r] }
                    if let ids { visitorID[s] = ids.visitors.withValue(r) { self.ids.code(bytes: $0) } }
                    visitor[s] = rows.visitors[r]
                }
                if t > end[s] { end[s] = t }
                if rows.pageview[r] {
                    pageviews[s] += 1
                    if t < entryTime[s] || (t == entryTime[s] && pageBefore(rows.pages[r], entryPage[s])) {
                        entryTime[s] = t
                        entryPage[s] = rows.pages[r]
                    }
                    if t > exitTime[s] || (t == exitTime[s] && pageBefore(exitPage[s], rows.pages[r])) {
                        exitTime[s] = t
                        exitPage[s] = rows.pages[r]
                    }
                }
            }
        }

        /// The rows of `site` in [from, to) of a part's granules, straight from its blocks: ids
        /// hashed from their binary form, dictionary columns as codes translated once per value.
        func add(part: Part, granules: [Int], site: String, from: Int64, to: Int64, deadline: QueryExecutor.Deadline,
                 dictionaries known: [EventColumn: StringColumn] = [:])
            throws -> Void
        {
            let (siteCode, found) = Part.lookup(site, in: part.sites)
            guard found else { return }
            var dictionaries = known
            let typeNames = (0..<part.eventTypes.count).map { part.eventTypes.string(at: $0) ?? "" }
            let typePageview = typeNames.map { QueryMetric.pageviewTypes.contains($0) } + [false]
            let typeBits = typeNames.map { name in
                conversionTypes.enumerated().reduce(UInt64(0)) { $0 | ($1.element == name ? 1 << UInt64($1.offset) : 0) }
            } + [0]
            var translators: [EventColumn: CodeTranslator] = [:]
            func translated(_ c: EventColumn, _ space: ValueSpace, granule g: Int, selected: [Int32]?) throws -> [UInt32]? {
                guard let raw = try part.codesWithNulls(c, granule: g) else { return nil }
                if translators[c] == nil { translators[c] = CodeTranslator(try part.queryDictionary(c, cache: &dictionaries), space) }
                return translators[c]!.codes(pick(raw, selected))
            }
            for g in granules {
                try deadline.check()
                guard let (selected, allTimes) = try part.rows(granule: g, site: siteCode, from: from, to: to) else { continue }
                let m = selected?.count ?? allTimes.count
                var rows = Rows(count: m)
                rows.times = pick(allTimes, selected)
                rows.sessions = try part.identifierHashes(.sessionID, granule: g, selected: selected, occurred: allTimes,
                                                          dictionaries: &dictionaries)
                if needsVisitors {
                    rows.visitors = try part.identifierHashes(.visitorID, granule: g, selected: selected, occurred: allTimes,
                                                              dictionaries: &dictionaries)
                }
                guard let types = try part.codesWithNulls(.eventType, granule: g) else {
                    throw TallyError(.corruption, "part \(part.name): event_type granule \(g) is not dictionary-coded")
                }
                let nullType = typeNames.count
                for k in 0..<m {
                    let raw = types[Int(selected?[k] ?? Int32(k))]
                    let t = raw == .max ? nullType : Int(raw)
                    rows.pageview[k] = typePageview[t]
                    rows.conversions[k] = typeBits[t]
                }
                // Decoded only where a column is not dictionary-coded in this granule.
                var decoded: EventBatch?
                func batch() throws -> EventBatch {
                    if let decoded { return decoded }
                    var columns: Set<EventColumn> = [.pagePath]
                    for a in attributes { columns.formUnion(a.storedColumns) }
                    let b = try part.readBatch(columns.sorted(), granule: g, dictionaries: &dictionaries)
                    let picked = selected.map { b.gather($0) } ?? b
                    decoded = picked
                    return picked
                }
                if let codes = try translated(.pagePath, pages, granule: g, selected: selected) {
                    rows.pages = codes
                } else {
                    let paths = try batch()[string: .pagePath]
                    rows.pages = (0..<m).map { r in paths.withValue(r) { pages.code(bytes: $0) } }
                }
                rows.attributes = try attributes.enumerated().map { i, d in
                    if case .column(let c) = d, let codes = try translated(c, attributeSpaces[i], granule: g, selected: selected) {
                        return codes
                    }
                    return ExecutionPlan.codes(of: d, in: try batch(), space: attributeSpaces[i], zone: zone)
                }
                try fold(rows, ids: nil)
            }
        }

        // Events of one session at the same millisecond: which is first (its dimensions) and
        // which pageview is the entry or exit is decided by value, never by which part or
        // worker was read first: the smaller visitor hash then dimension values come first,
        // the smaller page is the entry and the larger the exit.

        func pageBefore(_ a: UInt32, _ b: UInt32) -> Bool {
            a != b && pages.value(Int(a)) < pages.value(Int(b))
        }

        func firstBefore(_ visitorA: UInt64, _ a: (Int) -> UInt32, _ visitorB: UInt64, _ b: (Int) -> UInt32) -> Bool {
            if visitorA != visitorB { return visitorA < visitorB }
            for k in 0..<attributes.count where a(k) != b(k) {
                return attributeSpaces[k].value(Int(a(k))) < attributeSpaces[k].value(Int(b(k)))
            }
            return false
        }

        static func equal(_ bytes: UnsafeRawBufferPointer, _ s: String) -> Bool {
            var s = s
            return s.withUTF8 { ByteOrder.equal(bytes, UnsafeRawBufferPointer($0)) }
        }

        /// An empty builder asking the same question, whose codes mean the same values as this
        /// one's (it shares its value spaces): the window of summarized sessions, a merge's
        /// sessions to write.
        func sharingSibling() -> Builder {
            let b = Builder(attributes: attributes, conversionTypes: conversionTypes, zone: zone, maxSessions: maxSessions,
                            keepIDs: false, sharingValuesOf: self)
            b.needsVisitors = needsVisitors
            return b
        }

        /// An empty builder asking the same question (for another scan worker).
        func sibling() -> Builder {
            let b = Builder(attributes: attributes, conversionTypes: conversionTypes, zone: zone, maxSessions: maxSessions,
                            keepIDs: keepIDs)
            b.needsVisitors = needsVisitors
            return b
        }

        /// Reads the events around [from, to) of `site` from the snapshot (parts and buffer) on
        /// both cores, ids' text included (the session list): each worker assembles the sessions
        /// of its parts, then they are combined, all held at once.
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
                for w in workers where w !== self {
                    prepareToAbsorb(w)
                    try absorb(w)
                }
                return stats
            } catch let e as QueryError {
                throw e
            } catch {
                throw QueryError.storage("reading the data", error)
            }
        }

        /// Every session of `site` around [from, to) (parts and buffer), each handed to `body`
        /// once, for questions without the ids' text — without holding them all at once.
        ///
        /// First, on both cores, the parts without usable session summaries (and the buffer) are
        /// read row by row into this builder, and the summaries of the others are checked
        /// (a damaged block: that part is read by rows instead). Then the summary blocks of all
        /// those parts are decoded in order of their first start, one at a time, into a window
        /// builder. Once the window holds `windowSessions` (then twice what it kept), a session
        /// that ended more than `sessionGap` before the first start of every block not yet read
        /// has all its partial summaries in the window (no gap between its events is longer): it
        /// is combined with its rows here, if any, handed over and dropped — unless those rows
        /// end later, and could bridge it to a piece still to come: it stays until they ended
        /// before the cutoff too. A session whose pieces lie further apart may be handed over
        /// once per piece (its rows go with the first, and hold it until they end). Holding
        /// every session of the range cost ~150 bytes each (817k sessions of a 7-day question:
        /// 185 MB of its 229 MB peak; BENCHMARKS.md, fourteenth session).
        ///
        /// `maxSessions` bounds the rows' sessions and the window's each.
        func forEachSession(site: String, from: Int64, to: Int64, snapshot: Snapshot, deadline: QueryExecutor.Deadline,
                            window windowSessions: Int, _ body: (Builder, Int) throws(QueryError) -> Void) throws(QueryError) -> ScanStats
        {
            let request = ScanRequest(site: site, from: from - sessionSpan, to: to + sessionSpan, columns: columns)
            let from = request.from!
            let to = request.to!
            let plan = ScanPlan(request)
            let builders = (0..<2).map { $0 == 0 ? self : sibling() }
            let workerStats = (0..<2).map { _ in ScanWorkerBox(ScanStats()) }
            let summarized = (0..<2).map { _ in ScanWorkerBox([(SessionSummaryFile, [SessionSummaryFile.Chunk])]()) }
            let needsTypes = !conversionTypes.isEmpty
            do {
                try snapshot.forEachPartInParallel(workers: 2) { i, part in
                    if let summaries = part.sessionSummaries, !needsTypes || summaries.hasTypes {
                        guard part.footer.maxTime >= from && part.footer.minTime < to else {
                            workerStats[i].state.parts += 1
                            workerStats[i].state.partsSkipped += 1
                            return
                        }
                        let chunks = summaries.chunks.filter { $0.site == site && $0.minStart < to && $0.maxEnd >= from }
                        // Summaries are derived data: a damaged block means the part is read raw.
                        // Checked here, read again (not kept) when the block's turn comes.
                        if chunks.allSatisfy({ (try? summaries.readChecked($0)) != nil }) {
                            workerStats[i].state.parts += 1
                            if !chunks.isEmpty { summarized[i].state.append((summaries, chunks)) }
                            return
                        }
                    }
                    workerStats[i].state.parts += 1
                    guard let granules = try plan.granules(of: part, stats: &workerStats[i].state) else {
                        workerStats[i].state.partsSkipped += 1
                        return
                    }
                    workerStats[i].state.granulesRead += granules.count
                    try builders[i].add(part: part, granules: granules, site: site, from: from, to: to, deadline: deadline)
                }
            } catch let e as QueryError {
                throw e
            } catch {
                throw QueryError.storage("reading the data", error)
            }
            var stats = ScanStats()
            for w in workerStats { stats.add(w.state) }
            for batch in snapshot.buffered {
                stats.bufferedRowsScanned += batch.count
                let rows = plan.matching(batch)
                if !rows.isEmpty { try add(plan.project(batch, rows)) }
            }
            for b in builders.dropFirst() {
                prepareToAbsorb(b)
                try absorb(b)
            }

            // The summary blocks, in order of their first start.
            let window = sharingSibling()
            // All blocks of all parts, sorted by first start (a merged part's need not be in order).
            var blocks: [(SessionSummaryFile, SessionSummaryFile.Chunk)] = []
            for (summaries, chunks) in summarized.flatMap(\.state) {
                for c in chunks { blocks.append((summaries, c)) }
            }
            blocks.sort { $0.1.minStart < $1.1.minStart }
            let decoded = SummaryPrefetch(blocks, ahead: QueryCores.available >= 2 && blocks.count >= 2 ? 1 : 0)
            defer { decoded.stop() }
            var combined = [Bool](repeating: false, count: count)
            var evictAt = windowSessions
            stats.sessionsHeld = count
            for i in blocks.indices {
                try deadline.check()
                do {
                    try window.absorb(try decoded.take(i).get(), from: from, to: to)
                } catch let e as QueryError {
                    throw e
                } catch {
                    throw QueryError.storage("reading the data", error)
                }
                stats.sessionSummariesRead += blocks[i].1.sessions
                stats.sessionsHeld = max(stats.sessionsHeld, count + window.count)
                // Every block not read yet starts at or after the next one's first start.
                if window.count >= evictAt && i + 1 < blocks.count {
                    try window.evict(endingBefore: blocks[i + 1].1.minStart - sessionGap, rows: self,
                                     combined: &combined, body)
                    evictAt = max(windowSessions, 2 * window.count)
                }
            }
            try window.evict(endingBefore: .max, rows: self, combined: &combined, body)
            for s in 0..<count where !combined[s] { try body(self, s) }
            stats.rowsMatched = rowsRead
            return stats
        }

        /// Hands every session that ended before `cutoff` to `body` — combined first with the
        /// same session in `rows` (the sessions read from rows, whose values this builder
        /// shares) unless an earlier piece of it took those (`combined`) — and drops it. With
        /// `cutoff` .max that is every session (the builder is then dropped, not emptied). A
        /// session whose rows end at or after `cutoff` stays: they can bridge it to a piece not
        /// read yet (a summary ending at 10:00, buffered rows at 10:40, a summary from 11:20).
        func evict(endingBefore cutoff: Int64, rows o: Builder, combined: inout [Bool],
                   _ body: (Builder, Int) throws(QueryError) -> Void) throws(QueryError) {
            let n = count
            var evicted = [Bool](repeating: false, count: cutoff == .max ? 0 : n)
            var any = false
            for s in 0..<n where end[s] < cutoff {
                if let j = o.index.find(sessionHash[s]).map(Int.init), !combined[j] {
                    if o.end[j] >= cutoff { continue }
                    combine(s, with: o, j)
                    combined[j] = true
                }
                try body(self, s)
                if cutoff != .max { evicted[s] = true }
                any = true
            }
            guard any && cutoff != .max else { return }
            compact(dropping: evicted)
        }

        /// Moves every session that ended before `cutoff` to `out` (a builder sharing this
        /// one's values, collecting sessions to write), in this builder's order; `evict` for a
        /// merge, without a call per session (the merge of 817k sessions spent ~0.8 s more with
        /// one).
        func move(endingBefore cutoff: Int64, to out: Builder) {
            let n = count
            var evicted = [Bool](repeating: false, count: n)
            var picked: [Int] = []
            for s in 0..<n where end[s] < cutoff {
                evicted[s] = true
                picked.append(s)
            }
            guard !picked.isEmpty else { return }
            func take<T>(_ from: [T], _ to: inout [T]) {
                for s in picked { to.append(from[s]) }
            }
            take(sessionHash, &out.sessionHash); take(visitor, &out.visitor); take(start, &out.start); take(end, &out.end)
            take(events, &out.events); take(pageviews, &out.pageviews); take(entryTime, &out.entryTime)
            take(entryPage, &out.entryPage); take(exitTime, &out.exitTime); take(exitPage, &out.exitPage)
            take(conversions, &out.conversions)
            for k in attributeCodes.indices { take(attributeCodes[k], &out.attributeCodes[k]) }
            if picked.count == n {
                index = HashIndex(capacity: 0)
                sessionHash = []; visitor = []; start = []; end = []; events = []; pageviews = []; entryTime = []
                entryPage = []; exitTime = []; exitPage = []; conversions = []
                for k in attributeCodes.indices { attributeCodes[k] = [] }
            } else {
                compact(dropping: evicted)
            }
        }

        /// Drops the sessions flagged in `dropped` and indexes the others again.
        func compact(dropping dropped: [Bool]) {
            let n = count
            // Compacted as locals, as in `fold`.
            var sessionHash = self.sessionHash, visitor = self.visitor, start = self.start, end = self.end
            var events = self.events, pageviews = self.pageviews, entryTime = self.entryTime, entryPage = self.entryPage
            var exitTime = self.exitTime, exitPage = self.exitPage, conversions = self.conversions
            var attributeCodes = self.attributeCodes
            self.sessionHash = []; self.visitor = []; self.start = []; self.end = []; self.events = []; self.pageviews = []
            self.entryTime = []; self.entryPage = []; self.exitTime = []; self.exitPage = []; self.conversions = []
            self.attributeCodes = []
            var kept = 0
            for s in 0..<n where !dropped[s] {
                sessionHash[kept] = sessionHash[s]; visitor[kept] = visitor[s]; start[kept] = start[s]
                end[kept] = end[s]; events[kept] = events[s]; pageviews[kept] = pageviews[s]
                entryTime[kept] = entryTime[s]; entryPage[kept] = entryPage[s]; exitTime[kept] = exitTime[s]
                exitPage[kept] = exitPage[s]; conversions[kept] = conversions[s]
                for k in attributeCodes.indices { attributeCodes[k][kept] = attributeCodes[k][s] }
                kept += 1
            }
            for k in attributeCodes.indices { attributeCodes[k].removeLast(n - kept) }
            sessionHash.removeLast(n - kept); visitor.removeLast(n - kept); start.removeLast(n - kept)
            end.removeLast(n - kept); events.removeLast(n - kept); pageviews.removeLast(n - kept)
            entryTime.removeLast(n - kept); entryPage.removeLast(n - kept); exitTime.removeLast(n - kept)
            exitPage.removeLast(n - kept); conversions.removeLast(n - kept)
            var index = HashIndex(capacity: 2 * kept)
            for s in 0..<kept { _ = index.findOrInsert(sessionHash[s], Int32(s)) }
            self.index = index; self.sessionHash = sessionHash; self.visitor = visitor; self.start = start; self.end = end
            self.events = events; self.pageviews = pageviews; self.entryTime = entryTime; self.entryPage = entryPage
            self.exitTime = exitTime; self.exitPage = exitPage; self.conversions = conversions
            self.attributeCodes = attributeCodes
        }

        /// Appends session `j` of `o`, a builder sharing this one's values, as a new session
        /// (no hash index: for a builder that only collects sessions to write).
        func append(_ j: Int, of o: Builder) {
            sessionHash.append(o.sessionHash[j]); visitor.append(o.visitor[j]); start.append(o.start[j])
            end.append(o.end[j]); events.append(o.events[j]); pageviews.append(o.pageviews[j])
            entryTime.append(o.entryTime[j]); entryPage.append(o.entryPage[j]); exitTime.append(o.exitTime[j])
            exitPage.append(o.exitPage[j]); conversions.append(o.conversions[j])
            for k in attributeCodes.indices { attributeCodes[k].append(o.attributeCodes[k][j]) }
        }

        /// Session `s` and session `j` of `o`, a builder sharing this one's values, are one
        /// session: `s` becomes their combination (as `absorb` combines two builders' sessions).
        func combine(_ s: Int, with o: Builder, _ j: Int) {
            events[s] += o.events[j]
            pageviews[s] += o.pageviews[j]
            conversions[s] |= o.conversions[j]
            if o.start[j] < start[s] || (o.start[j] == start[s] && firstBefore(
                o.visitor[j], { o.attributeCodes[$0][j] }, visitor[s], { attributeCodes[$0][s] })) {
                start[s] = o.start[j]
                visitor[s] = o.visitor[j]
                for k in attributeCodes.indices { attributeCodes[k][s] = o.attributeCodes[k][j] }
            }
            end[s] = max(end[s], o.end[j])
            if o.entryTime[j] < entryTime[s] || (o.entryTime[j] == entryTime[s] && pageBefore(o.entryPage[j], entryPage[s])) {
                entryTime[s] = o.entryTime[j]
                entryPage[s] = o.entryPage[j]
            }
            if o.exitTime[j] > exitTime[s] || (o.exitTime[j] == exitTime[s] && pageBefore(exitPage[s], o.exitPage[j])) {
                exitTime[s] = o.exitTime[j]
                exitPage[s] = o.exitPage[j]
            }
        }

        /// Before `o` (the other worker's builder) is absorbed whole: its hash index is freed
        /// (absorbing reads its arrays only), and room for its sessions beside these is made
        /// once and exactly. Left to grow by doubling, the arrays of 817k sessions held up to
        /// twice their size while the other worker's were still alive: 94 of 201 MB of a query's
        /// peak heap, and the two indexes 50 MB more (heaptrack, `visits,bounce_rate,
        /// visit_duration` over 4M events of one site; BENCHMARKS.md, thirteenth session).
        func prepareToAbsorb(_ o: Builder) {
            o.index = HashIndex(capacity: 0)
            let total = count + o.count
            index.reserve(total)
            sessionHash.reserveCapacity(total); visitor.reserveCapacity(total); start.reserveCapacity(total)
            end.reserveCapacity(total); events.reserveCapacity(total); pageviews.reserveCapacity(total)
            entryTime.reserveCapacity(total); entryPage.reserveCapacity(total); exitTime.reserveCapacity(total)
            exitPage.reserveCapacity(total); conversions.reserveCapacity(total)
            for k in attributeCodes.indices { attributeCodes[k].reserveCapacity(total) }
            if keepIDs {
                sessionID.reserveCapacity(total)
                visitorID.reserveCapacity(total)
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
            let total = count + o.count
            // Worked on as locals, as in `fold`: as stored properties of a class every access was
            // an exclusivity check (a quarter of the time of sessions read from summaries).
            var index = self.index, sessionHash = self.sessionHash, visitor = self.visitor, start = self.start
            var end = self.end, events = self.events, pageviews = self.pageviews, entryTime = self.entryTime
            var entryPage = self.entryPage, exitTime = self.exitTime, exitPage = self.exitPage
            var attributeCodes = self.attributeCodes, conversions = self.conversions
            var sessionID = self.sessionID, visitorID = self.visitorID
            self.index = HashIndex(capacity: 0)
            self.sessionHash = []; self.visitor = []; self.start = []; self.end = []; self.events = []; self.pageviews = []
            self.entryTime = []; self.entryPage = []; self.exitTime = []; self.exitPage = []
            self.attributeCodes = []; self.conversions = []; self.sessionID = []; self.visitorID = []
            defer {
                self.index = index; self.sessionHash = sessionHash; self.visitor = visitor; self.start = start
                self.end = end; self.events = events; self.pageviews = pageviews; self.entryTime = entryTime
                self.entryPage = entryPage; self.exitTime = exitTime; self.exitPage = exitPage
                self.attributeCodes = attributeCodes; self.conversions = conversions
                self.sessionID = sessionID; self.visitorID = visitorID
            }
            let oHash = o.sessionHash, oVisitor = o.visitor, oStart = o.start, oEnd = o.end, oEvents = o.events
            let oPageviews = o.pageviews, oEntryTime = o.entryTime, oEntryPage = o.entryPage, oExitTime = o.exitTime
            let oExitPage = o.exitPage, oAttributes = o.attributeCodes, oConversions = o.conversions
            let oSessionID = o.sessionID, oVisitorID = o.visitorID
            let attributeCount = attributes.count
            // (No reserveCapacity on the arrays: it reallocates to exactly `total`, and absorbing
            // block after block then copied every array each time.)
            index.reserve(total)
            // In the other builder's order of arrival: walking its table slot by slot would insert
            // keys in hash order, which piles them into one run of this table's linear probing.
            for j in 0..<oHash.count {
                let hash = oHash[j]
                let (existing, inserted) = index.findOrInsert(hash, Int32(start.count))
                if inserted {
                    guard start.count < maxSessions else {
                        throw QueryError(kind: .budget, parameter: "query",
                                         message: "more than \(maxSessions) sessions; narrow the range or filter")
                    }
                    sessionHash.append(hash)
                    visitor.append(oVisitor[j])
                    start.append(oStart[j])
                    end.append(oEnd[j])
                    events.append(oEvents[j])
                    pageviews.append(oPageviews[j])
                    entryTime.append(oEntryTime[j])
                    entryPage.append(pageMap[Int(oEntryPage[j])])
                    exitTime.append(oExitTime[j])
                    exitPage.append(pageMap[Int(oExitPage[j])])
                    for k in 0..<attributeCount { attributeCodes[k].append(attributeMaps[k][Int(oAttributes[k][j])]) }
                    conversions.append(oConversions[j])
                    if keepIDs {
                        sessionID.append(idMap[Int(oSessionID[j])])
                        visitorID.append(idMap[Int(oVisitorID[j])])
                    }
                    continue
                }
                let s = Int(existing)
                events[s] += oEvents[j]
                pageviews[s] += oPageviews[j]
                conversions[s] |= oConversions[j]
                if oStart[j] < start[s] || (oStart[j] == start[s] && firstBefore(
                    oVisitor[j], { attributeMaps[$0][Int(oAttributes[$0][j])] }, visitor[s], { attributeCodes[$0][s] })) {
                    start[s] = oStart[j]
                    visitor[s] = oVisitor[j]
                    for k in 0..<attributeCount { attributeCodes[k][s] = attributeMaps[k][Int(oAttributes[k][j])] }
                    if keepIDs { visitorID[s] = idMap[Int(oVisitorID[j])] }
                }
                end[s] = max(end[s], oEnd[j])
                let theirEntry = pageMap[Int(oEntryPage[j])]
                if oEntryTime[j] < entryTime[s] || (oEntryTime[j] == entryTime[s] && pageBefore(theirEntry, entryPage[s])) {
                    entryTime[s] = oEntryTime[j]
                    entryPage[s] = theirEntry
                }
                let theirExit = pageMap[Int(oExitPage[j])]
                if oExitTime[j] > exitTime[s] || (oExitTime[j] == exitTime[s] && pageBefore(exitPage[s], theirExit)) {
                    exitTime[s] = oExitTime[j]
                    exitPage[s] = theirExit
                }
            }
        }

        /// Adds the summarized sessions of one block (`SessionSummaryFile`) that can touch
        /// [from, to): those starting before `to` and ending at or after `from`. They are
        /// combined with the sessions already here as `absorb` combines two builders'.
        func absorb(_ s: SessionSummaryFile.Sessions, from: Int64, to: Int64) throws(QueryError) {
            let o = sibling()
            let pageCodes = s.pages.map { o.pages.code($0) }
            let noPage = o.pages.code(.null)
            let summaryIndex = SessionSummaryFile.attributes
            // Per attribute: its position in the block and the block's codes → o's; -1 for
            // .campaign (campaign_id, else utm_campaign), coded per session below.
            var attributeSource: [Int] = []
            var attributeMaps: [[UInt32]] = []
            for (k, d) in attributes.enumerated() {
                if case .column(let c) = d, let j = summaryIndex.firstIndex(of: c) {
                    attributeSource.append(j)
                    attributeMaps.append(s.attributeValues[j].map { o.attributeSpaces[k].code($0) })
                } else {
                    attributeSource.append(-1)
                    attributeMaps.append([])
                }
            }
            let campaignID = summaryIndex.firstIndex(of: .campaignID)!
            let utmCampaign = summaryIndex.firstIndex(of: .utmCampaign)!
            // The block's type bits → this question's conversion bits.
            let typeBits: [UInt64] = conversionTypes.map { t in s.types.firstIndex(of: t).map { 1 << UInt64($0) } ?? 0 }
            var hash: [UInt64] = [], visitor: [UInt64] = [], start: [Int64] = [], end: [Int64] = []
            var events: [Int32] = [], pageviews: [Int32] = [], entryTime: [Int64] = [], exitTime: [Int64] = []
            var entryPage: [UInt32] = [], exitPage: [UInt32] = [], conversions: [UInt64] = []
            var attributeCodes = [[UInt32]](repeating: [], count: attributes.count)
            var campaignCodes: [UInt64: UInt32] = [:]
            for i in 0..<s.count where s.start[i] < to && s.end[i] >= from {
                hash.append(s.hash[i])
                visitor.append(needsVisitors ? s.visitor[i] : 0)
                start.append(s.start[i])
                end.append(s.end[i])
                events.append(s.events[i])
                pageviews.append(s.pageviews[i])
                entryTime.append(s.entryTime[i])
                exitTime.append(s.exitTime[i])
                entryPage.append(s.pageviews[i] > 0 ? pageCodes[Int(s.entryPage[i])] : noPage)
                exitPage.append(s.pageviews[i] > 0 ? pageCodes[Int(s.exitPage[i])] : noPage)
                for k in attributes.indices {
                    let j = attributeSource[k]
                    if j >= 0 {
                        attributeCodes[k].append(attributeMaps[k][Int(s.attributeCodes[j][i])])
                    } else {
                        // campaign_id, else utm_campaign: coded once per pair of the block's codes.
                        let (idCode, utmCode) = (s.attributeCodes[campaignID][i], s.attributeCodes[utmCampaign][i])
                        let pair = UInt64(idCode) << 32 | UInt64(utmCode)
                        if let c = campaignCodes[pair] {
                            attributeCodes[k].append(c)
                        } else {
                            let id = s.attributeValues[campaignID][Int(idCode)]
                            let c = o.attributeSpaces[k].code(id != .null ? id : s.attributeValues[utmCampaign][Int(utmCode)])
                            campaignCodes[pair] = c
                            attributeCodes[k].append(c)
                        }
                    }
                }
                var bits: UInt64 = 0
                if !typeBits.isEmpty {
                    let have = s.typeBits[i]
                    for (k, b) in typeBits.enumerated() where have & b != 0 { bits |= 1 << UInt64(k) }
                }
                conversions.append(bits)
            }
            o.sessionHash = hash; o.visitor = visitor; o.start = start; o.end = end; o.events = events
            o.pageviews = pageviews; o.entryTime = entryTime; o.exitTime = exitTime; o.entryPage = entryPage
            o.exitPage = exitPage; o.conversions = conversions; o.attributeCodes = attributeCodes
            try absorb(o)
        }

        /// How to code dimension `d` of each session: in the builder's own value space (pages and
        /// first-event dimensions are coded already; a time bucket once per bucket), so filters
        /// and groups work on codes instead of each session's value being made and coded again.
        func coder(_ d: QueryDimension) -> DimensionCoder {
            switch d {
            case .entryPage: return DimensionCoder(space: pages, kind: .entry)
            case .exitPage: return DimensionCoder(space: pages, kind: .exit)
            case .time(let bucket): return DimensionCoder(space: ValueSpace(), kind: .time(bucket))
            default:
                let k = attributes.firstIndex(of: d)!
                return DimensionCoder(space: attributeSpaces[k], kind: .attribute(k))
            }
        }

        struct DimensionCoder {
            let space: ValueSpace
            let kind: Kind
            var buckets: [Int64: UInt32] = [:]

            enum Kind {
                case entry, exit, attribute(Int), time(QueryDimension.TimeBucket)
            }

            mutating func code(_ s: Int, _ b: Builder) -> UInt32 {
                switch kind {
                case .entry: return b.entryPage[s]
                case .exit: return b.exitPage[s]
                case .attribute(let k): return b.attributeCodes[k][s]
                case .time(let bucket):
                    let key = bucket.key(b.start[s], b.zone)
                    if let c = buckets[key] { return c }
                    let c = space.code(bucket.label(key, b.zone))
                    buckets[key] = c
                    return c
                }
            }
        }

        /// The value of dimension `d` for session `s` (attributes are looked up by position).
        func value(_ d: QueryDimension, _ s: Int) -> QueryValue {
            switch d {
            case .entryPage: return pages.value(Int(entryPage[s]))
            case .exitPage: return pages.value(Int(exitPage[s]))
            case .time(let bucket): return bucket.label(bucket.key(start[s], zone), zone)
            default:
                let k = attributes.firstIndex(of: d)!
                return attributeSpaces[k].value(Int(attributeCodes[k][s]))
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
        builder.needsVisitors = q.metrics.contains(.uniqueVisitors)
        let from = max(q.from, q.rawFloor ?? .min)

        // Each session of the range: its dimension codes, the filter, its group.
        var coders = used.map { builder.coder($0) }
        let spaces = coders.map(\.space)
        let filter = q.filter.map { CompiledFilter($0, dimensions: used) }
        var groups: [GroupKey: Int] = [:]
        var accumulators: [Accumulator] = []
        var codes = used.map { _ in [UInt32](repeating: 0, count: 1) }
        let dims = q.dimensions.count
        var stats = try builder.forEachSession(site: q.site, from: from, to: q.to, snapshot: snapshot, deadline: deadline,
                                               window: budget.sessionWindow) {
            (b, s) throws(QueryError) in
            guard b.start[s] >= from && b.start[s] < q.to else { return }
            for i in used.indices { codes[i][0] = coders[i].code(s, b) }
            if let filter, !ExecutionPlan.evaluate(filter, row: 0, codes: codes, spaces: spaces) { return }
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
            let duration = b.end[s] - b.start[s]
            accumulators[g].sessions += 1
            accumulators[g].events += Int(b.events[s])
            let views = Int(b.pageviews[s])
            accumulators[g].pageviews += views
            if views > 0 { accumulators[g].withPageviews += 1 }
            if views == 1 { accumulators[g].bounces += 1 }
            accumulators[g].durationSum += duration
            if needsMedian { accumulators[g].durations.append(duration) }
            if b.visitor[s] != 0 {
                if q.exact { accumulators[g].exactVisitors.insert(b.visitor[s]) } else {
                    accumulators[g].visitors.add(hash: b.visitor[s])
                }
            }
            for k in 0..<conversionTypes.count where b.conversions[s] & (1 << UInt64(k)) != 0 {
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
                return rounded((a.durations.median ?? 0) / 1000, 10)
            case .session(.viewsPerVisit):
                return rounded(a.sessions == 0 ? 0 : Double(a.pageviews) / Double(a.sessions), 100)
            case .session(.conversions(let t)): return .int(Int64(a.conversions[conversionTypes.firstIndex(of: t)!]))
            default: return .null  // refused by validate
            }
        }
        var rows: [[QueryValue]] = []
        for (key, g) in groups {
            var row: [QueryValue] = []
            for d in 0..<dims { row.append(spaces[d].value(Int(key[d]))) }
            for m in q.metrics { row.append(value(m, accumulators[g])) }
            rows.append(row)
        }
        let empty = Accumulator(conversions: Array(repeating: 0, count: conversionTypes.count))
        var result = try ExecutionPlan.finish(q, rows: rows, emptyMetrics: q.metrics.map { value($0, empty) },
                                              rowsScanned: builder.rowsRead)
        stats.rowsMatched = builder.rowsRead
        result.stats = stats
        if stats.sessionSummariesRead > 0 { result.source = stats.granulesRead > 0 ? .mixed : .sessionSummaries }
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
        if q.offset < 0 { throw QueryError.invalid("offset", "must not be negative") }
        if let limit = q.limit, !(1...1000).contains(limit) { throw QueryError.invalid("limit", "must be 1–1000, not \(limit)") }
        guard q.from < q.to else { throw QueryError.invalid("from", "the range is empty: from must be before to") }
        let deadline = QueryExecutor.Deadline(milliseconds: budget.milliseconds)
        var used = listedDimensions
        for d in q.filter?.dimensions ?? [] where !used.contains(d) { used.append(d) }
        let builder = Builder(attributes: used.filter { !$0.isSession && !$0.isTime }, conversionTypes: [], zone: q.timeZone,
                              maxSessions: budget.maxGroups * 16, keepIDs: true)
        let from = max(q.from, q.rawFloor ?? .min)
        let stats = try builder.read(site: q.site, from: from, to: q.to, snapshot: snapshot, deadline: deadline)
        var coders = used.map { builder.coder($0) }
        let spaces = coders.map(\.space)
        let filter = q.filter.map { CompiledFilter($0, dimensions: used) }
        var codes = used.map { _ in [UInt32](repeating: 0, count: 1) }
        var selected: [Int] = []
        for s in 0..<builder.count where builder.start[s] >= from && builder.start[s] < q.to {
            if let filter {
                for i in used.indices { codes[i][0] = coders[i].code(s, builder) }
                if !ExecutionPlan.evaluate(filter, row: 0, codes: codes, spaces: spaces) { continue }
            }
            selected.append(s)
        }
        let ids = builder.ids
        func id(_ code: UInt32) -> String {
            let v = ids.value(Int(code))
            return v == .null ? "" : v.description
        }
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

/// The session summary blocks of a question decoded ahead on a thread of their own, at most
/// `ahead` blocks beyond the one being absorbed (none: each is decoded when taken), so that
/// decoding (a third of the time of a 7-day question over 817k sessions) overlaps absorbing.
final class SummaryPrefetch: @unchecked Sendable {
    typealias Block = (SessionSummaryFile, SessionSummaryFile.Chunk)
    private let blocks: [Block]
    private let ahead: Int
    private let condition = NSCondition()
    private var ready: [Int: Result<SessionSummaryFile.Sessions, TallyError>] = [:]
    private var taken = 0
    private var stopped = false

    init(_ blocks: [Block], ahead: Int) {
        self.blocks = blocks
        self.ahead = ahead
        guard ahead > 0 else { return }
        let thread = Thread { [self] in
            for i in blocks.indices {
                condition.lock()
                while !stopped && i - taken >= ahead { condition.wait() }
                let stop = stopped
                condition.unlock()
                if stop { return }
                let result = Self.decode(blocks[i])
                condition.lock()
                ready[i] = result
                condition.broadcast()
                condition.unlock()
            }
        }
        thread.name = "tally-summaries"
        thread.start()
    }

    private static func decode(_ block: Block) -> Result<SessionSummaryFile.Sessions, TallyError> {
        Result { () throws(TallyError) in try block.0.read(block.1) }
    }

    /// Block `i`'s sessions; blocks are taken in order.
    func take(_ i: Int) -> Result<SessionSummaryFile.Sessions, TallyError> {
        guard ahead > 0 else { return Self.decode(blocks[i]) }
        condition.lock()
        defer { condition.unlock() }
        taken = i + 1
        condition.broadcast()
        while ready[i] == nil { condition.wait() }
        return ready.removeValue(forKey: i)!
    }

    /// Ends the thread (the question is answered or failed).
    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }
}
