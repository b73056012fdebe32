/// Decides whether a query can be answered from a daily rollup, and from which.
///
/// A rollup fits when the query is not `exact`; its metrics are counts, ratios of counts and
/// unique visitors/sessions (no `sum:`); every dimension and filter is the event type, a
/// dimension of the rollup, `campaign` (rollups with campaign_id and utm_campaign), or a
/// day/week/month/day-of-week bucket; the query's time zone is the site's rollup time zone; and
/// the range starts at a local midnight. Whole days come from the rollup; a partial last day
/// (a range ending now) from raw parts — the answer is then "mixed". Rows still in the buffer
/// are never in a rollup and always come from the buffer. Of the rollups that fit, the one with
/// the fewest dimensions (fewest rows) answers.
struct RollupChoice {
    let definition: RollupDefinition
    let parts: [RollupPart]
    /// Local days [fromDay, toDay) come from the rollup…
    let fromDay: Int64
    let toDay: Int64
    /// …and raw parts answer [split, query.to) (empty when split == query.to).
    let split: Int64
    let zone: QueryTimeZone
}

enum RollupPlanner {
    static func choose(_ q: Query, _ snapshot: Snapshot) -> RollupChoice? {
        guard !q.exact, q.allowRollups, !snapshot.rollupDefinitions.isEmpty else { return nil }
        let zone = q.timeZone
        func fits(_ m: QueryMetric) -> Bool {
            switch m {
            case .events, .pageviews, .uniqueVisitors, .sessions, .count: true
            case .ratio(let a, let b): fits(a) && fits(b)
            case .sum, .session: false
            }
        }
        guard q.metrics.allSatisfy(fits) else { return nil }
        var needed: Set<EventColumn> = []
        var dimensions = q.dimensions
        func collect(_ f: QueryFilter) {
            switch f {
            case .and(let fs), .or(let fs): fs.forEach(collect)
            case .not(let f): collect(f)
            case .condition(let d, _, _): dimensions.append(d)
            }
        }
        if let f = q.filter { collect(f) }
        for d in dimensions {
            switch d {
            case .column(let c): if c != .eventType && c != .siteID { needed.insert(c) }
            case .campaign: needed.formUnion([.campaignID, .utmCampaign])
            case .time(let b): guard [.day, .week, .month, .dayOfWeek].contains(b) else { return nil }
            case .prop, .entryPage, .exitPage: return nil
            }
        }
        let fromDay = zone.day(q.from)
        guard zone.startOfDay(fromDay) == q.from else { return nil }
        var toDay = zone.day(q.to)
        var split = q.to
        if zone.startOfDay(toDay) != q.to { split = zone.startOfDay(toDay) } else { toDay = zone.day(q.to - 1) + 1 }
        guard toDay > fromDay else { return nil }
        // Unique visitors or sessions need the rows the filter keeps to carry sketches: the
        // event types the filter allows must all be sketched types of the rollup (and of each
        // of its parts, written perhaps under an older definition).
        func needsSketches(_ m: QueryMetric) -> Bool {
            switch m {
            case .uniqueVisitors, .sessions: true
            case .ratio(let a, let b): needsSketches(a) || needsSketches(b)
            default: false
            }
        }
        let types = q.metrics.contains(where: needsSketches) ? Optional(allowedTypes(q.filter)) : nil
        func covers(_ sketchTypes: [String]?) -> Bool {
            guard let types, let sketchTypes else { return true }
            guard let allowed = types else { return false }
            return allowed.isSubset(of: Set(sketchTypes))
        }
        let first = Partition(ms: fromDay * 86_400_000), last = Partition(ms: (toDay - 1) * 86_400_000)
        func parts(_ d: RollupDefinition) -> [RollupPart] {
            (snapshot.rollups[d.name] ?? []).filter { $0.partition >= first && $0.partition <= last }
        }
        guard let definition = snapshot.rollupDefinitions
            .filter({ d in needed.isSubset(of: Set(d.dimensions)) && covers(d.sketchTypes)
                && parts(d).allSatisfy { covers($0.sketchTypes) } })
            .min(by: { $0.dimensions.count < $1.dimensions.count })
        else { return nil }
        let parts = parts(definition)
        // Every part's days for this site must be the query's days (a time zone changed since
        // some were counted: raw events answer until `rebuildRollups`).
        guard parts.allSatisfy({ ($0.zone(ofSite: q.site) ?? zone.identifier) == zone.identifier }) else { return nil }
        return RollupChoice(definition: definition, parts: parts, fromDay: fromDay, toDay: toDay, split: split, zone: zone)
    }
}

extension RollupPlanner {
    /// The event types a filter lets through, as far as its event_type conditions say; nil
    /// when it may let any type through (no condition on the type, or one under `not`/`is_not`
    /// or beside conditions on other columns in an `or`).
    static func allowedTypes(_ filter: QueryFilter?) -> Set<String>? {
        guard let filter else { return nil }
        switch filter {
        case .condition(.column(.eventType), .is, let values):
            return Set(values.compactMap { $0 })
        case .condition, .not:
            return nil
        case .and(let fs):
            let sets = fs.compactMap(allowedTypes)
            guard let first = sets.first else { return nil }
            return sets.dropFirst().reduce(first) { $0.intersection($1) }
        case .or(let fs):
            var union: Set<String> = []
            for f in fs {
                guard let s = allowedTypes(f) else { return nil }
                union.formUnion(s)
            }
            return union
        }
    }
}

extension ExecutionPlan {
    /// Adds the rows of a rollup part for the query's site and the days [fromDay, toDay): each
    /// row is a group of events with its count and sketches.
    mutating func consume(rollup part: RollupPart, fromDay: Int64, toDay: Int64, zone: QueryTimeZone,
                          maxGroups: Int) throws {
        // The part's columns are packed (`PackedInts`): each is read once for the rows used,
        // which are one range (rows are sorted by site, then day: `RollupPart.open` checks).
        let siteRows = part.rows(ofSite: query.site)
        // Binary search on the packed days (decoding all of a site's days first cost as much as
        // reading the rows).
        func firstIndex(atLeast day: Int64) -> Int {
            var lo = siteRows.lowerBound, hi = siteRows.upperBound
            while lo < hi {
                let mid = (lo + hi) / 2
                if Int64(part.days[mid]) < day { lo = mid + 1 } else { hi = mid }
            }
            return lo
        }
        let first = firstIndex(atLeast: fromDay), end = firstIndex(atLeast: toDay)
        let rows = first..<max(first, end)
        guard !rows.isEmpty else { return }
        rowsScanned += rows.count
        let typeValues = part.dictionaries[1]
        let allTypes = part.types.values(in: rows)
        // Rows that the filter's top-level `is` conditions (event types, a mapping id) cannot
        // keep are dropped before any other column is read: widget stats of one mapping read
        // its few rows, top pages the page views. `picked` holds offsets into `rows`; nil is
        // all of them.
        var picked: [Int32]?
        for f in scanRequest.filters {
            guard let k = part.columns.firstIndex(of: f.column) else { continue }
            let dictionary = part.dictionaries[k]
            let isNumber = f.column.kind == .int64
            let wantedNumbers = Set(f.values.compactMap { $0.flatMap { Int64($0) } })
            let wantedBytes = f.values.compactMap { $0.map { Array($0.utf8) } }
            // Per part code, decided when first met: 0 unknown, 1 kept, 2 dropped.
            var decided = [UInt8](repeating: 0, count: dictionary.count)
            let partCodes = k == 0 ? part.sites.values(in: rows)
                : (k == 1 ? allTypes : part.dimensions[k - 2].values(in: rows))
            picked = (picked ?? Array(0..<Int32(rows.count))).filter { offset in
                let c = Int(partCodes[Int(offset)])
                guard c < decided.count else { return false }  // null: an `is` condition names no null
                if decided[c] == 0 {
                    let keep = isNumber
                        ? dictionary.string(at: c).flatMap { Int64($0) }.map { wantedNumbers.contains($0) } ?? false
                        : dictionary.withValue(c) { v in
                            wantedBytes.contains { w in w.count == v.count && w.withUnsafeBytes { ByteOrder.equal($0, v) } }
                        }
                    decided[c] = keep ? 1 : 2
                }
                return decided[c] == 1
            }
        }
        func pick<T>(_ values: [T]) -> [T] { picked.map { $0.map { values[Int($0)] } } ?? values }
        let count = picked?.count ?? rows.count
        guard count > 0 else { return }
        let types = pick(allTypes), events = pick(part.events.values(in: rows))
        // Per used dimension, the code of each picked row (values translated once per part code).
        var codes: [[UInt32]] = []
        for (i, d) in used.enumerated() {
            let space = spaces[i]
            func translate(_ k: Int) -> [UInt32] {
                let column = part.columns[k]
                let dictionary = part.dictionaries[k]
                // Part code → query code (UInt32.max: not yet seen); the last slot for null.
                let size = dictionary.count
                var map = [UInt32](repeating: .max, count: size + 1)
                let partCodes = k == 0 ? pick(part.sites.values(in: rows))
                    : (k == 1 ? types : pick(part.dimensions[k - 2].values(in: rows)))
                return partCodes.map { c in
                    let slot = c == RollupAggregate.null ? size : Int(c)
                    if map[slot] != .max { return map[slot] }
                    let code: UInt32
                    if c == RollupAggregate.null {
                        code = space.code(.null)
                    } else if column.kind == .int64 {
                        code = space.code(dictionary.string(at: Int(c)).flatMap { Int64($0) }.map { .int($0) } ?? .null)
                    } else {
                        // Straight from the dictionary's bytes (empty is null): no String per value.
                        code = dictionary.withValue(Int(c)) { space.code(bytes: $0) }
                    }
                    map[slot] = code
                    return code
                }
            }
            switch d {
            case .column(let c):
                codes.append(translate(part.columns.firstIndex(of: c)!))
            case .campaign:
                let ids = part.columns.firstIndex(of: .campaignID)!, utm = part.columns.firstIndex(of: .utmCampaign)!
                let offsets = picked.map { $0.map { Int($0) } } ?? Array(0..<rows.count)
                codes.append(offsets.map { k in
                    let r = rows.lowerBound + k
                    return space.code((part.value(ids, r) ?? part.value(utm, r)).map { .string($0) } ?? .null)
                })
            case .time(let bucket):
                var cache: [Int32: UInt32] = [:]
                codes.append(pick(part.days.values(in: rows)).map { day in
                    if let c = cache[day] { return c }
                    let c = space.code(bucket.label(bucket.key(zone.startOfDay(Int64(day)), zone), zone))
                    cache[day] = c
                    return c
                })
            case .prop, .entryPage, .exitPage:
                throw QueryError.invalid("dimensions", "\(d.name) is not in rollups")
            }
        }
        let isPageview = (0..<typeValues.count).map { QueryMetric.pageviewTypes.contains(typeValues.string(at: $0) ?? "") }
        let slots = (0..<typeValues.count).map { countTypes.firstIndex(of: typeValues.string(at: $0) ?? "") ?? -1 }
        let kept = filter.map { Self.mask($0, count: count, codes: codes, spaces: spaces) }
        let groupOf = try groupIndexes(count: count, codes: codes, kept: kept, maxGroups: maxGroups)
        // Sketches are merged in `result()`, for the groups the answer shows.
        let partIndex = Int32(deferredSketchParts.count)
        if needsVisitors || needsSessions {
            deferredSketchParts.append(part)
            deferredSketches.reserveCapacity(deferredSketches.count + count)
            for k in 0..<count where groupOf[k] >= 0 {
                let r = rows.lowerBound + (picked.map { Int($0[k]) } ?? k)
                deferredSketches.append(DeferredSketch(group: groupOf[k], part: partIndex, row: Int32(r)))
            }
        }
        accumulators.withUnsafeMutableBufferPointer { acc in
            for k in 0..<count where groupOf[k] >= 0 {
                let g = Int(groupOf[k])
                let n = Int(events[k])
                acc[g].events += n
                let t = Int(types[k])
                if isPageview[t] { acc[g].pageviews += n }
                if slots[t] >= 0 { acc[g].typeCounts[slots[t]] += n }
            }
        }
    }
}
