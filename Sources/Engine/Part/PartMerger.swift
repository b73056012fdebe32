/// Merges sorted parts of one month partition into one part, streaming granule by granule.
///
/// Memory is bounded by the inputs' current granules, one output granule and the merged
/// dictionaries (distinct values, not rows) — independent of how many rows the parts hold.
///
/// - Dictionary columns: a column dictionary-coded in every input gets the union of the input
///   dictionaries (sorted, so codes still compare like values); each input's codes are remapped
///   through a table instead of being decoded to text and looked up again. A text column whose
///   union would exceed a quarter of the rows is written as values, as a flush would.
/// - Rows: a k-way merge on the sort key (site code, day, event type code, visitor hash,
///   visitor, occurred_at, event_id).
/// - Duplicates: a row equal on the whole sort key to the row before it has the same site_id
///   and event_id and the same time, visitor and type: a retry of the same event that slipped
///   past the ingest dedupe window. It is dropped. (Two rows sharing an event_id but differing in
///   time, visitor or type are different events by content and both kept.)
struct PartMerger {
    let fs: any FileSystem
    let directory: String
    var granuleRows = PartFormat.defaultGranuleRows
    /// zstd level of the merged part's blocks (`Codec.flushZstdLevel` for a part that further
    /// merges will write again).
    var zstdLevel = Codec.zstdLevel

    struct Outcome {
        let written: PartWriter.Written
        /// Rows dropped as exact duplicates (whole events).
        let duplicates: EventBatch
    }

    /// Merges `inputs` (parts of one partition) into part `number`; nil when `isCancelled`
    /// turned true first (nothing is left on disk then). `beforePublish` gets the rows dropped as
    /// duplicates after the merged part is complete and before it is renamed into place (the
    /// store writes rollup corrections for them there).
    func merge(_ inputs: [Part], number: Int, isCancelled: () -> Bool = { false },
               beforePublish: (EventBatch) throws(TallyError) -> Void = { _ in }) throws(TallyError) -> Outcome? {
        precondition(!inputs.isEmpty && Set(inputs.map(\.partition)).count == 1, "a merge takes parts of one partition")
        let partition = inputs[0].partition
        let level = (inputs.map(\.footer.level).max() ?? 0) + 1
        let totalRows = inputs.reduce(0) { $0 + $1.rows }

        // Which columns stay dictionary-coded, with the merged dictionary and per-input remaps.
        var codeColumns: [EventColumn] = []
        var merged: [MergedDictionary] = []
        for c in EventColumn.allCases where c.kind == .lowCardinality || c.kind == .string {
            guard inputs.allSatisfy({ !($0.footer.column(c)?.dictionary.isNone ?? true) }) else { continue }
            // A text column whose union would pass the limit is not built whole to be thrown
            // away: a big merge's properties union (every input coded, the union far past a
            // quarter of the rows) held 35 MB beside the inputs' 26 MB at a 10M-event
            // `tally ingest`'s peak (heaptrack; BENCHMARKS.md, eleventh session).
            let limit = c.kind == .string ? totalRows / 4 : Int.max
            if inputs.contains(where: { ($0.footer.column(c)?.dictionarySize ?? 0) > limit }) { continue }
            guard let union = MergedDictionary(try inputs.map { (p) throws(TallyError) in try p.dictionary(c) }, limit: limit)
            else { continue }
            codeColumns.append(c)
            merged.append(union)
        }
        let valueColumns = EventColumn.allCases.filter { !codeColumns.contains($0) }
        let siteK = codeColumns.firstIndex(of: .siteID)!, typeK = codeColumns.firstIndex(of: .eventType)!

        let name = PartFormat.fileName(partition: partition, number: number, level: level)
        var file = try PartFileBuilder(fs: fs, directory: directory, name: name)
        do throws(TallyError) {
            var state = MergeState(inputs: inputs, codeColumns: codeColumns, valueColumns: valueColumns,
                                   remaps: merged.map(\.remaps), siteK: siteK, typeK: typeK)
            for k in inputs.indices { try state.advance(k) }
            var duplicates = EventBatch()
            var refs: [RowRef] = []
            refs.reserveCapacity(granuleRows)
            var last: RowRef?
            let dictionarySizes = merged.map(\.values.count)

            func emit() throws(TallyError) {
                guard !refs.isEmpty else { return }
                let granule = state.gather(refs)
                let n = refs.count
                let codeSlots = Dictionary(uniqueKeysWithValues: codeColumns.enumerated().map { ($1, $0) })
                let jobs = EventColumn.allCases.map { PartWriter.GranuleJob.column($0) }
                    + PartFormat.bloomColumns.map { PartWriter.GranuleJob.bloom($0) }
                let blocks = parallelMap(jobs) { job -> PartWriter.EncodedBlock in
                    switch job {
                    case .column(let c):
                        if let k = codeSlots[c] {
                            return Self.encodeCodes(c, granule.codes[k], dictionarySize: dictionarySizes[k], level: zstdLevel)
                        }
                        return PartWriter.encodeColumn(c, batch: granule.values, range: 0..<n, dictionary: nil, level: zstdLevel)
                    case .bloom(let c):
                        return PartWriter.encodeBloom(granule.values[string: c], 0..<n)
                    }
                }
                let sites = granule.codes[siteK], types = granule.codes[typeK]
                try file.addGranule(times: granule.values[int: .occurredAt].values[...],
                                    received: granule.values[int: .receivedAt].values[...],
                                    sites: (sites[0], sites[n - 1]), types: (types[0], types[n - 1]), blocks: blocks)
                refs.removeAll(keepingCapacity: true)
                state.compact(keeping: &last)
            }

            while let (k, row) = state.smallest() {
                let ref = RowRef(batch: UInt32(state.cursors[k].slot), row: UInt32(row))
                if let l = last, state.isDuplicate(l, ref) {
                    state.append(ref, to: &duplicates, dictionaries: merged.map(\.values))
                } else {
                    refs.append(ref)
                    last = ref
                }
                try state.step(k)
                if refs.count == granuleRows {
                    try emit()
                    if isCancelled() {
                        file.abandon()
                        return nil
                    }
                }
            }
            try emit()
            try beforePublish(duplicates)
            let written = try file.finish(
                dictionaries: Dictionary(uniqueKeysWithValues: zip(codeColumns, merged).map { c, d in
                    (c, (d.values, (0..<Int32(d.values.count)).map { $0 }))
                }),
                partition: partition, granuleRows: granuleRows, walLSN: inputs.map(\.footer.walLSN).max() ?? 0,
                level: level, sources: inputs.map(\.number).sorted(), zstdLevel: zstdLevel)
            return Outcome(written: written, duplicates: duplicates)
        } catch {
            file.abandon()
            throw error
        }
    }

    /// One dictionary-coded column of an output granule (null rows carry `UInt32.max`).
    static func encodeCodes(_ c: EventColumn, _ codes: [UInt32], dictionarySize: Int, level: Int32) -> PartWriter.EncodedBlock {
        var nulls: NullBitmap?
        var stored = codes
        if codes.contains(.max) {
            var bitmap = NullBitmap()
            for k in codes.indices {
                bitmap.append(codes[k] == .max)
                if codes[k] == .max { stored[k] = 0 }
            }
            nulls = bitmap
        }
        var payload = ByteWriter(capacity: codes.count * 4 + 16)
        let encoding = GranuleCodec.encodeCodes(stored[...], nulls: nulls, 0..<codes.count, dictionarySize: dictionarySize,
                                                into: &payload)
        return PartWriter.EncodedBlock(bytes: PartWriter.frame(payload.bytes, codec: PartFormat.codec(for: c), encoding: encoding,
                                                               level: level),
                                       rawLength: payload.count, nullCount: nulls?.nullCount ?? 0)
    }
}

/// The union of sorted dictionaries, and for each input the code of each of its values in it.
struct MergedDictionary {
    var values = StringColumn()
    var remaps: [[UInt32]]

    /// Nil once the union holds more than `limit` values.
    init?(_ dictionaries: [StringColumn], limit: Int = .max) {
        remaps = dictionaries.map { [UInt32](repeating: 0, count: $0.count) }
        var heads = [Int](repeating: 0, count: dictionaries.count)
        while true {
            var best = -1
            for k in dictionaries.indices where heads[k] < dictionaries[k].count {
                if best < 0 { best = k; continue }
                let c = dictionaries[k].withValue(heads[k]) { a in dictionaries[best].withValue(heads[best]) { ByteOrder.compare(a, $0) } }
                if c < 0 { best = k }
            }
            if best < 0 { return }
            if values.count == limit { return nil }
            let code = UInt32(values.count)
            values.append(from: dictionaries[best], row: heads[best])
            for k in dictionaries.indices where heads[k] < dictionaries[k].count {
                let equal = k == best || dictionaries[k].withValue(heads[k]) { a in
                    values.withValue(Int(code)) { ByteOrder.equal(a, $0) }
                }
                if equal {
                    remaps[k][heads[k]] = code
                    heads[k] += 1
                }
            }
        }
    }
}

/// The inputs' cursors and the decoded granules the current output granule refers to.
private struct MergeState {
    /// A decoded input granule: value columns, remapped codes, and sort-key helpers.
    struct Slot {
        var values: EventBatch
        var codes: [[UInt32]]
        var days: [Int32]
        var visitorHashes: [UInt64]
    }

    /// The leading sort-key fields of a row, plain values: comparing two rows reads these and
    /// touches no reference-counted storage (comparing through the slots' arrays retained and
    /// released them per comparison: 12% of a server's CPU under sustained ingest, perf).
    struct Key: Equatable {
        var site: UInt32
        var day: Int32
        var type: UInt32
        var visitor: UInt64
        /// occurred_at: not a leading field (the visitor's bytes come first), but two rows of
        /// one visitor are told apart by it without reading their ids.
        var time: Int64

        /// The order of the leading fields, or 0 when they are equal (time not compared).
        @inline(__always) func leading(_ o: Key) -> Int {
            if site != o.site { return site < o.site ? -1 : 1 }
            if day != o.day { return day < o.day ? -1 : 1 }
            if type != o.type { return type < o.type ? -1 : 1 }
            if visitor != o.visitor { return visitor < o.visitor ? -1 : 1 }
            return 0
        }
    }

    struct Cursor {
        var granule = -1
        var row = 0
        var rows = 0
        var slot = -1
        var done = false
        var dictionaries: [EventColumn: StringColumn] = [:]
    }

    let inputs: [Part]
    let codeColumns: [EventColumn]
    let valueColumns: [EventColumn]
    let remaps: [[[UInt32]]]
    let siteK: Int, typeK: Int
    var cursors: [Cursor]
    /// Per input, the key of its current row (plain values: picking the smallest row of up to
    /// ten inputs reads them, not the slots' nested arrays).
    var heads: [Key]
    var slots: [Slot] = []
    /// Per slot, the `Key` of each row.
    var slotKeys: [[Key]] = []
    /// Per slot, its visitor_id and event_id values, behind one reference: rows of one
    /// visitor, day and type are told apart by them, and reading them through `slots` copied
    /// a whole `Slot` (six retains and releases) per comparison.
    var slotIDs: [SlotIDs] = []

    final class SlotIDs {
        let visitors: StringColumn
        let eventIDs: StringColumn

        init(_ values: EventBatch) {
            visitors = values[string: .visitorID]
            eventIDs = values[string: .eventID]
        }
    }

    init(inputs: [Part], codeColumns: [EventColumn], valueColumns: [EventColumn], remaps: [[[UInt32]]], siteK: Int,
         typeK: Int) {
        self.inputs = inputs
        self.codeColumns = codeColumns
        self.valueColumns = valueColumns
        self.remaps = remaps
        self.siteK = siteK
        self.typeK = typeK
        cursors = inputs.map { _ in Cursor() }
        heads = inputs.map { _ in Key(site: 0, day: 0, type: 0, visitor: 0, time: 0) }
    }

    /// Moves input `k` to its next granule (decoding it into a new slot), or marks it done.
    mutating func advance(_ k: Int) throws(TallyError) {
        let part = inputs[k]
        let g = cursors[k].granule + 1
        guard g < part.footer.granules.count else {
            cursors[k].done = true
            return
        }
        var values = try part.readBatch(valueColumns, granule: g, dictionaries: &cursors[k].dictionaries)
        values.setCount(part.footer.granules[g].rows)
        var codes: [[UInt32]] = []
        for (j, c) in codeColumns.enumerated() {
            guard let raw = try part.codesWithNulls(c, granule: g) else {
                throw .corruption("part \(part.name) has no dictionary codes for \(c.name) in granule \(g)")
            }
            let remap = remaps[j][k]
            codes.append(raw.map { $0 == .max ? .max : remap[Int($0)] })
        }
        let days = values[int: .occurredAt].values.map { Int32(clamping: CivilTime.day(ms: $0)) }
        let visitors = values[string: .visitorID]
        let hashes = (0..<values.count).map { i in visitors.withValue(i) { TallyHash.hash($0) } }
        slots.append(Slot(values: values, codes: codes, days: days, visitorHashes: hashes))
        let sites = codes[siteK], types = codes[typeK], times = values[int: .occurredAt].values
        let keys = (0..<values.count).map {
            Key(site: sites[$0], day: days[$0], type: types[$0], visitor: hashes[$0], time: times[$0])
        }
        slotKeys.append(keys)
        slotIDs.append(SlotIDs(values))
        cursors[k] = Cursor(granule: g, row: 0, rows: values.count, slot: slots.count - 1, done: false,
                            dictionaries: cursors[k].dictionaries)
        if let first = keys.first { heads[k] = first }
    }

    mutating func step(_ k: Int) throws(TallyError) {
        cursors[k].row += 1
        if cursors[k].row == cursors[k].rows {
            try advance(k)
        } else {
            heads[k] = slotKeys[cursors[k].slot][cursors[k].row]
        }
    }

    /// The input whose current row sorts first, and that row.
    func smallest() -> (Int, Int)? {
        var best = -1
        for k in cursors.indices where !cursors[k].done {
            if best < 0 {
                best = k
                continue
            }
            var c = heads[k].leading(heads[best])
            if c == 0 {
                let a = RowRef(batch: UInt32(cursors[k].slot), row: UInt32(cursors[k].row))
                let b = RowRef(batch: UInt32(cursors[best].slot), row: UInt32(cursors[best].row))
                c = compare(a, b)
            }
            if c < 0 { best = k }
        }
        return best < 0 ? nil : (best, cursors[best].row)
    }

    /// Whether two rows are equal on the whole sort key (a duplicate event). Consecutive rows
    /// are most often one visitor's events of a day: their times differ, so neither row's id
    /// bytes are read (comparing them cost 8 % of a server's CPU under HTTP ingest, perf).
    func isDuplicate(_ a: RowRef, _ b: RowRef) -> Bool {
        let ka = slotKeys[Int(a.batch)][Int(a.row)], kb = slotKeys[Int(b.batch)][Int(b.row)]
        return ka == kb && compare(a, b) == 0
    }

    /// The sort-key order of two rows (`batch` = slot): `SortKey.compare` on merged codes.
    func compare(_ a: RowRef, _ b: RowRef) -> Int {
        let i = Int(a.row), j = Int(b.row)
        let ka = slotKeys[Int(a.batch)][i], kb = slotKeys[Int(b.batch)][j]
        let lead = ka.leading(kb)
        if lead != 0 { return lead }
        // The same visitor's events of one type and day: the rest of the key.
        let x = slotIDs[Int(a.batch)], y = slotIDs[Int(b.batch)]
        let v = x.visitors.withValue(i) { p in y.visitors.withValue(j) { ByteOrder.compare(p, $0) } }
        if v != 0 { return v }
        if ka.time != kb.time { return ka.time < kb.time ? -1 : 1 }
        return x.eventIDs.withValue(i) { p in y.eventIDs.withValue(j) { ByteOrder.compare(p, $0) } }
    }

    /// Appends row `ref` as a whole event to `batch` (dictionary columns decoded through the
    /// merged dictionaries).
    func append(_ ref: RowRef, to batch: inout EventBatch, dictionaries: [StringColumn]) {
        let slot = slots[Int(ref.batch)]
        let row = Int(ref.row)
        for c in EventColumn.allCases {
            if let j = codeColumns.firstIndex(of: c) {
                let code = slot.codes[j][row]
                if code == .max {
                    if c.isNullable { batch[string: c].appendNull() } else { batch[string: c].append("") }
                } else {
                    batch[string: c].append(from: dictionaries[j], row: Int(code))
                }
            } else if c.kind == .int64 {
                batch[int: c].append(from: slot.values[int: c], row: row)
            } else {
                batch[string: c].append(from: slot.values[string: c], row: row)
            }
        }
        batch.endRow()
    }

    /// The rows `refs` as one granule: value columns gathered, codes gathered.
    func gather(_ refs: [RowRef]) -> (values: EventBatch, codes: [[UInt32]]) {
        let values = EventBatch.gathering(slots.map(\.values), rows: refs, columns: valueColumns)
        let codes = codeColumns.indices.map { j in refs.map { slots[Int($0.batch)].codes[j][Int($0.row)] } }
        return (values, codes)
    }

    /// Drops slots no cursor (and not `last`) refers to any more, renumbering the rest.
    mutating func compact(keeping last: inout RowRef?) {
        var live = Set(cursors.filter { !$0.done }.map(\.slot))
        if let last { live.insert(Int(last.batch)) }
        var renumber: [Int: Int] = [:]
        var kept: [Slot] = []
        var keptKeys: [[Key]] = []
        var keptIDs: [SlotIDs] = []
        for s in live.sorted() {
            renumber[s] = kept.count
            kept.append(slots[s])
            keptKeys.append(slotKeys[s])
            keptIDs.append(slotIDs[s])
        }
        slots = kept
        slotKeys = keptKeys
        slotIDs = keptIDs
        for k in cursors.indices where !cursors[k].done { cursors[k].slot = renumber[cursors[k].slot]! }
        if let l = last { last = RowRef(batch: UInt32(renumber[Int(l.batch)]!), row: l.row) }
    }
}
