import Foundation

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
    mutating func consume(rollup handle: RollupPart, fromDay: Int64, toDay: Int64, zone: QueryTimeZone,
                          maxGroups: Int) throws {
        // A part without the site's rows is not loaded at all.
        guard handle.has(site: query.site) else { return }
        let part = try handle.loadRows()
        // The part's columns are packed (`PackedInts`): each is read once for the rows used,
        // which are one range (rows are sorted by site, then day: decoding the rows checks).
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
        let filterDecided = filterDecidedByPicking(part)
        // (Only when the picking is on site and event type, which keep most rows: a condition on
        // a dimension, such as one mapping id, keeps few, and picking them first reads less.)
        if query.dimensions.count == 1, filterDecided, case .column(let c) = query.dimensions[0],
           let k = part.columns.firstIndex(of: c), part.dictionaries[k].count <= max(1 << 16, 2 * rows.count),
           scanRequest.filters.allSatisfy({ $0.column == .siteID || $0.column == .eventType }) {
            try consumeByPartCode(part, rows: rows, column: k, maxGroups: maxGroups)
            return
        }
        let typeValues = part.dictionaries[1]
        let allTypes = part.types.values(in: rows)
        // Rows that the filter's top-level `is` conditions (event types, a mapping id) cannot
        // keep are dropped before any other column is read: widget stats of one mapping read
        // its few rows, top pages the page views. `picked` holds offsets into `rows`; nil is
        // all of them. (Loops over buffers: as closures over arrays, picking and translating
        // were 2.3 of `top_pages_30d`'s 3.5 ms at 30M events.)
        var picked: [Int32]?
        for (k, keeps) in pickingCodes(part) {
            let partCodes = k == 0 ? part.sites.values(in: rows)
                : (k == 1 ? allTypes : part.dimensions[k - 2].values(in: rows))
            let limit = picked?.count ?? rows.count
            picked = partCodes.withUnsafeBufferPointer { codes in
                keeps.withUnsafeBufferPointer { keeps in
                    [Int32](unsafeUninitializedCapacity: limit) { out, n in
                        var kept = 0
                        for j in 0..<limit {
                            let offset = picked?[j] ?? Int32(j)
                            let c = Int(codes[Int(offset)])
                            // null (the largest code): an `is` condition names no null
                            if c < keeps.count && keeps[c] {
                                out[kept] = offset
                                kept += 1
                            }
                        }
                        n = kept
                    }
                }
            }
        }
        let count = picked?.count ?? rows.count
        guard count > 0 else { return }
        let types = part.types.values(in: rows, picked: picked), events = part.events.values(in: rows, picked: picked)
        // Per used dimension, the code of each picked row (values translated once per part code).
        var codes: [[UInt32]] = []
        // When `picked` decided the whole filter, its rows need no mask and the dimensions only
        // the filter uses no codes (top pages translated every row's event type to keep the
        // page views again).
        func code(_ k: Int, _ c: UInt32, _ space: ValueSpace) -> UInt32 { Self.code(part, k, c, space) }
        func partCodes(_ k: Int) -> [UInt32] {
            k == 0 ? part.sites.values(in: rows, picked: picked)
                : (k == 1 ? types : part.dimensions[k - 2].values(in: rows, picked: picked))
        }
        // One dimension, a key column, and no mask: each row's group straight from its part
        // code, each code's group made once (in row order, as `groupIndexes` makes them).
        var rowGroups: [Int32]?
        if query.dimensions.count == 1, filterDecided, case .column(let c) = query.dimensions[0] {
            let k = part.columns.firstIndex(of: c)!
            let size = part.dictionaries[k].count
            var bySlot = [Int32](repeating: -1, count: size + 1)
            let partCodes = partCodes(k)
            var failure: QueryError?
            rowGroups = partCodes.withUnsafeBufferPointer { partCodes in
                bySlot.withUnsafeMutableBufferPointer { bySlot in
                    [Int32](unsafeUninitializedCapacity: count) { out, n in
                        for j in 0..<count {
                            let c = partCodes[j]
                            let slot = c == RollupAggregate.null ? size : Int(c)
                            if bySlot[slot] < 0 {
                                do throws(QueryError) {
                                    bySlot[slot] = Int32(try group(for: GroupKey(a: code(k, c, spaces[0])), maxGroups: maxGroups))
                                } catch {
                                    failure = error
                                    break
                                }
                            }
                            out[j] = bySlot[slot]
                        }
                        n = failure == nil ? count : 0
                    }
                }
            }
            if let failure { throw failure }
        }
        for (i, d) in used.enumerated() {
            if (filterDecided && i >= query.dimensions.count) || rowGroups != nil {
                codes.append([])
                continue
            }
            let space = spaces[i]
            func translate(_ k: Int) -> [UInt32] {
                // Part code → query code (UInt32.max: not yet seen); the last slot for null.
                let size = part.dictionaries[k].count
                var map = [UInt32](repeating: .max, count: size + 1)
                var partCodes = partCodes(k)
                map.withUnsafeMutableBufferPointer { map in
                    partCodes.withUnsafeMutableBufferPointer { codes in
                        for j in codes.indices {
                            let c = codes[j]
                            let slot = c == RollupAggregate.null ? size : Int(c)
                            if map[slot] == .max { map[slot] = code(k, c, space) }
                            codes[j] = map[slot]
                        }
                    }
                }
                return partCodes
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
                codes.append(part.days.values(in: rows, picked: picked).map { day in
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
        let kept = filterDecided ? nil : filter.map { Self.mask($0, count: count, codes: codes, spaces: spaces) }
        let groupOf = try rowGroups ?? groupIndexes(count: count, codes: codes, kept: kept, maxGroups: maxGroups)
        // Sketches are merged in `result()`, for the groups the answer shows.
        let partIndex = Int32(deferredSketchParts.count)
        let deferring = needsVisitors || needsSessions
        let base = Int32(rows.lowerBound)
        // Counts, and the rows whose sketches `result()` merges, in one pass.
        let deferred = groupOf.withUnsafeBufferPointer { groupOf in
            types.withUnsafeBufferPointer { types in
                events.withUnsafeBufferPointer { events in
                    accumulators.withUnsafeMutableBufferPointer { acc in
                        [DeferredSketch](unsafeUninitializedCapacity: deferring ? count : 0) { out, n in
                            var used = 0
                            for k in 0..<count where groupOf[k] >= 0 {
                                let g = Int(groupOf[k])
                                let e = Int(events[k])
                                acc[g].events += e
                                let t = Int(types[k])
                                if isPageview[t] { acc[g].pageviews += e }
                                if slots[t] >= 0 { acc[g].typeCounts[slots[t]] += e }
                                if deferring {
                                    out[used] = DeferredSketch(group: groupOf[k], part: partIndex, row: base + (picked?[k] ?? Int32(k)))
                                    used += 1
                                }
                            }
                            n = used
                        }
                    }
                }
            }
        }
        if deferring {
            deferredSketchParts.append(part)
            deferredSketches += deferred
        }
    }
}

extension ExecutionPlan {
    /// The query code, in `space`, of part code `c` of key column `k` of a rollup part.
    static func code(_ part: RollupRows, _ k: Int, _ c: UInt32, _ space: ValueSpace) -> UInt32 {
        if c == RollupAggregate.null { return space.code(.null) }
        let dictionary = part.dictionaries[k]
        if part.columns[k].kind == .int64 {
            return space.code(dictionary.string(at: Int(c)).flatMap { Int64($0) }.map { .int($0) } ?? .null)
        }
        // Straight from the dictionary's bytes (empty is null): no String per value.
        return dictionary.withValue(Int(c)) { space.code(bytes: $0) }
    }

    /// Per top-level `is` condition of the filter on a key column of `part`: that column's
    /// index and the part codes it keeps, found by value in the dictionary (in byte order; an
    /// int64 column's values are their decimal text, so a number not written as it prints
    /// keeps nothing — nor does the filter itself keep it).
    func pickingCodes(_ part: RollupRows) -> [(column: Int, codes: [Bool])] {
        scanRequest.filters.compactMap { f in
            guard let column = part.columns.firstIndex(of: f.column) else { return nil }
            var codes = [Bool](repeating: false, count: part.dictionaries[column].count)
            for case let value? in f.values {
                let (code, found) = Part.lookup(value, in: part.dictionaries[column])
                if found { codes[Int(code)] = true }
            }
            return (column, codes)
        }
    }

    /// Whether the rows `consume(rollup:)` picks by the filter's top-level `is` conditions are
    /// exactly the rows the filter keeps: each of its conjuncts is such a condition on a key
    /// column of the part, numbers written as they print ("01" picks the value 1, which the
    /// filter itself does not keep).
    func filterDecidedByPicking(_ part: RollupRows) -> Bool {
        let conjuncts: [QueryFilter]
        if case .and(let fs) = query.filter { conjuncts = fs } else { conjuncts = query.filter.map { [$0] } ?? [] }
        return conjuncts.count == scanRequest.filters.count && scanRequest.filters.allSatisfy { f in
            part.columns.contains(f.column)
                && (f.column.kind != .int64 || f.values.allSatisfy { v in v.flatMap { Int64($0) }.map { String($0) } == v })
        }
    }

    /// A rollup part's rows for a question of one dimension that is one of the part's key
    /// columns (top pages, referrers, countries, devices…) under a filter the picking decides
    /// whole: the rows are summed per part code, each half of them on its own core into its own
    /// arrays, then each code met becomes a group in order of its first row (the order
    /// `groupIndexes` makes them in) and gets its sums. No group is looked up per row and no
    /// array of picked rows is made: at 30M events `top_pages_30d` reads 273,708 rows of one
    /// part, and reading them was half of its time.
    mutating func consumeByPartCode(_ part: RollupRows, rows: Range<Int>, column k: Int, maxGroups: Int)
        throws(QueryError)
    {
        let size = part.dictionaries[k].count
        // The part codes each picking condition keeps (dictionaries are in byte order).
        let kept = pickingCodes(part)
        let typeValues = part.dictionaries[1]
        let isPageview = (0..<typeValues.count).map { QueryMetric.pageviewTypes.contains(typeValues.string(at: $0) ?? "") }
        let typeSlots = (0..<typeValues.count).map { countTypes.firstIndex(of: typeValues.string(at: $0) ?? "") ?? -1 }
        let deferring = needsVisitors || needsSessions
        let countSlots = countTypes.count
        let workers = rows.count >= 1 << 15 ? min(2, QueryCores.available) : 1
        let bounds = (0...workers).map { rows.lowerBound + rows.count * $0 / workers }
        let sums = (0..<workers).map { _ in ScanWorkerBox(PartCodeSums(slots: size + 1, countSlots: countSlots)) }
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            sums[w].state.add(part, rows: bounds[w]..<bounds[w + 1], column: k, kept: kept, isPageview: isPageview,
                              typeSlots: typeSlots, deferring: deferring)
        }
        let states = sums.map(\.state)
        // Each code met, in order of its first row, becomes (or finds) its group.
        var met: [(first: Int32, slot: Int32)] = []
        var firstRows = states[0].firstRow
        for state in states.dropFirst() {
            for slot in firstRows.indices { firstRows[slot] = min(firstRows[slot], state.firstRow[slot]) }
        }
        firstRows.withUnsafeBufferPointer { firstRows in
            for slot in firstRows.indices where firstRows[slot] != .max { met.append((firstRows[slot], Int32(slot))) }
        }
        met.sort { $0.first < $1.first }
        var groupOfSlot = [Int32](repeating: -1, count: size + 1)
        // The first part of a question gives its text values their codes by index (hashing
        // 3,860 pages to code them was a third of this at 30M events); a second part, or raw
        // rows, hash them all when they first code a value.
        let dictionary = part.dictionaries[k]
        let adopting = part.columns[k].kind != .int64 && spaces[0].beginAdopting(dictionary)
        for (_, slot) in met {
            let s = Int(slot)
            let code = adopting && s < size && Int(dictionary.ends[s]) > dictionary.start(s) ? spaces[0].adopt(s)
                : Self.code(part, k, s == size ? RollupAggregate.null : UInt32(s), spaces[0])
            groupOfSlot[s] = Int32(try group(for: GroupKey(a: code), maxGroups: maxGroups))
        }
        accumulators.withUnsafeMutableBufferPointer { acc in
            for state in states {
                for (_, slot) in met {
                    let g = Int(groupOfSlot[Int(slot)]), s = Int(slot)
                    acc[g].events += state.events[s]
                    acc[g].pageviews += state.pageviews[s]
                    for t in 0..<countSlots { acc[g].typeCounts[t] += state.typeCounts[t][s] }
                }
            }
        }
        // Sketches are merged in `result()`, for the groups the answer shows.
        guard deferring else { return }
        let partIndex = Int32(deferredSketchParts.count)
        deferredSketchParts.append(part)
        let total = states.reduce(0) { $0 + $1.refs.count }
        let deferred = groupOfSlot.withUnsafeBufferPointer { groupOfSlot in
            [DeferredSketch](unsafeUninitializedCapacity: total) { out, n in
                n = 0
                for state in states {
                    for ref in state.refs {
                        out[n] = DeferredSketch(group: groupOfSlot[Int(ref >> 32)], part: partIndex,
                                                row: Int32(truncatingIfNeeded: ref))
                        n += 1
                    }
                }
            }
        }
        if deferredSketches.isEmpty { deferredSketches = deferred } else { deferredSketches += deferred }
    }
}

/// One worker's sums per part code (`ExecutionPlan.consumeByPartCode`); the null code's slot is last.
struct PartCodeSums {
    var events: [Int]
    var pageviews: [Int]
    /// Per `count:` metric's event type, per slot.
    var typeCounts: [[Int]]
    /// The first row of each slot (Int32.max: none).
    var firstRow: [Int32]
    /// slot << 32 | row of each row whose sketches `result()` may merge, in row order.
    var refs: [UInt64] = []

    init(slots: Int, countSlots: Int) {
        events = [Int](repeating: 0, count: slots)
        pageviews = [Int](repeating: 0, count: slots)
        typeCounts = (0..<countSlots).map { _ in [Int](repeating: 0, count: slots) }
        firstRow = [Int32](repeating: .max, count: slots)
    }

    /// Adds `rows` of `part`: those whose codes every `kept` condition keeps, by their code of
    /// key column `k`. The packed columns are read 4,096 rows at a time.
    mutating func add(_ part: RollupRows, rows: Range<Int>, column k: Int, kept: [(column: Int, codes: [Bool])],
                      isPageview: [Bool], typeSlots: [Int], deferring: Bool) {
        let nullSlot = events.count - 1
        func codes(_ column: Int, _ chunk: Range<Int>, types: [UInt32]) -> [UInt32] {
            column == 0 ? part.sites.values(in: chunk) : column == 1 ? types : part.dimensions[column - 2].values(in: chunk)
        }
        var start = rows.lowerBound
        var mask = [Bool](repeating: true, count: 4096)
        refs.reserveCapacity(deferring ? rows.count : 0)
        while start < rows.upperBound {
            let chunk = start..<min(rows.upperBound, start + 4096)
            start = chunk.upperBound
            let types = part.types.values(in: chunk)
            let values = codes(k, chunk, types: types)
            let counts = part.events.values(in: chunk)
            // The picking conditions, one at a time over the chunk.
            mask.withUnsafeMutableBufferPointer { mask in
                for j in 0..<chunk.count { mask[j] = true }
                for (column, keeps) in kept {
                    let columnCodes = codes(column, chunk, types: types)
                    columnCodes.withUnsafeBufferPointer { columnCodes in
                        keeps.withUnsafeBufferPointer { keeps in
                            for j in 0..<chunk.count {
                                let c = Int(columnCodes[j])
                                // null (the largest code): an `is` condition names no null
                                mask[j] = mask[j] && c < keeps.count && keeps[c]
                            }
                        }
                    }
                }
            }
            let base = chunk.lowerBound
            mask.withUnsafeBufferPointer { mask in
                values.withUnsafeBufferPointer { values in
                    counts.withUnsafeBufferPointer { counts in
                        types.withUnsafeBufferPointer { types in
                            events.withUnsafeMutableBufferPointer { events in
                                pageviews.withUnsafeMutableBufferPointer { pageviews in
                                    firstRow.withUnsafeMutableBufferPointer { firstRow in
                                        for j in 0..<chunk.count where mask[j] {
                                            let c = values[j]
                                            let slot = c == RollupAggregate.null ? nullSlot : Int(c)
                                            let row = base + j
                                            if firstRow[slot] == .max { firstRow[slot] = Int32(row) }
                                            let n = Int(counts[j])
                                            events[slot] += n
                                            let t = Int(types[j])
                                            if isPageview[t] { pageviews[slot] += n }
                                            if typeSlots[t] >= 0 { typeCounts[typeSlots[t]][slot] += n }
                                            if deferring { refs.append(UInt64(slot) << 32 | UInt64(UInt32(row))) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
