import Synchronization

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
    /// Sketches of groups built by merging (rollup parts, corrections, folded flat entries),
    /// at `sketchIndex[g]` (-1: none, both empty); see also `flat` and `sources`. Few groups
    /// get one (their rows' sketches are kept as entries or by reference): two empty sketches
    /// per group were 64 of the ~150 bytes a group took while a month's rollup parts were
    /// merged (heaptrack of a 10M-event `tally ingest`: 74 MB of groups at its peak).
    var sketchIndex: [Int32] = []
    var visitors: [HyperLogLog] = []
    var sessions: [HyperLogLog] = []
    /// Sketch entries of rows added from batches, kept flat instead of in per-group sketches:
    /// (2 × group + kind) << 23 | sparse entry, kind 0 for visitors and 1 for sessions. Most
    /// groups of a flush get a few entries: a sketch (and an array) per group and per kind was
    /// most of building a flush's rollup rows. `finishSketches` sorts them into runs by group.
    var flat: [UInt64] = []
    /// After `finishSketches`: where slot s's (2 × group + kind) entries start in `runs`.
    var runStarts: [Int32] = []
    var runs: [UInt32] = []
    /// The rollup parts added, and per group the (part << 32 | row) whose sketches it holds
    /// unchanged (UInt64.max: none): a row of one part only is written by copying its bytes,
    /// not decoded and encoded again (rows of different flushes rarely share a key).
    var sourceParts: [RollupRows] = []
    var sources: [UInt64] = []
    /// Further rows with group g's key, when `sources[g]` holds the first: a list linked from
    /// `moreHead[g]` through `moreNext` (-1 ends it), each a (part << 32 | row) in `moreSource`.
    /// Their sketches are unioned as the group is written (`appendUnion`): decoding each into a
    /// sketch and merging was ~11 % of a server's CPU under HTTP ingest, in rollup merges.
    var moreHead: [Int32] = []
    var moreSource: [UInt64] = []
    var moreNext: [Int32] = []
    /// Reused by `appendUnion` for the entries of one sketch being written.
    var scratch: [UInt32] = []
    var scratchNext: [UInt32] = []
    var scratchUnion: [UInt32] = []
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
        sketchIndex.append(-1)
        sources.append(.max)
        moreHead.append(-1)
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
        let flatLimit = Self.flatLimit.load(ordering: .relaxed)
        var zonedSite: UInt32?
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
                    // Rows come grouped by site: the zone is looked up when the site changes
                    // (a dictionary lookup per row was ~1% of a flush's rollup work).
                    if code != zonedSite {
                        zonedSite = code
                        if siteZones[code] == nil {
                            let site = b == RollupBatch.null ? "" : batchValues[0].string(at: Int(b)) ?? ""
                            noteZone(code, rb.zones[site] ?? QueryTimeZone.utc.identifier)
                        }
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
            if flat.count >= flatLimit { foldFlat() }
            if v != 0 && !(last?.group == g && last?.visitor == v) {
                flat.append(UInt64(2 * g) << 23 | UInt64(HyperLogLog.sparseEntry(hash: v, precision: HyperLogLog.defaultPrecision)))
            }
            if s != 0 && !(last?.group == g && last?.session == s) {
                flat.append(UInt64(2 * g + 1) << 23 | UInt64(HyperLogLog.sparseEntry(hash: s, precision: HyperLogLog.defaultPrecision)))
            }
            last = (key, g, v, s)
        }
    }

    mutating func noteZone(_ site: UInt32, _ zone: String) {
        if let z = siteZones[site], z != zone { siteZones[site] = "" } else { siteZones[site] = zone }
    }

    /// Adds every row of a rollup part (merging rollup parts, or reading them back).
    mutating func add(_ handle: RollupPart) throws(TallyError) {
        try add(try handle.loadRows(keep: false))
    }

    mutating func add(_ part: RollupRows) throws(TallyError) {
        let columns = definition.columns
        precondition(part.columns == columns, "rollup part of another definition")
        let partIndex = UInt64(sourceParts.count)
        sourceParts.append(part)
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
            let before = keys.count
            let g = group(key)
            events[g] += counts[r]
            guard sketched(key.type) else { continue }
            if g == before {
                sources[g] = partIndex << 32 | UInt64(r)
                continue
            }
            if sources[g] != .max {
                // Another row for a group still held by reference: linked, unioned when written.
                moreSource.append(partIndex << 32 | UInt64(r))
                moreNext.append(moreHead[g])
                moreHead[g] = Int32(moreSource.count - 1)
                continue
            }
            let i = sketchSlot(g)
            visitors[i].merge(try part.visitors(r))
            sessions[i].merge(try part.sessions(r))
        }
    }

    /// Group g's index in `visitors` and `sessions`, made (with empty sketches) if it had none.
    mutating func sketchSlot(_ g: Int) -> Int {
        if sketchIndex[g] < 0 {
            sketchIndex[g] = Int32(visitors.count)
            visitors.append(HyperLogLog())
            sessions.append(HyperLogLog())
        }
        return Int(sketchIndex[g])
    }

    /// Group g's merged visitor (kind 0) or session (kind 1) sketch; empty when it has none.
    func mergedSketch(_ g: Int, kind: Int) -> HyperLogLog {
        let i = Int(sketchIndex[g])
        return i < 0 ? HyperLogLog() : (kind == 0 ? visitors[i] : sessions[i])
    }

    /// Calls `body` with each part row group g holds by reference (`sources[g]`, then the rows
    /// linked from `moreHead[g]`) until it returns false; returns whether it never did.
    func forEachSource(_ g: Int, _ body: (RollupRows, Int) throws(TallyError) -> Bool) throws(TallyError) -> Bool {
        var source = sources[g]
        guard source != .max else { return true }
        var link = moreHead[g]
        while true {
            guard try body(sourceParts[Int(source >> 32)], Int(source & 0xFFFF_FFFF)) else { return false }
            guard link >= 0 else { return true }
            source = moreSource[Int(link)]
            link = moreNext[Int(link)]
        }
    }

    /// Merges the part rows whose sketches group g holds by reference into its sketches.
    mutating func materializeSource(_ g: Int) throws(TallyError) {
        let i = sketchSlot(g)
        var v = visitors[i], s = sessions[i]
        _ = try forEachSource(g) { (part, r) throws(TallyError) in
            v.merge(try part.visitors(r))
            s.merge(try part.sessions(r))
            return true
        }
        visitors[i] = v
        sessions[i] = s
        sources[g] = .max
        moreHead[g] = -1
    }

    // MARK: Writing sketches

    /// Flat entries held before they are folded into the groups' sketches: a flush's rows stay
    /// flat (1M entries, 8 MB), while rolling up many raw parts at once (a rollup added to a
    /// big store, a rebuild) keeps memory by groups, not rows. Tests lower it.
    static let flatLimit = Atomic<Int>(1 << 20)

    /// Merges the flat entries into the groups' sketches and empties them.
    mutating func foldFlat() {
        finishSketches()
        foldRuns()
    }

    /// Merges the sorted runs into the groups' sketches and empties them.
    mutating func foldRuns() {
        for slot in runStarts.indices.dropLast() {
            let run = Int(runStarts[slot])..<Int(runStarts[slot + 1])
            guard !run.isEmpty else { continue }
            let sketch = HyperLogLog(sortedUniqueEntries: Array(runs[uniqueEntries(run)]))
            let i = sketchSlot(slot >> 1)
            if slot & 1 == 0 { visitors[i].merge(sketch) } else { sessions[i].merge(sketch) }
        }
        runs = []
        runStarts = []
    }

    /// Sorts the entries of `run` and keeps one per index (`HyperLogLog.uniqueEntries`); returns
    /// where they are now.
    mutating func uniqueEntries(_ run: Range<Int>) -> Range<Int> {
        let n = runs.withUnsafeMutableBufferPointer { HyperLogLog.uniqueEntries(UnsafeMutableBufferPointer(rebasing: $0[run])) }
        return run.lowerBound..<(run.lowerBound + n)
    }

    /// Sorts the flat sketch entries into a run per group and kind (a counting sort by slot).
    /// Runs of an earlier call, when entries came after it, go into the groups' sketches first.
    mutating func finishSketches() {
        guard !flat.isEmpty else { return }
        if !runs.isEmpty { foldRuns() }
        let slots = 2 * keys.count
        var starts = [Int32](repeating: 0, count: slots + 1)
        for x in flat { starts[Int(x >> 23) + 1] += 1 }
        for i in 0..<slots { starts[i + 1] += starts[i] }
        var fill = starts
        let entries = flat
        runs = [UInt32](unsafeUninitializedCapacity: entries.count) { out, n in
            for x in entries {
                let slot = Int(x >> 23)
                out[Int(fill[slot])] = UInt32(truncatingIfNeeded: x & 0x7F_FFFF)
                fill[slot] += 1
            }
            n = entries.count
        }
        runStarts = starts
        flat = []
    }

    /// Appends group g's visitor (kind 0) or session (kind 1) sketch to a rollup part being
    /// written (FORMAT.md, "Rollup part file"): its framing to `w`, its stored bytes to `file`.
    /// The bytes are those of serializing the union of everything the group was given; `finishSketches` first.
    mutating func appendSketch(_ g: Int, kind: Int, framing w: inout ByteWriter, file: inout [UInt8]) throws(TallyError) {
        let precision = HyperLogLog.defaultPrecision
        let sparseLimit = (1 << precision) / 4
        let slot = 2 * g + kind
        let run = slot + 1 < runStarts.count ? Int(runStarts[slot])..<Int(runStarts[slot + 1]) : 0..<0
        let merged = mergedSketch(g, kind: kind)
        let mergedEmpty = !merged.isDense && merged.entryCount == 0
        if mergedEmpty && run.isEmpty && sources[g] != .max && moreHead[g] < 0 {
            // One part's row: its bytes as they are when they are what encoding them again
            // gives (a sparse sketch of this precision within the limit).
            let source = sources[g]
            let part = sourceParts[Int(source >> 32)], r = Int(source & 0xFFFF_FFFF)
            if Self.copySketch(of: part, row: r, kind: kind, precision: precision, limit: sparseLimit,
                                   framing: &w, file: &file) {
                return
            }
        }
        if mergedEmpty && sources[g] != .max && moreHead[g] >= 0,
           appendUnion(g, kind: kind, run: run, precision: precision, limit: sparseLimit, framing: &w, file: &file)
        {
            return
        }
        if mergedEmpty && sources[g] == .max {
            // Entries of batches only.
            let unique = uniqueEntries(run)
            if !unique.isEmpty && unique.count <= sparseLimit {
                runs.withUnsafeBufferPointer {
                    Self.appendSparse(UnsafeBufferPointer(rebasing: $0[unique]), framing: &w, file: &file)
                }
                return
            }
            Self.appendSerialized(HyperLogLog(sortedUniqueEntries: Array(runs[unique])), framing: &w, file: &file)
            return
        }
        // A union of merged sketches (and maybe entries): encoded from a sketch.
        try materializeSource(g)
        var sketch = mergedSketch(g, kind: kind)
        if !run.isEmpty { sketch.merge(HyperLogLog(sortedUniqueEntries: Array(runs[uniqueEntries(run)]))) }
        Self.appendSerialized(sketch, framing: &w, file: &file)
    }

    /// Appends the union of group g's part rows (`sources`, `moreHead`) and batch entries
    /// (`run`) when every row's sketch is sparse (kind 3) of `precision`: their entries decoded
    /// and merged in index order, the highest rank kept per index, and written as a sketch
    /// holding them would be (sparse up to `limit` entries, dense above). False (nothing appended) when a row's
    /// sketch has another form; the caller merges sketches then.
    mutating func appendUnion(_ g: Int, kind: Int, run: Range<Int>, precision: Int, limit: Int,
                              framing w: inout ByteWriter, file: inout [UInt8]) -> Bool {
        // The union so far, the next row's entries, and the union of the two: each row's
        // entries are sorted with one per index (as stored), so merging them in order takes the
        // place of sorting (which was a third of this as it first was).
        var union: [UInt32] = [], next: [UInt32] = [], merged: [UInt32] = []
        swap(&union, &scratch)
        swap(&next, &scratchNext)
        swap(&merged, &scratchUnion)
        defer {
            union.removeAll(keepingCapacity: true)
            swap(&union, &scratch)
            swap(&next, &scratchNext)
            swap(&merged, &scratchUnion)
        }
        // Every row's sketch must be sparse of this precision; checked before any is decoded
        // (a group with a dense row is merged as sketches, and decoding the others first was
        // wasted).
        guard precision == HyperLogLog.defaultPrecision else { return false }
        let allSparse = (try? forEachSource(g) { (part, r) throws(TallyError) in
            try part.withStoredSketch(2 * r + kind) { stored in
                if case .sparse = stored { return true } else { return false }
            }
        }) ?? false
        guard allSparse else { return false }
        var first = true
        let decoded = (try? forEachSource(g) { (part, r) throws(TallyError) -> Bool in
            next.removeAll(keepingCapacity: true)
            let ok = try part.withStoredSketch(2 * r + kind) { stored -> Bool in
                guard case .sparse(let n, let bits) = stored,
                      let used = try? HyperLogLog.forEachSparseEntry(bits, entries: n, precision: precision, { next.append($0) }),
                      used == bits.count
                else { return false }
                return true
            }
            guard ok else { return false }
            if first {
                swap(&union, &next)
                first = false
            } else {
                HyperLogLog.mergeSorted(union, next, into: &merged)
                swap(&union, &merged)
            }
            return true
        }) ?? false
        guard decoded else { return false }
        if !run.isEmpty {
            // Batch entries beside part rows: the store never adds both to one aggregate (merges
            // add parts, flushes and rebuilds batches), but the union would hold them too.
            next.removeAll(keepingCapacity: true)
            next.append(contentsOf: runs[run])
            let n = next.withUnsafeMutableBufferPointer { HyperLogLog.uniqueEntries($0) }
            next.removeLast(next.count - n)
            HyperLogLog.mergeSorted(union, next, into: &merged)
            swap(&union, &merged)
        }
        let n = union.count
        if n > 0 && n <= limit {
            union.withUnsafeBufferPointer { Self.appendSparse($0, framing: &w, file: &file) }
        } else {
            Self.appendSerialized(HyperLogLog(sortedUniqueEntries: union, precision: precision),
                                  framing: &w, file: &file)
        }
        return true
    }

    /// x even: a sparse sketch of the default precision with x >> 1 entries, its bits only (most
    /// sketches here hold a few entries: the kind, precision, count and length bytes were ~15 %
    /// of the widget and page rollups); x odd: the whole serialized form.
    static func appendSerialized(_ sketch: HyperLogLog, framing w: inout ByteWriter, file: inout [UInt8]) {
        // An empty sketch is written whole (x even means at least one entry).
        if sketch.precision == HyperLogLog.defaultPrecision, let entries = sketch.compactedSparse, !entries.isEmpty {
            entries.withUnsafeBufferPointer { appendSparse($0, framing: &w, file: &file) }
        } else {
            let bytes = sketch.serialized()
            w.varint(UInt64(bytes.count) << 1 | 1)
            file.append(contentsOf: bytes)
        }
    }

    /// The x-even form of sorted, unique sparse entries of the default precision (1…4,096 of
    /// them): the count as framing, the Rice-coded bits straight into the file buffer (an array
    /// of their own per sketch was a quarter of writing merged rollup parts under HTTP ingest).
    static func appendSparse(_ entries: UnsafeBufferPointer<UInt32>, framing w: inout ByteWriter, file: inout [UInt8]) {
        w.varint(UInt64(entries.count) << 1)
        HyperLogLog.appendSparseBits(entries, precision: HyperLogLog.defaultPrecision, to: &file)
    }

    /// Appends row r's sketch of `part` as it is, when encoding it again would give the same
    /// bytes and its bits were checked when the part was opened: sparse (x even, the default
    /// precision) with 1…`limit` entries. False (nothing appended) otherwise: dense ones are
    /// decoded and encoded again (`open` checks sparse bits but not registers, so copying would
    /// carry damaged registers into the merged part and delete the parts they came from; few
    /// rows have one, over 4,096 uniques).
    static func copySketch(of part: RollupRows, row r: Int, kind: Int, precision: Int, limit: Int,
                           framing w: inout ByteWriter, file: inout [UInt8]) -> Bool {
        guard precision == HyperLogLog.defaultPrecision else { return false }
        return (try? part.withStoredSketch(2 * r + kind) { stored -> Bool in
            guard case .sparse(let n, let bits) = stored, n > 0, n <= limit else { return false }
            w.varint(UInt64(n) << 1)
            file.append(contentsOf: bits)
            return true
        }) ?? false
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

    /// `dictionaries`: part dictionaries of these rows (`PartWriter.dictionary`); a text column
    /// with one takes its codes (nulls aside) and its values in code order instead of being
    /// coded again.
    init(_ batch: EventBatch, columns: [EventColumn], days: [Int32], zones: [String: String],
         dictionaries: [EventColumn: PartWriter.PartDictionary] = [:])
    {
        count = batch.count
        self.days = days
        self.zones = zones
        let visitorColumn = batch[string: .visitorID], sessionColumn = batch[string: .sessionID]
        visitors = (0..<batch.count).map { r in visitorColumn.withValue(r) { $0.isEmpty ? 0 : TallyHash.hash($0) } }
        sessions = (0..<batch.count).map { r in sessionColumn.withValue(r) { $0.isEmpty ? 0 : TallyHash.hash($0) } }
        for c in Set(columns) {
            if c.kind != .int64, let d = dictionaries[c] {
                var sorted = StringColumn()
                sorted.reserve(rows: d.order.count, bytes: d.values.bytes.count)
                for k in d.order { d.values.withValue(Int(k)) { sorted.append($0) } }
                let nulls = batch[string: c].nulls
                if let nulls, nulls.nullCount > 0 {
                    codes[c] = d.codes.indices.map { nulls[$0] ? Self.null : d.codes[$0] }
                } else {
                    codes[c] = d.codes
                }
                values[c] = sorted
                continue
            }
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
