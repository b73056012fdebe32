import Foundation
import Synchronization

/// An equality/IN filter on one column: the row matches if its value is one of `values`.
/// Int64 columns compare the decimal text of their value; null matches `nil`.
public struct ColumnFilter: Sendable {
    public var column: EventColumn
    public var values: [String?]

    public init(_ column: EventColumn, _ values: [String?]) {
        self.column = column
        self.values = values
    }
}

/// What a scan asks for.
public struct ScanRequest: Sendable {
    public var site: String?
    /// occurred_at in [from, to), ms UTC.
    public var from: Int64?
    public var to: Int64?
    public var filters: [ColumnFilter]
    public var columns: [EventColumn]

    public init(site: String? = nil, from: Int64? = nil, to: Int64? = nil, filters: [ColumnFilter] = [],
                columns: [EventColumn] = EventColumn.allCases) {
        self.site = site
        self.from = from
        self.to = to
        self.filters = filters
        self.columns = columns
    }
}

/// How much of the data a scan touched.
public struct ScanStats: Sendable, Equatable {
    public var parts = 0
    public var partsSkipped = 0
    public var granules = 0
    public var granulesSkippedByIndex = 0
    public var granulesSkippedByBloom = 0
    /// Granules counted from the index alone, without reading a block.
    public var granulesFromIndex = 0
    public var granulesRead = 0
    public var bufferedRowsScanned = 0
    public var rowsMatched = 0
    /// Rollup rows a query read (one per site, day, type and dimension values).
    public var rollupRowsRead = 0
    /// Session summaries a session query read (SessionSummaryFile), instead of those parts' rows.
    public var sessionSummariesRead = 0
    /// The most sessions a session query held at once (those read from rows, and its window of
    /// summarized ones).
    public var sessionsHeld = 0

    public init() {}

    /// Adds another scan's counts (a parallel worker's).
    mutating func add(_ o: ScanStats) {
        parts += o.parts
        partsSkipped += o.partsSkipped
        granules += o.granules
        granulesSkippedByIndex += o.granulesSkippedByIndex
        granulesSkippedByBloom += o.granulesSkippedByBloom
        granulesFromIndex += o.granulesFromIndex
        granulesRead += o.granulesRead
        bufferedRowsScanned += o.bufferedRowsScanned
        rowsMatched += o.rowsMatched
        rollupRowsRead += o.rollupRowsRead
        sessionSummariesRead += o.sessionSummariesRead
        sessionsHeld = max(sessionsHeld, o.sessionsHeld)
    }
}

/// An immutable view of the store: parts plus buffered batches at one instant. Readers
/// never lock and never see a partial part; parts stay open while a snapshot holds them.
public struct Snapshot: Sendable {
    public let parts: [Part]
    public let buffered: [EventBatch]
    /// Rollup parts by rollup name: they hold the rows of `parts` (and of raw parts dropped
    /// since), never those of `buffered`.
    public let rollups: [String: [RollupPart]]
    public let rollupDefinitions: [RollupDefinition]
    /// Per rollup, the highest raw part number its parts hold; level-0 parts above it are not
    /// in it yet (nil: every part is).
    let rolledThrough: [String: Int]?

    public init(parts: [Part] = [], buffered: [EventBatch] = [], rollups: [String: [RollupPart]] = [:],
                rollupDefinitions: [RollupDefinition] = []) {
        self.init(parts: parts, buffered: buffered, rollups: rollups, rollupDefinitions: rollupDefinitions, rolledThrough: nil)
    }

    init(parts: [Part], buffered: [EventBatch], rollups: [String: [RollupPart]], rollupDefinitions: [RollupDefinition],
         rolledThrough: [String: Int]?) {
        self.parts = parts
        self.buffered = buffered
        self.rollups = rollups
        self.rollupDefinitions = rollupDefinitions
        self.rolledThrough = rolledThrough
    }

    /// Raw parts whose rows rollup `name` does not hold yet.
    func partsNotRolledUp(_ name: String) -> [Part] {
        guard let through = rolledThrough?[name] else { return [] }
        return parts.filter { $0.footer.level == 0 && $0.number > through }
    }

    /// Rows matching `request`, projected to `request.columns`, in batches (one per read
    /// granule or buffered batch).
    @discardableResult
    public func scan(_ request: ScanRequest, _ body: (EventBatch) throws -> Void) throws -> ScanStats {
        var stats = ScanStats()
        let plan = ScanPlan(request)
        for part in parts {
            stats.parts += 1
            guard let granules = try plan.granules(of: part, stats: &stats) else {
                stats.partsSkipped += 1
                continue
            }
            var dicts: [EventColumn: StringColumn] = [:]
            for g in granules {
                var b = EventBatch(columns: plan.readColumns)
                for c in plan.readColumns { try part.read(c, granule: g, into: &b, dictionaries: &dicts) }
                b.setCount(part.footer.granules[g].rows)
                stats.granulesRead += 1
                let rows = plan.matching(b)
                if rows.isEmpty { continue }
                stats.rowsMatched += rows.count
                try body(plan.project(b, rows))
            }
        }
        for batch in buffered {
            stats.bufferedRowsScanned += batch.count
            let rows = plan.matching(batch)
            if rows.isEmpty { continue }
            stats.rowsMatched += rows.count
            try body(plan.project(batch, rows))
        }
        return stats
    }

    /// `scan`, split over `workers` threads (`forEachPartInParallel`; the first worker also
    /// takes the buffered batches), each worker folding its batches into its own state. The
    /// states come back in worker order.
    func scanInParallel<State>(_ request: ScanRequest, workers: Int, makeState: () -> State,
                               _ body: @escaping (inout State, EventBatch) throws -> Void) throws -> (states: [State], stats: ScanStats) {
        let boxes = (0..<max(1, workers)).map { _ in ScanWorkerBox(makeState()) }
        try forEachPartInParallel(workers: workers) { i, part in
            boxes[i].stats.add(try Snapshot(parts: [part]).scan(request) { try body(&boxes[i].state, $0) })
        }
        boxes[0].stats.add(try Snapshot(buffered: buffered).scan(request) { try body(&boxes[0].state, $0) })
        var stats = ScanStats()
        for b in boxes { stats.add(b.stats) }
        return (boxes.map(\.state), stats)
    }

    /// The number of matching rows. Granules that the primary index shows to match whole
    /// (one site, inside the time range, no other filter) are counted without being read.
    public func count(_ request: ScanRequest) throws -> (count: Int, stats: ScanStats) {
        var stats = ScanStats()
        var total = 0
        let plan = ScanPlan(ScanRequest(site: request.site, from: request.from, to: request.to,
                                        filters: request.filters, columns: []))
        for part in parts {
            stats.parts += 1
            guard let granules = try plan.granules(of: part, stats: &stats) else {
                stats.partsSkipped += 1
                continue
            }
            var dicts: [EventColumn: StringColumn] = [:]
            let siteCode = request.site.map { Part.lookup($0, in: part.sites).code }
            for g in granules {
                let meta = part.footer.granules[g]
                let timeInside = meta.minTime >= (request.from ?? .min) && meta.maxTime < (request.to ?? .max)
                let siteWhole = siteCode == nil || (meta.firstSite == siteCode && meta.lastSite == siteCode)
                if timeInside && siteWhole && request.filters.isEmpty {
                    total += meta.rows
                    stats.granulesFromIndex += 1
                    continue
                }
                stats.granulesRead += 1
                if request.filters.isEmpty {
                    // Site and time only: compare dictionary codes and raw timestamps, no strings.
                    // Site and time only: compare dictionary codes and raw timestamps, no strings,
                    // and read the timestamps only when the granule straddles the range.
                    let from = request.from ?? .min
                    let to = request.to ?? .max
                    if let siteCode, !siteWhole {
                        let codes = try part.readCodes(.siteID, granule: g)
                        if timeInside {
                            for c in codes where c == siteCode { total += 1 }
                        } else {
                            let times = try part.readInt64s(.occurredAt, granule: g)
                            for i in 0..<meta.rows where codes[i] == siteCode && times[i] >= from && times[i] < to { total += 1 }
                        }
                    } else {
                        for t in try part.readInt64s(.occurredAt, granule: g) where t >= from && t < to { total += 1 }
                    }
                    continue
                }
                var b = EventBatch(columns: plan.readColumns)
                for c in plan.readColumns { try part.read(c, granule: g, into: &b, dictionaries: &dicts) }
                b.setCount(meta.rows)
                total += plan.matching(b).count
            }
        }
        for batch in buffered {
            stats.bufferedRowsScanned += batch.count
            total += plan.matching(batch).count
        }
        stats.rowsMatched = total
        return (total, stats)
    }

    public var rowCount: Int { parts.reduce(0) { $0 + $1.rows } + buffered.reduce(0) { $0 + $1.count } }
}

/// One parallel scan worker's state and outcome.
final class ScanWorkerBox<State>: @unchecked Sendable {
    var state: State
    var stats = ScanStats()
    var error: (any Error)?
    init(_ state: State) { self.state = state }
}

/// A value handed to worker threads that use it without sharing mutable state.
struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// A scan request resolved against the schema: which columns to read, how to prune.
struct ScanPlan {
    let request: ScanRequest
    let readColumns: [EventColumn]
    /// Filters with their values as UTF-8 bytes (nil = null).
    let filters: [(column: EventColumn, values: [[UInt8]?])]

    init(_ request: ScanRequest) {
        self.request = request
        var cols = Set(request.columns)
        if request.site != nil { cols.insert(.siteID) }
        if request.from != nil || request.to != nil { cols.insert(.occurredAt) }
        for f in request.filters { cols.insert(f.column) }
        readColumns = cols.sorted()
        filters = request.filters.map { f in (f.column, f.values.map { $0.map { Array($0.utf8) } }) }
    }

    /// The granules of `part` that may hold matching rows, or nil if none can.
    func granules(of part: Part, stats: inout ScanStats) throws -> [Int]? {
        let f = part.footer
        stats.granules += f.granules.count
        let from = request.from ?? .min
        let to = request.to ?? .max
        if f.maxTime < from || f.minTime >= to {
            stats.granulesSkippedByIndex += f.granules.count
            return nil
        }
        var siteCode: UInt32?
        if let site = request.site {
            let (code, found) = Part.lookup(site, in: part.sites)
            if !found {
                stats.granulesSkippedByIndex += f.granules.count
                return nil
            }
            siteCode = code
        }
        // event_type filters prune by the type codes in the primary index when the granule holds one site.
        var typeCodes: [UInt32]?
        if let tf = filters.first(where: { $0.column == .eventType }) {
            typeCodes = tf.values.compactMap { v in
                v.flatMap { bytes in
                    let r = Part.lookup(String(decoding: bytes, as: UTF8.self), in: part.eventTypes)
                    return r.found ? r.code : nil
                }
            }
            if typeCodes!.isEmpty {
                stats.granulesSkippedByIndex += f.granules.count
                return nil
            }
        }
        let bloomFilters = filters.filter { PartFormat.bloomColumns.contains($0.column) && !$0.values.contains(where: { $0 == nil }) }
        var out: [Int] = []
        for (g, meta) in f.granules.enumerated() {
            if meta.maxTime < from || meta.minTime >= to {
                stats.granulesSkippedByIndex += 1
                continue
            }
            if let s = siteCode, s < meta.firstSite || s > meta.lastSite {
                stats.granulesSkippedByIndex += 1
                continue
            }
            if let typeCodes, let s = siteCode, meta.firstSite == s, meta.lastSite == s, meta.firstDay == meta.lastDay,
               !typeCodes.contains(where: { $0 >= meta.firstType && $0 <= meta.lastType }) {
                stats.granulesSkippedByIndex += 1
                continue
            }
            var bloomMiss = false
            for bf in bloomFilters {
                guard let bloom = try part.bloom(bf.column, granule: g) else { continue }
                let any = bf.values.contains { v in v!.withUnsafeBytes { bloom.mayContain(hash: TallyHash.hash($0)) } }
                if !any {
                    bloomMiss = true
                    break
                }
            }
            if bloomMiss {
                stats.granulesSkippedByBloom += 1
                continue
            }
            out.append(g)
        }
        return out
    }

    /// Indices of rows of `b` that match the request.
    func matching(_ b: EventBatch) -> [Int32] {
        var rows: [Int32] = []
        let times = b.columns.contains(.occurredAt) ? b[int: .occurredAt].values : []
        let from = request.from ?? .min
        let to = request.to ?? .max
        let siteBytes = request.site.map { Array($0.utf8) }
        let sites = b[string: .siteID]
        rowLoop: for i in 0..<b.count {
            if !times.isEmpty && (times[i] < from || times[i] >= to) { continue }
            if let siteBytes, !sites.withValue(i, { v in siteBytes.withUnsafeBytes { ByteOrder.equal(v, $0) } }) { continue }
            for f in filters where !Self.matches(b, row: i, column: f.column, values: f.values) { continue rowLoop }
            rows.append(Int32(i))
        }
        return rows
    }

    static func matches(_ b: EventBatch, row i: Int, column: EventColumn, values: [[UInt8]?]) -> Bool {
        if column.kind == .int64 {
            let col = b[int: column]
            if col.isNull(i) { return values.contains { $0 == nil } }
            let text = Array(String(col.values[i]).utf8)
            return values.contains { $0 == text }
        }
        let col = b[string: column]
        if col.isNull(i) { return values.contains { $0 == nil } }
        return col.withValue(i) { v in values.contains { $0.map { x in x.withUnsafeBytes { ByteOrder.equal(v, $0) } } ?? false } }
    }

    func project(_ b: EventBatch, _ rows: [Int32]) -> EventBatch {
        var projected = EventBatch(columns: request.columns)
        for c in request.columns {
            if c.kind == .int64 { projected[int: c] = b[int: c] } else { projected[string: c] = b[string: c] }
        }
        projected.setCount(b.count)
        return rows.count == b.count ? projected : projected.gather(rows)
    }
}
