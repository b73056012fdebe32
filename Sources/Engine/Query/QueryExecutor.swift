import Foundation

/// Answers a `Query` from raw parts and the in-memory buffer of a snapshot.
///
/// Columnar and batch-at-a-time: the snapshot's scan prunes partitions and granules (site and
/// time from the primary index, min/max time, `is` filters on event_type through the sort key
/// and on ids through the bloom filters) and decompresses only the columns the query needs.
/// Each dimension's values get dense codes once per distinct value (filters are decided once
/// per code, not per row), rows are grouped on those codes, and distinct counts go through
/// HyperLogLog sketches (exact sets of 64-bit hashes with `exact`).
public enum QueryExecutor {
    public static func run(_ query: Query, on snapshot: Snapshot, budget: QueryBudget = QueryBudget())
        throws(QueryError) -> QueryResult
    {
        try validate(query)
        if SessionExecutor.applies(query) { return try SessionExecutor.run(query, on: snapshot, budget: budget) }
        let deadline = Deadline(milliseconds: budget.milliseconds)
        var stats = ScanStats()
        // 1. Whole local days from a daily rollup when one fits; raw parts for the rest.
        let choice = RollupPlanner.choose(query, snapshot)
        var plan = ExecutionPlan(query)
        var rawQuery = query
        if let choice {
            rawQuery.from = choice.split
            plan = try rollupRows(query, choice, deadline: deadline, budget: budget)
            stats.rollupRowsRead = plan.rowsScanned
            // Flushed parts whose rows the rollup does not hold yet answer the rollup's days raw.
            let pending = snapshot.partsNotRolledUp(choice.definition.name)
            var early = query
            early.to = choice.split
            if let floor = query.rawFloor { early.from = max(early.from, floor) }
            if !pending.isEmpty, early.from < early.to {
                let raw = try rawParts(early, Snapshot(parts: pending), deadline: deadline, budget: budget, stats: &stats)
                try plan.merge(raw, maxGroups: budget.maxGroups)
            }
        }
        if let floor = query.rawFloor { rawQuery.from = max(rawQuery.from, floor) }
        if rawQuery.from < rawQuery.to {
            let raw = try rawParts(rawQuery, snapshot, deadline: deadline, budget: budget, stats: &stats)
            if choice == nil { plan = raw } else { try plan.merge(raw, maxGroups: budget.maxGroups) }
        }
        // 3. The in-memory buffer, over the whole range: rows just ingested count too.
        var bufferQuery = query
        if let floor = query.rawFloor { bufferQuery.from = max(query.from, floor) }
        let bufferPlan = ScanPlan(ExecutionPlan(bufferQuery).scanRequest)
        for batch in snapshot.buffered where bufferQuery.from < bufferQuery.to {
            stats.bufferedRowsScanned += batch.count
            let rows = bufferPlan.matching(batch)
            if rows.isEmpty { continue }
            try plan.consume(bufferPlan.project(batch, rows), maxGroups: budget.maxGroups)
        }
        var result = try plan.result()
        result.rowsScanned = stats.rowsMatched + stats.bufferedRowsScanned + stats.rollupRowsRead
        result.stats = stats
        // What answered: rollup rows, raw granules, or both (the buffer is raw but always read).
        if stats.rollupRowsRead > 0 { result.source = stats.granulesRead > 0 ? .mixed : .rollup }
        return result
    }

    /// The rollup rows' answer to `query` (the chosen days only). On one core: two workers
    /// reading half of the days each were no faster for `top_pages_30d` (each translated the
    /// same 3,860 pages, and merging their groups by value took 1.6 ms).
    static func rollupRows(_ query: Query, _ choice: RollupChoice, deadline: Deadline, budget: QueryBudget)
        throws(QueryError) -> ExecutionPlan
    {
        var plan = ExecutionPlan(query)
        do {
            for part in choice.parts {
                try deadline.check()
                try plan.consume(rollup: part, fromDay: choice.fromDay, toDay: choice.toDay, zone: choice.zone,
                                 maxGroups: budget.maxGroups)
            }
        } catch let e as QueryError {
            throw e
        } catch {
            throw QueryError.storage("reading the rollups", error)
        }
        return plan
    }

    /// The raw parts' answer to `query` (its range only; not the buffer), on both cores.
    static func rawParts(_ query: Query, _ snapshot: Snapshot, deadline: Deadline, budget: QueryBudget,
                         stats: inout ScanStats) throws(QueryError) -> ExecutionPlan {
        let first = ExecutionPlan(query)
        let scanPlan = ScanPlan(first.scanRequest)
        // Prune: partitions, then granules by the primary index, min/max time and blooms.
        var work: [(part: Part, granules: [Int])] = []
        do {
            for part in snapshot.parts {
                stats.parts += 1
                guard let granules = try scanPlan.granules(of: part, stats: &stats) else {
                    stats.partsSkipped += 1
                    continue
                }
                if !granules.isEmpty { work.append((part, granules)) }
            }
        } catch {
            throw QueryError.storage("reading the data", error)
        }
        // Aggregate the parts on both cores when there is enough to share (each worker has
        // its own value codes and groups; they are merged by value afterwards).
        let total = work.reduce(0) { $0 + $1.granules.count }
        let workers = total >= 8 ? min(2, QueryCores.available) : 1
        let boxes = (0..<workers).map { i in WorkerBox(i == 0 ? first : ExecutionPlan(query)) }
        let shares = Self.share(work, total: total, workers: workers)
        DispatchQueue.concurrentPerform(iterations: workers) { i in
            let box = boxes[i]
            do {
                for (part, granules) in shares[i] {
                    try box.plan.consume(part: part, granules: granules, deadline: deadline, maxGroups: budget.maxGroups)
                }
            } catch {
                box.error = error
            }
        }
        for box in boxes {
            if let e = box.error as? QueryError { throw e }
            if let e = box.error { throw QueryError.storage("reading the data", e) }
        }
        var plan = boxes[0].plan
        for box in boxes.dropFirst() { try plan.merge(box.plan, maxGroups: budget.maxGroups) }
        stats.granulesRead += boxes.reduce(0) { $0 + $1.plan.granulesRead }
        stats.rowsMatched += boxes.reduce(0) { $0 + $1.plan.rowsScanned }
        return plan
    }

    /// The granules in `workers` contiguous shares of equal count, a part split between shares
    /// where a share ends inside it: a range within one month is one merged part, and whole
    /// parts per worker left `hourly_7d` on one core (BENCHMARKS.md).
    static func share(_ work: [(part: Part, granules: [Int])], total: Int, workers: Int)
        -> [[(part: Part, granules: [Int])]]
    {
        var shares = [[(part: Part, granules: [Int])]](repeating: [], count: workers)
        let each = (total + workers - 1) / max(1, workers)
        var w = 0, filled = 0
        for (part, granules) in work {
            var rest = granules[...]
            while !rest.isEmpty {
                let take = w == workers - 1 ? rest.count : min(rest.count, each - filled)
                shares[w].append((part, Array(rest.prefix(take))))
                rest = rest.dropFirst(take)
                filled += take
                if filled >= each && w < workers - 1 {
                    w += 1
                    filled = 0
                }
            }
        }
        return shares
    }

    /// One worker's plan and outcome.
    final class WorkerBox: @unchecked Sendable {
        var plan: ExecutionPlan
        var error: (any Error)?
        init(_ plan: ExecutionPlan) { self.plan = plan }
    }

    struct Deadline {
        let nanoseconds: UInt64
        let milliseconds: Int
        init(milliseconds: Int) {
            self.milliseconds = milliseconds
            nanoseconds = DispatchTime.now().uptimeNanoseconds + UInt64(max(0, milliseconds)) * 1_000_000
        }

        /// No budget (about 24 days): building session summaries, not answering a query.
        static var unlimited: Deadline { Deadline(milliseconds: Int(Int32.max)) }

        func check() throws(QueryError) {
            if DispatchTime.now().uptimeNanoseconds > nanoseconds {
                throw QueryError(kind: .budget, parameter: "query",
                                 message: "stopped after its time budget of \(milliseconds) ms; narrow the range or the dimensions")
            }
        }
    }

    static func validate(_ q: Query) throws(QueryError) {
        if q.metrics.isEmpty { throw QueryError.invalid("metrics", "at least one metric is needed") }
        if q.from >= q.to { throw QueryError.invalid("from", "the range is empty: from must be before to") }
        if q.dimensions.count > Query.maxDimensions {
            throw QueryError.invalid("dimensions", "at most \(Query.maxDimensions) dimensions, not \(q.dimensions.count)")
        }
        if Set(q.dimensions).count != q.dimensions.count {
            throw QueryError.invalid("dimensions", "a dimension is repeated")
        }
        if let limit = q.limit, !(1...Query.maxLimit).contains(limit) {
            throw QueryError.invalid("limit", "must be 1–\(Query.maxLimit), not \(limit)")
        }
        if q.offset < 0 { throw QueryError.invalid("offset", "must not be negative") }
    }
}

/// The cores a query may use, read once (`ProcessInfo.activeProcessorCount` asks the kernel
/// each time: 40 µs, 1 % of `top_pages_30d`).
enum QueryCores {
    static let available = ProcessInfo.processInfo.activeProcessorCount
}

/// The values one dimension takes, each with a dense code. A string's `QueryValue` is made
/// when first asked for (`value(_:)`): top pages at 30M events meets 3,860 pages and shows 50,
/// and making a String for each page met was a third of reading its rollup rows. Everything is
/// in one struct, reached by one access per call (a class's stored properties are each
/// checked for exclusive access at run time: 40 % of coding a value).
final class ValueSpace {
    private var store = Store()
    /// A time dimension's codes by local hour << 12 | UTC offset in minutes (mod 4096): every
    /// bucket is constant within a local hour (`ExecutionPlan.timeCodes`).
    var timeCodes: [Int64: UInt32] = [:]

    /// How many values have codes.
    var count: Int { store.made.count }

    /// The value of `code`.
    func value(_ code: Int) -> QueryValue { store.value(code) }

    /// Every value, by code.
    var values: [QueryValue] { (0..<count).map(value) }

    func code(bytes: UnsafeRawBufferPointer) -> UInt32 { store.code(bytes: bytes) }

    func code(_ value: QueryValue) -> UInt32 { store.code(value) }

    /// Starts giving codes to values of `dictionary` (distinct values) by their index, without
    /// hashing them (`adopt`): only while the space has no values yet. Returns whether it may.
    func beginAdopting(_ dictionary: StringColumn) -> Bool { store.beginAdopting(dictionary) }

    /// The code of value `index` of the dictionary being adopted, which is not empty and was
    /// not adopted before. Its bytes are hashed only if a value is later coded by its bytes.
    func adopt(_ index: Int) -> UInt32 { store.adopt(index) }

    private struct Store {
        var interner = ByteStringInterner()
        /// Interner code → code.
        var fromInterner: [UInt32] = []
        var others: [QueryValue: UInt32] = [:]
        /// Per code, its value once made (strings are made on demand from `interner`, at
        /// `textOf`, or from `adopted` at −2 − `textOf` — adopted strings are not in the interner
        /// until a value is coded by its bytes).
        var made: [QueryValue?] = []
        var textOf: [Int32] = []
        var adopted: StringColumn?
        /// Codes given by `adopt` that the interner does not know yet.
        var unindexed: [UInt32] = []

        mutating func value(_ code: Int) -> QueryValue {
            if let v = made[code] { return v }
            let t = Int(textOf[code])
            let text = t >= 0 ? interner.values.string(at: t) : adopted?.string(at: -2 - t)
            let v = QueryValue.string(text ?? "")
            made[code] = v
            return v
        }

        mutating func beginAdopting(_ dictionary: StringColumn) -> Bool {
            guard made.isEmpty else { return false }
            adopted = dictionary
            return true
        }

        mutating func adopt(_ index: Int) -> UInt32 {
            let c = UInt32(made.count)
            made.append(nil)
            textOf.append(-2 - Int32(index))
            unindexed.append(c)
            return c
        }

        /// Puts the adopted values in the interner (before any other: it is empty until then).
        mutating func index() {
            guard let adopted else { return }
            for c in unindexed {
                let i = Int(-2 - textOf[Int(c)])
                // (A dictionary's values are strictly increasing: a repeated one keeps its first code.)
                if adopted.withValue(i, { Int(interner.intern($0)) }) == fromInterner.count { fromInterner.append(c) }
            }
            unindexed = []
        }

        mutating func code(bytes: UnsafeRawBufferPointer) -> UInt32 {
            if bytes.isEmpty { return code(.null) }
            if !unindexed.isEmpty { index() }
            let c = Int(interner.intern(bytes))
            if c == fromInterner.count {
                fromInterner.append(UInt32(made.count))
                made.append(nil)
                textOf.append(Int32(c))
            }
            return fromInterner[c]
        }

        mutating func code(_ value: QueryValue) -> UInt32 {
            if case .string(let s) = value {
                var t = s
                return t.withUTF8 { code(bytes: UnsafeRawBufferPointer($0)) }
            }
            if let c = others[value] { return c }
            let c = UInt32(made.count)
            others[value] = c
            made.append(value)
            textOf.append(-1)
            return c
        }
    }
}

/// A filter condition decided once per value code.
final class CompiledCondition {
    let dimension: Int
    let op: QueryFilter.FilterOperator
    let texts: [String?]
    let lowered: [String]
    private var decided: [Int8] = []

    init(dimension: Int, op: QueryFilter.FilterOperator, values: [String?]) {
        self.dimension = dimension
        self.op = op
        texts = values
        lowered = values.compactMap { $0?.lowercased() }
    }

    func matches(code: UInt32, space: ValueSpace) -> Bool {
        let i = Int(code)
        if i < decided.count, decided[i] >= 0 { return decided[i] == 1 }
        let v = space.value(i)
        let text: String? = v == .null ? nil : v.description
        let hit: Bool
        switch op {
        case .is: hit = texts.contains { $0 == text }
        case .isNot: hit = !texts.contains { $0 == text }
        case .contains: hit = text.map { t in let l = t.lowercased(); return lowered.contains { l.contains($0) } } ?? false
        case .containsNot: hit = !(text.map { t in let l = t.lowercased(); return lowered.contains { l.contains($0) } } ?? false)
        case .prefix: hit = text.map { t in texts.contains { $0.map { t.hasPrefix($0) } ?? false } } ?? false
        }
        if decided.count <= i { decided.append(contentsOf: repeatElement(-1, count: i + 1 - decided.count)) }
        decided[i] = hit ? 1 : 0
        return hit
    }
}

indirect enum CompiledFilter {
    case and([CompiledFilter])
    case or([CompiledFilter])
    case not(CompiledFilter)
    case condition(CompiledCondition)

    /// `filter` over the values of `dimensions` (which hold every dimension it names).
    init(_ filter: QueryFilter, dimensions: [QueryDimension]) {
        switch filter {
        case .and(let fs): self = .and(fs.map { CompiledFilter($0, dimensions: dimensions) })
        case .or(let fs): self = .or(fs.map { CompiledFilter($0, dimensions: dimensions) })
        case .not(let f): self = .not(CompiledFilter(f, dimensions: dimensions))
        case .condition(let d, let op, let values):
            self = .condition(CompiledCondition(dimension: dimensions.firstIndex(of: d)!, op: op, values: values))
        }
    }
}

/// Accumulated metrics of one group.
struct Accumulator {
    var events = 0
    var pageviews = 0
    var typeCounts: [Int]
    var visitors: HyperLogLog?
    var sessions: HyperLogLog?
    /// The sketches' estimates, made on both cores by `mergeDeferredSketches`.
    var visitorCount: Int?
    var sessionCount: Int?
    var exactVisitors: Set<UInt64>?
    var exactSessions: Set<UInt64>?
    var sums: [Double]
}

/// Wanted 64-bit hashes: a few (one visitor's, one session's) compared in an array, many in a
/// `Set` (SipHash per row was 17 % of `visitor_events_92d` for one wanted id).
struct HashSet {
    private let few: [UInt64]
    private let many: Set<UInt64>?

    init(_ hashes: [UInt64]) {
        let unique = Array(Set(hashes))
        few = unique.count <= 16 ? unique : []
        many = unique.count <= 16 ? nil : Set(unique)
    }

    @inline(__always)
    func contains(_ h: UInt64) -> Bool { many?.contains(h) ?? few.contains(h) }
}

/// A rollup row (`part` indexes `ExecutionPlan.deferredSketchParts`) whose sketches belong to `group`.
struct DeferredSketch {
    var group: Int32
    var part: Int32
    var row: Int32
}

struct GroupKey: Hashable {
    var a: UInt32 = 0
    var b: UInt32 = 0
    var c: UInt32 = 0
    var d: UInt32 = 0

    subscript(i: Int) -> UInt32 {
        get { i == 0 ? a : i == 1 ? b : i == 2 ? c : d }
        set {
            switch i {
            case 0: a = newValue
            case 1: b = newValue
            case 2: c = newValue
            default: d = newValue
            }
        }
    }
}

struct ExecutionPlan {
    let query: Query
    /// Dimensions read per row: the query's, then those only filters use.
    let used: [QueryDimension]
    let spaces: [ValueSpace]
    let filter: CompiledFilter?
    let scanRequest: ScanRequest
    /// Event types counted by `count:` metrics (and ratios of them).
    let countTypes: [String]
    let sumKeys: [String]
    let needsVisitors: Bool
    let needsSessions: Bool
    let needsTypes: Bool
    let typeSpace = ValueSpace()
    /// Per event-type code: pageview? and which count slot (-1 none).
    var typeIsPageview: [Bool] = []
    var typeSlot: [Int] = []
    var groups = GroupTable()
    /// With one dimension: the group of each of its value codes (-1: not looked up yet).
    var directGroups: [Int32] = []
    var accumulators: [Accumulator] = []
    var rowsScanned = 0
    /// Rollup rows whose sketches are merged in `result()`, only if their group is shown.
    var deferredSketchParts: [RollupRows] = []
    var deferredSketches: [DeferredSketch] = []

    init(_ q: Query) {
        query = q
        var used = q.dimensions
        for d in q.filter?.dimensions ?? [] where !used.contains(d) { used.append(d) }
        self.used = used
        spaces = used.map { _ in ValueSpace() }
        filter = q.filter.map { CompiledFilter($0, dimensions: used) }

        var countTypes: [String] = []
        var sumKeys: [String] = []
        var visitors = false
        var sessions = false
        var types = false
        func need(_ m: QueryMetric) {
            switch m {
            case .events: break
            case .pageviews: types = true
            case .uniqueVisitors: visitors = true
            case .sessions: sessions = true
            case .count(let t):
                types = true
                if !countTypes.contains(t) { countTypes.append(t) }
            case .ratio(let a, let b):
                need(a)
                need(b)
            case .sum(let k): if !sumKeys.contains(k) { sumKeys.append(k) }
            case .session: break  // answered by SessionExecutor, never here
            }
        }
        q.metrics.forEach(need)
        self.countTypes = countTypes
        self.sumKeys = sumKeys
        needsVisitors = visitors
        needsSessions = sessions
        needsTypes = types

        var columns: Set<EventColumn> = [.occurredAt]
        if types { columns.insert(.eventType) }
        if visitors { columns.insert(.visitorID) }
        if sessions { columns.insert(.sessionID) }
        if !sumKeys.isEmpty { columns.insert(.properties) }
        for d in used { columns.formUnion(d.storedColumns) }
        scanRequest = ScanRequest(site: q.site, from: q.from, to: q.to, filters: q.filter.map(\.pushedDown) ?? [],
                                  columns: columns.sorted())
    }

    /// Rows of a batch that already match the site and range (the in-memory buffer).
    mutating func consume(_ b: EventBatch, maxGroups: Int) throws(QueryError) {
        let n = b.count
        rowsScanned += n
        var codes: [[UInt32]] = []
        codes.reserveCapacity(used.count)
        for (i, d) in used.enumerated() {
            codes.append(Self.codes(of: d, in: b, space: spaces[i], zone: query.timeZone))
        }
        var typeCodes: [UInt32] = []
        if needsTypes {
            let col = b[string: .eventType]
            typeCodes.reserveCapacity(n)
            for r in 0..<n {
                let c = col.withValue(r) { typeSpace.code(bytes: $0) }
                typeCodes.append(c)
                while typeIsPageview.count <= Int(c) {
                    let v = typeSpace.value(typeIsPageview.count).description
                    typeIsPageview.append(QueryMetric.pageviewTypes.contains(v))
                    typeSlot.append(countTypes.firstIndex(of: v) ?? -1)
                }
            }
        }
        func hashes(_ c: EventColumn) -> [UInt64] {
            let col = b[string: c]
            return (0..<n).map { r in col.withValue(r) { $0.isEmpty ? 0 : TallyHash.hash($0) } }
        }
        try aggregate(count: n, kept: filter.map { Self.mask($0, count: n, codes: codes, spaces: spaces) }, codes: codes,
                      typeCodes: typeCodes, isPageview: typeIsPageview, slots: typeSlot,
                      visitors: needsVisitors ? hashes(.visitorID) : nil, sessions: needsSessions ? hashes(.sessionID) : nil,
                      properties: sumKeys.isEmpty ? nil : b[string: .properties], maxGroups: maxGroups)
    }

    var granulesRead = 0

    /// Granules of a part, straight from its blocks: dictionary columns as codes translated
    /// once per part, site and time checked on codes and raw timestamps.
    static let identifierColumns: Set<EventColumn> = [.visitorID, .sessionID, .eventID, .userIDHash]

    mutating func consume(part: Part, granules: [Int], deadline: QueryExecutor.Deadline, maxGroups: Int) throws {
        let (siteCode, siteFound) = Part.lookup(query.site, in: part.sites)
        guard siteFound else { return }
        // Part code → query code, per dictionary-encoded dimension column.
        // Translated lazily: a part's dictionary of paths has thousands of entries, a query on
        // one site meets a few of them.
        var dictionaries: [EventColumn: StringColumn] = [:]
        var translators: [EventColumn: CodeTranslator] = [:]
        func translate(_ c: EventColumn, _ space: ValueSpace, _ raw: [UInt32]) throws -> [UInt32] {
            if translators[c] == nil { translators[c] = CodeTranslator(try part.queryDictionary(c, cache: &dictionaries), space) }
            return translators[c]!.codes(raw)
        }
        var isPageview: [Bool] = []
        var slots: [Int] = []
        if needsTypes {
            for i in 0..<part.eventTypes.count {
                let v = part.eventTypes.string(at: i) ?? ""
                isPageview.append(QueryMetric.pageviewTypes.contains(v))
                slots.append(countTypes.firstIndex(of: v) ?? -1)
            }
            isPageview.append(false)
            slots.append(-1)
        }
        // The `is` conditions pushed down to the scan, once per part: allowed dictionary codes of
        // this part (dictionary columns), allowed numbers (mapping_id, post_id; a value that is
        // not a number matches nothing).
        // (Kept codes as a table by code, numbers as a short list: a `Set` hashed every row's
        // code with SipHash, 5 % of `props_click_target_30d`.)
        var pushedCodes: [(EventColumn, [Bool])] = []
        var pushedNumbers: [(EventColumn, [Int64])] = []
        // Text stored as values (ids, URLs): compared as bytes, so a visitor's rows are found
        // without giving every other row's id a code (coding 1M visitor ids to find 87 rows was
        // most of `visitor_events_92d` at 30M events: 312 ms, 19× ClickHouse; BENCHMARKS.md).
        var pushedBytes: [(EventColumn, [[UInt8]])] = []
        for f in scanRequest.filters {
            if f.column.kind == .int64 {
                pushedNumbers.append((f.column, f.values.compactMap { $0.flatMap { Int64($0) } }))
            } else if part.footer.column(f.column)?.dictionary.isNone ?? true {
                pushedBytes.append((f.column, f.values.compactMap { $0.map { Array($0.utf8) } }))
            } else if let meta = part.footer.column(f.column), !meta.dictionary.isNone {
                let dict = try part.queryDictionary(f.column, cache: &dictionaries)
                var kept = [Bool](repeating: false, count: dict.count)
                for case let value? in f.values {
                    let (code, found) = Part.lookup(value, in: dict)
                    if found { kept[Int(code)] = true }
                }
                pushedCodes.append((f.column, kept))
            }
        }
        let from = query.from
        let to = query.to
        let groupsByTime = used.contains(where: \.isTime)
        // Per props.* key, part dictionary code of properties → query code (.max: not parsed yet).
        var propCodes: [String: [UInt32]] = [:]
        for g in granules {
            try deadline.check()
            granulesRead += 1
            let meta = part.footer.granules[g]
            let n = meta.rows
            var selected: [Int32]?
            if !(meta.firstSite == siteCode && meta.lastSite == siteCode) {
                let sites = try part.readCodes(.siteID, granule: g)
                selected = (0..<n).compactMap { sites[$0] == siteCode ? Int32($0) : nil }
            }
            var times: [Int64]?
            if !(meta.minTime >= from && meta.maxTime < to) || groupsByTime {
                times = try part.readInt64s(.occurredAt, granule: g)
            }
            if let t = times, !(meta.minTime >= from && meta.maxTime < to) {
                selected = (selected ?? (0..<Int32(n)).map { $0 }).filter { t[Int($0)] >= from && t[Int($0)] < to }
            }
            // Top-level `is` conditions narrow the rows on codes or numbers before any value is
            // decoded (a props.* breakdown of one event type parses only its rows).
            for (column, allowed) in pushedNumbers {
                let col = try part.readBatch([column], granule: g, dictionaries: &dictionaries)[int: column]
                selected = (selected ?? (0..<Int32(n)).map { $0 }).filter {
                    !col.isNull(Int($0)) && allowed.contains(col.values[Int($0)])
                }
            }
            for (column, allowed) in pushedCodes {
                guard let raw = try part.codesWithNulls(column, granule: g) else { continue }
                selected = allowed.withUnsafeBufferPointer { allowed in
                    (selected ?? (0..<Int32(n)).map { $0 }).filter { r in
                        let c = Int(raw[Int(r)])
                        return c < allowed.count && allowed[c]  // null (beyond the dictionary): kept by no `is`
                    }
                }
            }
            for (column, allowed) in pushedBytes where selected?.isEmpty != true {
                if Self.identifierColumns.contains(column), part.footer.column(column) != nil,
                   let rows = try part.identifierRows(column, granule: g, selected: selected, occurred: times, wanted: allowed) {
                    // Ids stored binary: compared in that form (no text made, nothing hashed).
                    selected = rows
                    continue
                }
                let col = try part.readBatch([column], granule: g, dictionaries: &dictionaries)[string: column]
                selected = (selected ?? (0..<Int32(n)).map { $0 }).filter { r in
                    col.withValue(Int(r)) { v in
                        allowed.contains { a in a.count == v.count && a.withUnsafeBytes { ByteOrder.equal($0, v) } }
                    }
                }
            }
            if let selected, selected.isEmpty { continue }
            var m = selected?.count ?? n
            rowsScanned += m
            // Every per-row array below is compact: index k is the k-th selected row.
            // (Only the selected rows' values are made: decoding every row's properties JSON and
            // then gathering the few selected was 10 % of `props_click_target_30d`.)
            func readCompact(_ columns: [EventColumn]) throws -> EventBatch {
                guard let selected else { return try part.readBatch(columns, granule: g, dictionaries: &dictionaries) }
                return try part.readBatch(columns, granule: g, rows: selected, dictionaries: &dictionaries)
            }

            var codes: [[UInt32]] = []
            for (i, d) in used.enumerated() {
                let space = spaces[i]
                switch d {
                case .column(let c):
                    if let raw = try part.codesWithNulls(c, granule: g) {
                        codes.append(try translate(c, space, pick(raw, selected)))
                    } else {
                        codes.append(Self.codes(of: d, in: try readCompact([c]), space: space, zone: query.timeZone))
                    }
                case .time(let bucket):
                    codes.append(Self.timeCodes(pick(times!, selected), bucket, query.timeZone, space,
                                                min: meta.minTime, max: meta.maxTime))
                case .campaign:
                    codes.append(Self.codes(of: d, in: try readCompact([.campaignID, .utmCampaign]), space: space,
                                            zone: query.timeZone))
                case .prop(let key):
                    if let raw = try part.codesWithNulls(.properties, granule: g) {
                        // Dictionary-coded properties: each distinct JSON of the part is parsed once.
                        let dict = try part.queryDictionary(.properties, cache: &dictionaries)
                        let k = Array(key.utf8)
                        var map = propCodes[key] ?? [UInt32](repeating: .max, count: dict.count)
                        let null = space.code(.null)
                        codes.append(pick(raw, selected).map { c in
                            guard Int(c) < map.count else { return null }
                            if map[Int(c)] == .max { map[Int(c)] = dict.withValue(Int(c)) { Self.propCode($0, key: k, space: space) } }
                            return map[Int(c)]
                        })
                        propCodes[key] = map
                    } else {
                        codes.append(Self.codes(of: d, in: try readCompact([.properties]), space: space, zone: query.timeZone))
                    }
                case .entryPage, .exitPage:  // answered by SessionExecutor, never here
                    codes.append(Array(repeating: space.code(.null), count: m))
                }
            }
            // The filter decided on codes, before any id is read or hashed: the rows it drops
            // are dropped here (a utm_campaign breakdown keeps 7 % of a site's rows; hashing
            // every row's visitor first made `top_utm_campaign_30d` as slow as ClickHouse's).
            if let filter {
                let keep = Self.mask(filter, count: m, codes: codes, spaces: spaces)
                let kept = keep.indices.filter { keep[$0] }
                if kept.isEmpty { continue }
                if kept.count < m {
                    let rows = selected ?? Array(0..<Int32(n))
                    selected = kept.map { rows[$0] }
                    codes = codes.map { c in kept.map { c[$0] } }
                    m = kept.count
                }
            }
            var typeCodes: [UInt32] = []
            if needsTypes {
                guard let raw = try part.codesWithNulls(.eventType, granule: g) else {
                    throw TallyError(.corruption, "part \(part.name): event_type granule \(g) is not dictionary-coded")
                }
                let nullIndex = UInt32(isPageview.count - 1)
                typeCodes = pick(raw, selected).map { $0 == .max ? nullIndex : $0 }
            }
            let visitorHashes = needsVisitors
                ? try part.identifierHashes(.visitorID, granule: g, selected: selected, occurred: times, dictionaries: &dictionaries)
                : nil
            let sessionHashes = needsSessions
                ? try part.identifierHashes(.sessionID, granule: g, selected: selected, occurred: times, dictionaries: &dictionaries)
                : nil
            let properties = sumKeys.isEmpty ? nil : try readCompact([.properties])[string: .properties]
            try aggregate(count: m, kept: nil, codes: codes, typeCodes: typeCodes, isPageview: isPageview, slots: slots,
                          visitors: visitorHashes, sessions: sessionHashes, properties: properties, maxGroups: maxGroups)
        }
    }

    /// The codes of the time buckets of `times` (all within [min, max]). Every bucket is
    /// constant within a local hour; when one UTC offset holds over the whole range, a row's
    /// bucket code is found by its local hour in an array (a `Dictionary` of bucket keys, with
    /// its seeded hashing, was 16 % of `hourly_7d`).
    static func timeCodes(_ times: [Int64], _ bucket: QueryDimension.TimeBucket, _ zone: QueryTimeZone,
                          _ space: ValueSpace, min: Int64, max: Int64) -> [UInt32] {
        let hour: Int64 = 3_600_000
        if let off = zone.constantOffset(from: min, through: max) {
            let base = floorDiv(min + off, hour)
            let span = floorDiv(max + off, hour) - base + 1
            if span > 0 && span <= 1 << 16 {
                var cache = [UInt32](repeating: .max, count: Int(span))
                return cache.withUnsafeMutableBufferPointer { cache in
                    times.map { t in
                        let i = floorDiv(t + off, hour) - base
                        guard i >= 0 && i < span else { return space.code(bucket.label(bucket.key(t, zone), zone)) }
                        if cache[Int(i)] != .max { return cache[Int(i)] }
                        // Across granules: by local hour and offset (a label made and interned
                        // per hour per granule was 7 % of `hourly_7d`).
                        let local = (base + i) << 12 | ((off / 60_000) & 4095)
                        if let c = space.timeCodes[local] {
                            cache[Int(i)] = c
                            return c
                        }
                        let c = space.code(bucket.label(bucket.key(t, zone), zone))
                        space.timeCodes[local] = c
                        cache[Int(i)] = c
                        return c
                    }
                }
            }
        }
        var cache: [Int64: UInt32] = [:]
        return times.map { t in
            let k = bucket.key(t, zone)
            if let c = cache[k] { return c }
            let c = space.code(bucket.label(k, zone))
            cache[k] = c
            return c
        }
    }

    /// Adds `count` rows to their groups; every array is indexed by row. Visitor and session
    /// values come as their `TallyHash` (0 = empty, not counted). `kept`: the rows the query's
    /// filter keeps (nil: all of them).
    ///
    /// In passes: each row's group first (groups are made here, so the accumulators may grow),
    /// then counts, visitors and sessions over the fixed accumulators through one buffer (one
    /// loop doing everything per row, re-checking the accumulators' uniqueness on every access,
    /// was 24 % of `top_referrers_30d`).
    mutating func aggregate(count: Int, kept: [Bool]?, codes: [[UInt32]], typeCodes: [UInt32], isPageview: [Bool],
                            slots: [Int], visitors: [UInt64]?, sessions: [UInt64]?, properties: StringColumn?,
                            maxGroups: Int) throws(QueryError) {
        let groupOf = try groupIndexes(count: count, codes: codes, kept: kept, maxGroups: maxGroups)
        let exact = query.exact
        let needsTypes = needsTypes
        accumulators.withUnsafeMutableBufferPointer { acc in
            groupOf.withUnsafeBufferPointer { groupOf in
                for r in 0..<count {
                    let g = Int(groupOf[r])
                    guard g >= 0 else { continue }
                    acc[g].events += 1
                    if needsTypes {
                        let t = Int(typeCodes[r])
                        if isPageview[t] { acc[g].pageviews += 1 }
                        let slot = slots[t]
                        if slot >= 0 { acc[g].typeCounts[slot] += 1 }
                    }
                }
                // Adding a value twice changes nothing: a run of one visitor (rows are sorted by
                // visitor within a day and type) is added once per group.
                func distinct(_ values: [UInt64], _ add: (Int, UInt64) -> Void) {
                    values.withUnsafeBufferPointer { values in
                        var previous: (Int32, UInt64) = (-1, 0)
                        for r in 0..<count {
                            let g = groupOf[r], v = values[r]
                            guard g >= 0, v != 0 else { continue }
                            if previous != (g, v) { add(Int(g), v) }
                            previous = (g, v)
                        }
                    }
                }
                if let visitors {
                    if exact { distinct(visitors) { acc[$0].exactVisitors!.insert($1) } }
                    else { distinct(visitors) { acc[$0].visitors!.add(hash: $1) } }
                }
                if let sessions {
                    if exact { distinct(sessions) { acc[$0].exactSessions!.insert($1) } }
                    else { distinct(sessions) { acc[$0].sessions!.add(hash: $1) } }
                }
                if let properties {
                    let sumKeyBytes = sumKeys.map { Array($0.utf8) }
                    for r in 0..<count where groupOf[r] >= 0 {
                        let g = Int(groupOf[r])
                        properties.withValue(r) { json in
                            for (i, key) in sumKeyBytes.enumerated() {
                                if let v = PropertiesJSON.value(key, in: json)?.doubleValue { acc[g].sums[i] += v }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The group of each of `count` rows (-1: not `kept`), groups made in row order within the
    /// budget. With one dimension, each code's group is made once, then every row's is found
    /// in `directGroups` without a call per row (an hourly series or top pages change group
    /// from row to row).
    mutating func groupIndexes(count: Int, codes: [[UInt32]], kept: [Bool]?, maxGroups: Int) throws(QueryError) -> [Int32] {
        let dims = query.dimensions.count
        // The group of each row; -1: dropped by the filter.
        var groupOf = [Int32](repeating: -1, count: count)
        if dims == 1 {
            // One dimension: each code's group is made once (in row order, as below), then
            // every row's is found in `directGroups` without a call per row (an hourly series
            // changes group from row to row: rows are in visitor order within a day).
            let column = codes[0]
            for r in 0..<count where kept?[r] ?? true {
                let code = Int(column[r])
                if code >= directGroups.count || directGroups[code] < 0 {
                    _ = try group(for: GroupKey(a: column[r]), maxGroups: maxGroups)
                }
            }
            // group(for:) put every code seen above in `directGroups`.
            directGroups.withUnsafeBufferPointer { direct in
                column.withUnsafeBufferPointer { column in
                    groupOf.withUnsafeMutableBufferPointer { groupOf in
                        for r in 0..<count where kept?[r] ?? true { groupOf[r] = direct[Int(column[r])] }
                    }
                }
            }
            return groupOf
        }
        var lastKey: GroupKey?
        var lastGroup: Int32 = 0
        for r in 0..<count {
            if let kept, !kept[r] { continue }
            var key = GroupKey()
            for d in 0..<dims { key[d] = codes[d][r] }
            if key != lastKey {
                lastGroup = Int32(try group(for: key, maxGroups: maxGroups))
                lastKey = key
            }
            groupOf[r] = lastGroup
        }
        return groupOf
    }

    /// The group of `key`, made (with an empty accumulator) if new, within the group budget.
    /// With one dimension the group is found by the value's code in `directGroups` (an hourly
    /// series or top pages change key from row to row: hashing it was 5–8 % of those queries).
    mutating func group(for key: GroupKey, maxGroups: Int) throws(QueryError) -> Int {
        let direct = query.dimensions.count == 1 ? Int(key.a) : -1
        if direct >= 0 && direct < directGroups.count && directGroups[direct] >= 0 { return Int(directGroups[direct]) }
        let g: Int
        if let existing = groups.find(key) {
            g = existing
        } else {
            if groups.count >= maxGroups {
                throw QueryError(kind: .budget, parameter: "dimensions",
                                 message: "more than \(maxGroups) groups; narrow the range, filter or drop a dimension")
            }
            groups.insert(key)
            accumulators.append(newAccumulator())
            g = accumulators.count - 1
        }
        if direct >= 0 {
            if direct >= directGroups.count { directGroups += repeatElement(-1, count: direct - directGroups.count + 1) }
            directGroups[direct] = Int32(g)
        }
        return g
    }

    /// Adds another worker's groups (its codes are its own: groups meet by value).
    mutating func merge(_ other: ExecutionPlan, maxGroups: Int) throws(QueryError) {
        let dims = query.dimensions.count
        // Their group index → ours, for their deferred rollup sketches.
        var mine = other.deferredSketches.isEmpty ? [] : [Int32](repeating: -1, count: other.accumulators.count)
        for (og, otherKey) in other.groups.keys.enumerated() {
            var key = GroupKey()
            for d in 0..<dims { key[d] = spaces[d].code(other.spaces[d].value(Int(otherKey[d]))) }
            let theirs = other.accumulators[og]
            guard let g = groups.find(key) else {
                if groups.count >= maxGroups {
                    throw QueryError(kind: .budget, parameter: "dimensions",
                                     message: "more than \(maxGroups) groups; narrow the range, filter or drop a dimension")
                }
                groups.insert(key)
                if !mine.isEmpty { mine[og] = Int32(accumulators.count) }
                accumulators.append(theirs)
                continue
            }
            if !mine.isEmpty { mine[og] = Int32(g) }
            accumulators[g].events += theirs.events
            accumulators[g].pageviews += theirs.pageviews
            for i in 0..<theirs.typeCounts.count { accumulators[g].typeCounts[i] += theirs.typeCounts[i] }
            for i in 0..<theirs.sums.count { accumulators[g].sums[i] += theirs.sums[i] }
            if let v = theirs.visitors { accumulators[g].visitors!.merge(v) }
            if let s = theirs.sessions { accumulators[g].sessions!.merge(s) }
            if let v = theirs.exactVisitors { accumulators[g].exactVisitors!.formUnion(v) }
            if let s = theirs.exactSessions { accumulators[g].exactSessions!.formUnion(s) }
        }
        let base = Int32(deferredSketchParts.count)
        deferredSketchParts += other.deferredSketchParts
        for ref in other.deferredSketches {
            deferredSketches.append(DeferredSketch(group: mine[Int(ref.group)], part: base + ref.part, row: ref.row))
        }
    }

    func newAccumulator() -> Accumulator {
        Accumulator(
            typeCounts: Array(repeating: 0, count: countTypes.count),
            visitors: needsVisitors && !query.exact ? HyperLogLog() : nil,
            sessions: needsSessions && !query.exact ? HyperLogLog() : nil,
            exactVisitors: needsVisitors && query.exact ? [] : nil,
            exactSessions: needsSessions && query.exact ? [] : nil,
            sums: Array(repeating: 0, count: sumKeys.count))
    }

    /// The filter decided for rows 0..<count at once, condition by condition over whole code
    /// arrays: row by row, the recursive `evaluate` retained and released the filter's classes and
    /// arrays at every call (27 % of `top_utm_campaign_30d` at 30M events).
    static func mask(_ f: CompiledFilter, count: Int, codes: [[UInt32]], spaces: [ValueSpace]) -> [Bool] {
        switch f {
        case .and(let fs):
            var m = [Bool](repeating: true, count: count)
            for sub in fs {
                let s = mask(sub, count: count, codes: codes, spaces: spaces)
                for i in 0..<count where !s[i] { m[i] = false }
            }
            return m
        case .or(let fs):
            var m = [Bool](repeating: false, count: count)
            for sub in fs {
                let s = mask(sub, count: count, codes: codes, spaces: spaces)
                for i in 0..<count where s[i] { m[i] = true }
            }
            return m
        case .not(let sub):
            return mask(sub, count: count, codes: codes, spaces: spaces).map { !$0 }
        case .condition(let c):
            let column = codes[c.dimension]
            let space = spaces[c.dimension]
            var m = [Bool](repeating: false, count: count)
            var last: (code: UInt32, hit: Bool)?
            for i in 0..<count {
                let code = column[i]
                if let l = last, l.code == code {
                    m[i] = l.hit
                    continue
                }
                let hit = c.matches(code: code, space: space)
                m[i] = hit
                last = (code, hit)
            }
            return m
        }
    }

    static func evaluate(_ f: CompiledFilter, row: Int, codes: [[UInt32]], spaces: [ValueSpace]) -> Bool {
        switch f {
        case .and(let fs): return fs.allSatisfy { evaluate($0, row: row, codes: codes, spaces: spaces) }
        case .or(let fs): return fs.contains { evaluate($0, row: row, codes: codes, spaces: spaces) }
        case .not(let f): return !evaluate(f, row: row, codes: codes, spaces: spaces)
        case .condition(let c): return c.matches(code: codes[c.dimension][row], space: spaces[c.dimension])
        }
    }

    /// The code of a `props.<key>` value in a row's properties JSON (absent or empty: null).
    static func propCode(_ json: UnsafeRawBufferPointer, key: [UInt8], space: ValueSpace) -> UInt32 {
        switch PropertiesJSON.find(key, in: json) {
        case .plain(let bytes): space.code(bytes: bytes)  // (empty is null there too)
        case .other(nil): space.code(.null)
        case .other(.string(let s)?): s.isEmpty ? space.code(.null) : space.code(.string(s))
        case .other(let v?): space.code(v)
        }
    }

    /// One code per row of `b` for dimension `d`.
    static func codes(of d: QueryDimension, in b: EventBatch, space: ValueSpace, zone: QueryTimeZone) -> [UInt32] {
        let n = b.count
        var out = [UInt32](repeating: 0, count: n)
        switch d {
        case .column(let c) where c.kind == .int64:
            let col = b[int: c]
            for r in 0..<n { out[r] = space.code(col.isNull(r) ? .null : .int(col.values[r])) }
        case .column(let c):
            let col = b[string: c]
            var previous: (Int, Int, UInt32)?  // start, end, code of the previous row's value
            col.bytes.withUnsafeBytes { all in
                for r in 0..<n {
                    let s = col.start(r)
                    let e = Int(col.ends[r])
                    if let p = previous, p.1 - p.0 == e - s,
                       ByteOrder.equal(UnsafeRawBufferPointer(rebasing: all[p.0..<p.1]), UnsafeRawBufferPointer(rebasing: all[s..<e])) {
                        out[r] = p.2
                        continue
                    }
                    let code = space.code(bytes: UnsafeRawBufferPointer(rebasing: all[s..<e]))
                    out[r] = code
                    previous = (s, e, code)
                }
            }
        case .campaign:
            let ids = b[string: .campaignID]
            let utm = b[string: .utmCampaign]
            for r in 0..<n {
                out[r] = ids.withValue(r) { id in
                    id.isEmpty ? utm.withValue(r) { space.code(bytes: $0) } : space.code(bytes: id)
                }
            }
        case .prop(let key):
            let col = b[string: .properties]
            let k = Array(key.utf8)
            for r in 0..<n { out[r] = col.withValue(r) { propCode($0, key: k, space: space) } }
        case .entryPage, .exitPage:  // answered by SessionExecutor, never here
            let null = space.code(.null)
            for r in 0..<n { out[r] = null }
        case .time(let bucket):
            let times = b[int: .occurredAt].values
            if let lo = times.min(), let hi = times.max() { out = timeCodes(times, bucket, zone, space, min: lo, max: hi) }
        }
        return out
    }

    // MARK: Result

    func metricValue(_ m: QueryMetric, _ a: Accumulator) -> QueryValue {
        switch m {
        case .events: return .int(Int64(a.events))
        case .pageviews: return .int(Int64(a.pageviews))
        case .count(let t): return .int(Int64(a.typeCounts[countTypes.firstIndex(of: t)!]))
        case .uniqueVisitors:
            return .int(Int64(query.exact ? a.exactVisitors!.count : a.visitorCount ?? a.visitors!.count))
        case .sessions:
            return .int(Int64(query.exact ? a.exactSessions!.count : a.sessionCount ?? a.sessions!.count))
        case .ratio(let x, let y):
            let num = metricValue(x, a).doubleValue ?? 0
            let den = metricValue(y, a).doubleValue ?? 0
            return .double(den == 0 ? 0 : (num / den * 1_000_000).rounded() / 1_000_000)
        case .sum(let k):
            let v = a.sums[sumKeys.firstIndex(of: k)!]
            return v == v.rounded() && abs(v) < 9e15 ? .int(Int64(v)) : .double(v)
        case .session: return .null  // answered by SessionExecutor, never here
        }
    }

    /// Whether a metric needs the visitor or session sketches.
    static func usesSketches(_ m: QueryMetric) -> Bool {
        switch m {
        case .uniqueVisitors, .sessions: true
        case .ratio(let a, let b): usesSketches(a) || usesSketches(b)
        default: false
        }
    }

    /// The answer. Rollup sketches deferred by `consume(rollup:)` are merged here, and only for
    /// the groups the answer shows when the order does not depend on them: top 50 pages by
    /// pageviews of 3,860 merges 50 pages' sketches, not 3,860's (BENCHMARKS.md).
    mutating func result() throws(QueryError) -> QueryResult {
        let dims = query.dimensions.count
        let empty = newAccumulator()
        let emptyMetrics = query.metrics.map { metricValue($0, empty) }
        let keys = groups.keys
        func row(_ g: Int, placeholders: Bool) -> [QueryValue] {
            var row: [QueryValue] = []
            row.reserveCapacity(dims + query.metrics.count + 1)
            for d in 0..<dims { row.append(spaces[d].value(Int(keys[g][d]))) }
            for m in query.metrics {
                row.append(placeholders && Self.usesSketches(m) ? .null : metricValue(m, accumulators[g]))
            }
            return row
        }
        // Lazily only when the page is a strict part of the groups (no offset + limit sum: an
        // offset near Int.max must not overflow).
        if !deferredSketches.isEmpty, dims > 0, let limit = query.limit, query.offset < groups.count,
           limit < groups.count - query.offset, !query.dimensions.contains(where: \.isTime) {
            let order = try Self.order(query)
            let sketched = Set(query.metrics.indices.filter { Self.usesSketches(query.metrics[$0]) }.map { dims + $0 })
            if !order.contains(where: { sketched.contains($0.0) }) {
                // Order and page on the counts, then sketches for the page's groups only. The
                // page's groups come from a heap over group indexes, comparing values as the
                // rows `finish` orders would (ties: the dimensions, then first seen): a row made
                // for each of 3,860 pages to order them took 1.2–1.9 ms of `top_pages_30d`.
                func value(_ g: Int, _ column: Int) -> QueryValue {
                    column < dims ? spaces[column].value(Int(keys[g][column]))
                        : metricValue(query.metrics[column - dims], accumulators[g])
                }
                let first = accumulators.indices.map { value($0, order[0].0) }
                func before(_ x: Int, _ y: Int) -> Bool {
                    Self.precedes(order, { $0 == order[0].0 ? first[x] : value(x, $0) },
                                  { $0 == order[0].0 ? first[y] : value(y, $0) }) ?? (x < y)
                }
                let pageGroups = Array(Self.smallest(query.offset + limit, of: Array(accumulators.indices), by: before)
                    .sorted(by: before).dropFirst(query.offset))
                var needed = [Bool](repeating: false, count: accumulators.count)
                for g in pageGroups { needed[g] = true }
                try mergeDeferredSketches(needed)
                return QueryResult(columns: query.dimensions.map(\.name) + query.metrics.map(\.name),
                                   rows: pageGroups.map { row($0, placeholders: false) }, totalRows: accumulators.count,
                                   source: .raw, rowsScanned: rowsScanned, stats: ScanStats())
            }
        }
        try mergeDeferredSketches(nil)
        return try Self.finish(query, rows: accumulators.indices.map { row($0, placeholders: false) },
                               emptyMetrics: emptyMetrics, rowsScanned: rowsScanned)
    }

    /// Merges the deferred rollup sketches of the `needed` groups (all when nil) and estimates
    /// their counts, on both cores: groups are independent, and decoding and estimating sketches
    /// was most of `daily_92d` (92 days × 9 event types' sketches).
    mutating func mergeDeferredSketches(_ needed: [Bool]?) throws(QueryError) {
        defer { deferredSketches = [] }
        guard (needsVisitors || needsSessions) && !query.exact else { return }
        let groupCount = accumulators.count
        // The deferred rows bucketed by group (counting sort).
        var start = [Int](repeating: 0, count: groupCount + 1)
        for ref in deferredSketches where needed?[Int(ref.group)] ?? true { start[Int(ref.group) + 1] += 1 }
        for g in 0..<groupCount { start[g + 1] += start[g] }
        var byGroup = [DeferredSketch](repeating: DeferredSketch(group: 0, part: 0, row: 0), count: start[groupCount])
        var fill = start
        for ref in deferredSketches where needed?[Int(ref.group)] ?? true {
            byGroup[fill[Int(ref.group)]] = ref
            fill[Int(ref.group)] += 1
        }
        // One task per group and sketch (visitors, sessions): an overview's one group still
        // uses both cores when it asks for both.
        var tasks: [(group: Int, sessions: Bool)] = []
        for g in 0..<groupCount where needed?[g] ?? true {
            if needsVisitors { tasks.append((g, false)) }
            if needsSessions { tasks.append((g, true)) }
        }
        var sketches = tasks.map { t in t.sessions ? accumulators[t.group].sessions! : accumulators[t.group].visitors! }
        var counts = [Int](repeating: 0, count: tasks.count)
        // Two shares of about equal work (sketches to merge, plus one estimate per task).
        let cost = tasks.map { start[$0.group + 1] - start[$0.group] + 1 }
        let work = cost.reduce(0, +)
        let workers = work >= 64 && tasks.count >= 2 ? min(2, QueryCores.available) : 1
        var shares = [[Int]](repeating: [], count: workers)
        var done = 0
        for (i, c) in cost.enumerated() {
            shares[min(workers - 1, done * workers / max(1, work))].append(i)
            done += c
        }
        let parts = deferredSketchParts
        let errors = (0..<workers).map { _ in ScanWorkerBox<(any Error)?>(nil) }
        sketches.withUnsafeMutableBufferPointer { sketches in
            counts.withUnsafeMutableBufferPointer { counts in
                let shared = UnsafeSendable((sketches, counts, tasks, byGroup, start, shares))
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    let (sketches, counts, tasks, byGroup, start, shares) = shared.value
                    var union = SketchUnion()
                    do {
                        for i in shares[w] {
                            let g = tasks[i].group
                            if start[g] == start[g + 1] {  // nothing deferred (raw rows only)
                                counts[i] = sketches[i].count
                                continue
                            }
                            if union.precision != sketches[i].precision { union = SketchUnion(precision: sketches[i].precision) }
                            var bound = sketches[i].isDense ? 1 << sketches[i].precision : sketches[i].entryCount
                            for ref in byGroup[start[g]..<start[g + 1]] {
                                bound += parts[Int(ref.part)].sketchEntries(row: Int(ref.row), sessions: tasks[i].sessions)
                            }
                            union.expect(entries: bound)
                            union.merge(sketches[i])
                            for ref in byGroup[start[g]..<start[g + 1]] {
                                try parts[Int(ref.part)].merge(row: Int(ref.row), sessions: tasks[i].sessions, into: &union)
                            }
                            sketches[i] = union.take()
                            counts[i] = sketches[i].count
                        }
                    } catch {
                        errors[w].state = error
                    }
                }
            }
        }
        for (i, t) in tasks.enumerated() {
            if t.sessions {
                accumulators[t.group].sessions = sketches[i]
                accumulators[t.group].sessionCount = counts[i]
            } else {
                accumulators[t.group].visitors = sketches[i]
                accumulators[t.group].visitorCount = counts[i]
            }
        }
        if let e = errors.compactMap(\.state).first { throw QueryError.storage("reading the rollups", e) }
    }

    /// Result rows (dimension values, then metric values) made into the answer: dense time
    /// series (every bucket of the range or cycle, empty ones as `emptyMetrics`), ordered
    /// (requested order, else time ascending or the first metric descending; ties by the
    /// dimensions ascending), then offset and limit.
    static func finish(_ query: Query, rows: [[QueryValue]], emptyMetrics: [QueryValue], rowsScanned: Int)
        throws(QueryError) -> QueryResult
    {
        var rows = rows
        let dims = query.dimensions.count
        let names = query.dimensions.map(\.name) + query.metrics.map(\.name)
        if query.denseTime, dims == 1, case .time(let bucket) = query.dimensions[0] {
            let present = Set(rows.map { $0[0] })
            for k in bucket.keys(from: query.from, to: query.to, query.timeZone) {
                let label = bucket.label(k, query.timeZone)
                if !present.contains(label) { rows.append([label] + emptyMetrics) }
            }
        }
        if dims == 0 && rows.isEmpty { rows.append(emptyMetrics) }
        let order = try Self.order(query)
        func before(_ x: [QueryValue], _ y: [QueryValue]) -> Bool { Self.precedes(order, { x[$0] }, { y[$0] }) ?? false }
        let total = rows.count
        let start = min(query.offset, total)
        // A page of a few rows out of many (top 50 pages of 3,860): the first offset + limit
        // rows are selected through a heap, then sorted — sorting all of them was a fifth of
        // `top_pages_30d`. Ties end on the dimensions, and rows tied even there (a props value
        // 1 and 1.0, equal as numbers) keep their order as in the stable sort below, so both
        // give the same page.
        if let limit = query.limit, start < total, limit < total - start, start + limit <= total / 4 {
            let indexed = rows.indices.map { ($0, rows[$0]) }
            func beforeOrFirst(_ x: (Int, [QueryValue]), _ y: (Int, [QueryValue])) -> Bool {
                Self.precedes(order, { x.1[$0] }, { y.1[$0] }) ?? (x.0 < y.0)
            }
            let first = Self.smallest(start + limit, of: indexed, by: beforeOrFirst).sorted { beforeOrFirst(indexed[$0], indexed[$1]) }
            return QueryResult(columns: names, rows: first[start...].map { rows[$0] }, totalRows: total, source: .raw,
                               rowsScanned: rowsScanned, stats: ScanStats())
        }
        rows.sort(by: before)
        let end = query.limit.map { min(total, start + $0) } ?? total
        return QueryResult(columns: names, rows: Array(rows[start..<end]), totalRows: total, source: .raw,
                           rowsScanned: rowsScanned, stats: ScanStats())
    }

    /// Whether a row with column values `x` comes before one with `y` under `order` (column,
    /// descending): the first column whose values differ decides. Nil when none differs, or
    /// when the first that does holds values neither less than the other (ids above 2^53 equal
    /// as doubles): the caller breaks the tie (first seen, or the stable sort's order).
    static func precedes(_ order: [(Int, Bool)], _ x: (Int) -> QueryValue, _ y: (Int) -> QueryValue) -> Bool? {
        for (column, descending) in order {
            let a = x(column), b = y(column)
            guard a != b else { continue }
            if descending ? b < a : a < b { return true }
            if descending ? a < b : b < a { return false }
            return nil
        }
        return nil
    }

    /// The indexes of the `k` first elements of `items` in the order `before`, unordered: a heap
    /// of the k best so far with the last of them on top (most items lose to it in one comparison).
    static func smallest<T>(_ k: Int, of items: [T], by before: (T, T) -> Bool) -> [Int] {
        guard k > 0 else { return [] }
        var heap: [Int] = []
        heap.reserveCapacity(k)
        // The parent sorts after its children: heap[0] is the last of the k kept.
        func siftDown(_ from: Int) {
            var i = from
            while true {
                let l = 2 * i + 1, r = l + 1
                var top = i
                if l < heap.count && before(items[heap[top]], items[heap[l]]) { top = l }
                if r < heap.count && before(items[heap[top]], items[heap[r]]) { top = r }
                if top == i { return }
                heap.swapAt(i, top)
                i = top
            }
        }
        for i in items.indices {
            if heap.count < k {
                heap.append(i)
                var c = heap.count - 1
                while c > 0 {
                    let parent = (c - 1) / 2
                    guard before(items[heap[parent]], items[heap[c]]) else { break }
                    heap.swapAt(parent, c)
                    c = parent
                }
            } else if before(items[i], items[heap[0]]) {
                heap[0] = i
                siftDown(0)
            }
        }
        return heap
    }

    /// The order of result rows, as (column index, descending): the requested order, else time
    /// ascending or the first metric descending; ties by the dimensions ascending.
    static func order(_ query: Query) throws(QueryError) -> [(Int, Bool)] {
        let dims = query.dimensions.count
        let names = query.dimensions.map(\.name) + query.metrics.map(\.name)
        var order: [(Int, Bool)] = []
        for (name, descending) in query.orderBy {
            guard let i = names.firstIndex(of: name) ?? Self.alias(name, in: names) else {
                throw QueryError.invalid("order_by", "'\(name)' is not one of the query's metrics or dimensions (\(names.joined(separator: ", ")))")
            }
            order.append((i, descending))
        }
        if order.isEmpty {
            if let t = query.dimensions.firstIndex(where: \.isTime) {
                order.append((t, false))
            } else if dims > 0 {
                order.append((dims, true))
            }
        }
        for d in 0..<dims where !order.contains(where: { $0.0 == d }) { order.append((d, false)) }
        return order
    }

    /// Accepts a dimension's other names in order_by (`path` for page_path).
    static func alias(_ name: String, in names: [String]) -> Int? {
        guard let d = try? QueryDimension(name: name) else {
            return (try? QueryMetric(name: name)).flatMap { names.firstIndex(of: $0.name) }
        }
        return names.firstIndex(of: d.name)
    }
}
