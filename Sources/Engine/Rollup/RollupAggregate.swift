/// The key of a rollup row: codes into the aggregate's per-column value interners.
struct RollupKey: Equatable {
    var site: UInt32
    var day: Int32
    var type: UInt32
    /// Dimension codes (`RollupAggregate.null` for null/empty, unused slots 0).
    var d0: UInt32 = 0, d1: UInt32 = 0, d2: UInt32 = 0, d3: UInt32 = 0

    subscript(i: Int) -> UInt32 {
        get { i == 0 ? d0 : i == 1 ? d1 : i == 2 ? d2 : d3 }
        set {
            switch i {
            case 0: d0 = newValue
            case 1: d1 = newValue
            case 2: d2 = newValue
            default: d3 = newValue
            }
        }
    }
}

/// Rollup rows being built in memory: from a flushed batch, from rollup parts being merged, or
/// from raw parts being rolled up again. Values are interned per column (site, event type, each
/// dimension); int64 dimensions are kept as their decimal text. Empty text counts as null, as
/// the query engine treats it.
struct RollupAggregate {
    static let null = UInt32.max

    let definition: RollupDefinition
    var interners: [ByteStringInterner]
    /// keys[g] → g, by open addressing (Swift's Dictionary hashed the 28-byte key with SipHash
    /// for every change of key: 8 % of `tally ingest`).
    var slots: [Int32] = Array(repeating: -1, count: 1024)
    var keys: [RollupKey] = []
    var events: [Int64] = []
    var visitors: [HyperLogLog] = []
    var sessions: [HyperLogLog] = []
    /// The time zone identifier each site's days were counted in, by site code ("" when rows of
    /// different zones met in a merge: such a site's rows answer no query from the rollup).
    var siteZones: [UInt32: String] = [:]
    /// Codes of int64 dimension values already seen, by column: the decimal text is made once
    /// per distinct value, not per row.
    var intCodes: [Int: [Int64: UInt32]] = [:]
    /// The event types whose rows have sketches (nil: all): the definition's, narrowed by any
    /// rollup part added that had fewer (a definition widened later cannot invent sketches).
    var sketchTypes: [String]?
    /// Per event type code, whether its rows get sketches.
    var sketchedType: [Bool] = []

    init(_ definition: RollupDefinition) {
        self.definition = definition
        interners = definition.columns.map { _ in ByteStringInterner() }
        sketchTypes = definition.sketchTypes
    }

    /// Whether rows of event type `code` get sketches.
    mutating func sketched(_ code: UInt32) -> Bool {
        while sketchedType.count <= Int(code) {
            let type = interners[1].values.string(at: sketchedType.count) ?? ""
            sketchedType.append(sketchTypes.map { $0.contains(type) } ?? true)
        }
        return sketchedType[Int(code)]
    }

    var isEmpty: Bool { keys.isEmpty }

    /// Site and event type keep "" as a value (they are never null); dimensions turn it to null.
    mutating func code(_ column: Int, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        bytes.isEmpty && column >= 2 ? Self.null : UInt32(interners[column].intern(bytes))
    }

    @inline(__always) static func slot(_ k: RollupKey, mask: Int) -> Int {
        let m: UInt64 = 0xBF58_476D_1CE4_E5B9
        var h = UInt64(k.site) &* 0x9E37_79B9_7F4A_7C15
        h = (h ^ UInt64(UInt32(bitPattern: k.day))) &* m
        h = (h ^ UInt64(k.type)) &* m
        h = (h ^ UInt64(k.d0)) &* m
        h = (h ^ UInt64(k.d1)) &* m
        h = (h ^ UInt64(k.d2)) &* m
        h = (h ^ UInt64(k.d3)) &* m
        return Int(truncatingIfNeeded: h ^ (h >> 31)) & mask
    }

    mutating func group(_ key: RollupKey) -> Int {
        var mask = slots.count - 1
        var i = Self.slot(key, mask: mask)
        while slots[i] >= 0 {
            if keys[Int(slots[i])] == key { return Int(slots[i]) }
            i = (i + 1) & mask
        }
        let g = keys.count
        if (g + 1) * 4 > slots.count * 3 {
            // Grow, reinserting in order of arrival (never in another table's slot order).
            slots = Array(repeating: -1, count: slots.count * 2)
            mask = slots.count - 1
            for (j, k) in keys.enumerated() {
                var at = Self.slot(k, mask: mask)
                while slots[at] >= 0 { at = (at + 1) & mask }
                slots[at] = Int32(j)
            }
            i = Self.slot(key, mask: mask)
            while slots[i] >= 0 { i = (i + 1) & mask }
        }
        slots[i] = Int32(g)
        keys.append(key)
        events.append(0)
        visitors.append(HyperLogLog())
        sessions.append(HyperLogLog())
        return g
    }

    /// Adds the rows of a batch (whole events). `days` gives each row's local day (the site's
    /// time zone). `sign` is -1 for a correction (rows a merge dropped as duplicates: their
    /// visitors and sessions are still in the sketches through the copy that stayed).
    mutating func add(_ batch: EventBatch, days: [Int32], zones: [String: String], sign: Int64 = 1) {
        add(RollupBatch(batch, columns: definition.columns, days: days, zones: zones), sign: sign)
    }

    /// Adds the rows of a batch prepared once for every rollup: each row's values are looked
    /// up by the batch's code, interned here once per distinct value.
    mutating func add(_ rb: RollupBatch, sign: Int64 = 1) {
        let columns = definition.columns
        let unset = UInt32.max - 1
        let batchCodes = columns.map { rb.codes[$0]! }
        let batchValues = columns.map { rb.values[$0]! }
        var maps = batchValues.map { [UInt32](repeating: unset, count: $0.count) }
        var key = RollupKey(site: 0, day: 0, type: 0)
        var last: (key: RollupKey, group: Int, visitor: UInt64, session: UInt64)?
        for r in 0..<rb.count {
            for k in 0..<columns.count {
                let b = batchCodes[k][r]
                var code = Self.null
                if b != RollupBatch.null {
                    code = maps[k][Int(b)]
                    if code == unset {
                        code = batchValues[k].withValue(Int(b)) { self.code(k, $0) }
                        maps[k][Int(b)] = code
                    }
                }
                switch k {
                case 0:
                    key.site = code
                    if siteZones[code] == nil {
                        let site = b == RollupBatch.null ? "" : batchValues[0].string(at: Int(b)) ?? ""
                        noteZone(code, rb.zones[site] ?? QueryTimeZone.utc.identifier)
                    }
                case 1: key.type = code
                default: key[k - 2] = code
                }
            }
            key.day = rb.days[r]
            let g = last?.key == key ? last!.group : group(key)
            events[g] += sign
            guard sign > 0, sketched(key.type) else { continue }
            let v = rb.visitors[r]
            let s = rb.sessions[r]
            // Rows come grouped by visitor: skip re-adding the hash the group just saw.
            if v != 0 && !(last?.group == g && last?.visitor == v) { visitors[g].add(hash: v) }
            if s != 0 && !(last?.group == g && last?.session == s) { sessions[g].add(hash: s) }
            last = (key, g, v, s)
        }
    }

    mutating func noteZone(_ site: UInt32, _ zone: String) {
        if let z = siteZones[site], z != zone { siteZones[site] = "" } else { siteZones[site] = zone }
    }

    /// Adds every row of a rollup part (merging rollup parts, or reading them back).
    mutating func add(_ part: RollupPart) throws(TallyError) {
        let columns = definition.columns
        precondition(part.columns == columns, "rollup part of another definition")
        var maps: [[UInt32]] = []
        for k in columns.indices {
            let dict = part.dictionaries[k]
            maps.append((0..<dict.count).map { i in dict.withValue(i) { code(k, $0) } })
        }
        for (i, zone) in part.siteZones.enumerated() { noteZone(maps[0][i], zone) }
        if let theirs = part.sketchTypes {
            let narrowed = sketchTypes.map { $0.filter { theirs.contains($0) } } ?? theirs
            if narrowed != sketchTypes {
                sketchTypes = narrowed
                sketchedType = []
            }
        }
        // The part's packed columns, unpacked once.
        let all = 0..<part.rows
        let sites = part.sites.values(in: all), days = part.days.values(in: all), types = part.types.values(in: all)
        let dimensions = part.dimensions.map { $0.values(in: all) }, counts = part.events.values(in: all)
        for r in all {
            var key = RollupKey(site: maps[0][Int(sites[r])], day: days[r], type: maps[1][Int(types[r])])
            for d in 0..<columns.count - 2 {
                let c = dimensions[d][r]
                key[d] = c == Self.null ? Self.null : maps[d + 2][Int(c)]
            }
            let g = group(key)
            events[g] += counts[r]
            guard sketched(key.type) else { continue }
            visitors[g].merge(try part.visitors(r))
            sessions[g].merge(try part.sessions(r))
        }
    }

    /// The rows grouped by the local month of their day.
    func months() -> [Partition: [Int]] {
        var out: [Partition: [Int]] = [:]
        for (g, k) in keys.enumerated() { out[Partition(ms: Int64(k.day) * 86_400_000), default: []].append(g) }
        return out
    }
}

/// A batch prepared once for all rollups of a flush: every used column's values coded by the
/// batch (so each rollup looks a row's value up in an array instead of hashing its bytes
/// again: 7 rollups interned site and type 7 times per row), the visitor and session hashes,
/// and the rows' local days.
struct RollupBatch: Sendable {
    static let null = UInt32.max
    let count: Int
    let days: [Int32]
    let zones: [String: String]
    /// Per column, each row's code into `values` (`null` for a null value; int64 columns as decimal text).
    var codes: [EventColumn: [UInt32]] = [:]
    var values: [EventColumn: StringColumn] = [:]
    let visitors: [UInt64]
    let sessions: [UInt64]

    init(_ batch: EventBatch, columns: [EventColumn], days: [Int32], zones: [String: String]) {
        count = batch.count
        self.days = days
        self.zones = zones
        let visitorColumn = batch[string: .visitorID], sessionColumn = batch[string: .sessionID]
        visitors = (0..<batch.count).map { r in visitorColumn.withValue(r) { $0.isEmpty ? 0 : TallyHash.hash($0) } }
        sessions = (0..<batch.count).map { r in sessionColumn.withValue(r) { $0.isEmpty ? 0 : TallyHash.hash($0) } }
        for c in Set(columns) {
            var interner = ByteStringInterner()
            var out = [UInt32](repeating: Self.null, count: batch.count)
            if c.kind == .int64 {
                let col = batch[int: c]
                var seen: [Int64: UInt32] = [:]
                for r in 0..<batch.count where !col.isNull(r) {
                    let v = col.values[r]
                    if let code = seen[v] {
                        out[r] = code
                    } else {
                        var text = String(v)
                        let code = text.withUTF8 { UInt32(interner.intern(UnsafeRawBufferPointer($0))) }
                        seen[v] = code
                        out[r] = code
                    }
                }
            } else {
                let col = batch[string: c]
                for r in 0..<batch.count where !col.isNull(r) {
                    out[r] = col.withValue(r) { UInt32(interner.intern($0)) }
                }
            }
            codes[c] = out
            values[c] = interner.values
        }
    }
}
