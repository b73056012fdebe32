import Foundation
import Synchronization

/// Reads for the query executor that stay on dictionary codes.
extension Part {
    /// The dictionary codes of `column` in granule `g`, null rows as `UInt32.max`; nil when the
    /// granule is not dictionary-coded (the caller then reads values).
    func codesWithNulls(_ column: EventColumn, granule g: Int) throws(TallyError) -> [UInt32]? {
        try dictionaryCodes(column, granule: g, nullCode: .max)
    }

    /// The dictionary codes of `column` in granule `g` (null rows: `nullCode`, or the stored 0);
    /// nil when the granule is not dictionary-coded.
    func dictionaryCodes(_ column: EventColumn, granule g: Int, nullCode: UInt32?) throws(TallyError) -> [UInt32]? {
        guard let meta = footer.column(column), !meta.dictionary.isNone else { return nil }
        let ref = meta.granules[g]
        let rows = footer.granules[g].rows
        let (encoding, raw) = try readBlock(ref, what: "\(column.name) granule \(g)")
        guard encoding == .dictionaryCodes else { return nil }
        do {
            return try raw.withUnsafeBytes { b in
                try GranuleCodec.decodeCodes(b, rows: rows, dictionarySize: meta.dictionarySize, nullCode: nullCode)
            }
        } catch {
            throw .corruption("malformed \(column.name) granule \(g) in part \(name) at offset \(ref.offset): \(error)")
        }
    }

    /// The dictionary of a dictionary-encoded column (the key dictionaries are kept open; the
    /// others are read once into `cache`, which `read(_:granule:into:dictionaries:)` shares).
    func queryDictionary(_ column: EventColumn, cache: inout [EventColumn: StringColumn]) throws(TallyError) -> StringColumn {
        switch column {
        case .siteID: return sites
        case .eventType: return eventTypes
        default:
            if let d = cache[column] { return d }
            let d = try dictionary(column)
            cache[column] = d
            return d
        }
    }

    /// Granule `g` of the given columns, values decoded.
    func readBatch(_ columns: [EventColumn], granule g: Int, dictionaries: inout [EventColumn: StringColumn])
        throws(TallyError) -> EventBatch
    {
        var b = EventBatch(columns: columns)
        for c in columns { try read(c, granule: g, into: &b, dictionaries: &dictionaries) }
        b.setCount(footer.granules[g].rows)
        return b
    }

    /// Rows `selected` (ascending) of granule `g`: the blocks are read whole, but only those
    /// rows' values are made (an event list's page needs a few rows of each granule it touches;
    /// making all 8,192 rows' strings of ~30 columns was most of `event_list_latest_92d`).
    func readBatch(_ columns: [EventColumn], granule g: Int, rows selected: [Int32],
                   dictionaries: inout [EventColumn: StringColumn]) throws(TallyError) -> EventBatch {
        var b = EventBatch(columns: columns)
        for c in columns where c.kind != .int64 { try read(c, granule: g, into: &b, dictionaries: &dictionaries, selected: selected) }
        let ints = columns.filter { $0.kind == .int64 }
        if !ints.isEmpty {
            let rows = footer.granules[g].rows
            guard selected.allSatisfy({ $0 >= 0 && Int($0) < rows }) else {
                throw .corruption("part \(name): a row outside granule \(g) of \(rows) rows was asked for")
            }
            let whole: EventBatch = try readBatch(ints, granule: g, dictionaries: &dictionaries)
            let picked = whole.gather(selected, columns: ints)
            for c in ints { b[int: c] = picked[int: c] }
        }
        b.setCount(selected.count)
        return b
    }

    /// `TallyHash` of the text of an identifier column's rows (`selected`, or all) in granule
    /// `g`, 0 for empty values — hashed from the binary forms without materializing strings.
    func identifierHashes(_ column: EventColumn, granule g: Int, selected: [Int32]?, occurred: [Int64]?,
                          dictionaries: inout [EventColumn: StringColumn]) throws(TallyError) -> [UInt64] {
        guard let meta = footer.column(column) else { throw .corruption("part \(name) has no column \(column.name)") }
        let ref = meta.granules[g]
        let rows = footer.granules[g].rows
        let (encoding, raw) = try readBlock(ref, what: "\(column.name) granule \(g)")
        let count = selected?.count ?? rows
        func row(_ k: Int) -> Int { selected.map { Int($0[k]) } ?? k }
        do {
            switch encoding {
            case .identifierBinary, .ulidFromOccurred:
                let times = encoding == .ulidFromOccurred ? try occurred ?? readInt64s(.occurredAt, granule: g) : nil
                return try raw.withUnsafeBytes { payload in
                    var r = ByteReader(payload)
                    guard try GranuleCodec.readNulls(&r, rows: rows) == nil else {
                        throw GranuleCodec.Malformed(message: "null bitmap in a binary identifier block")
                    }
                    return try GranuleCodec.identifierTextHashes(&r, encoding: encoding, rows: rows, occurred: times,
                                                                 selected: selected)
                }
            default:
                let b = try readBatch([column], granule: g, dictionaries: &dictionaries)
                let col = b[string: column]
                return (0..<count).map { k in col.withValue(row(k)) { $0.isEmpty ? 0 : TallyHash.hash($0) } }
            }
        } catch let e as TallyError {
            throw e
        } catch {
            throw .corruption("malformed \(column.name) granule \(g) in part \(name) at offset \(ref.offset): \(error)")
        }
    }
}

extension Part {
    /// The rows (of `selected`, else all) whose identifier is one of the texts `wanted`, compared
    /// in binary form where the granule stores them so: nothing decoded to text, nothing hashed
    /// (hashing every id of the granules a visitor's bloom bits let through was a third of
    /// `visitor_events_92d`). A binary id is the canonical text of its form, so a wanted text
    /// matches one exactly when it encodes to the same form and bytes. Nil when the block holds
    /// text (the caller compares texts).
    func identifierRows(_ column: EventColumn, granule g: Int, selected: [Int32]?, occurred: [Int64]?,
                        wanted: [[UInt8]]) throws(TallyError) -> [Int32]? {
        guard let meta = footer.column(column) else { throw .corruption("part \(name) has no column \(column.name)") }
        let ref = meta.granules[g]
        let rows = footer.granules[g].rows
        let (encoding, raw) = try readBlock(ref, what: "\(column.name) granule \(g)")
        guard encoding == .identifierBinary || encoding == .ulidFromOccurred else { return nil }
        var targets: [(form: IdentifierForm, hi: UInt64, lo: UInt64)] = []
        for text in wanted {
            var binary = [UInt8](repeating: 0, count: IdentifierCodec.binaryLength)
            let form = text.withUnsafeBytes { t in binary.withUnsafeMutableBytes { IdentifierCodec.encode(t, into: $0.baseAddress!) } }
            guard let form else { continue }  // not canonical: no binary id decodes to it
            binary.withUnsafeBytes {
                targets.append((form, UInt64(bigEndian: $0.loadUnaligned(as: UInt64.self)),
                                UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self))))
            }
        }
        var found: [Int32] = []
        do {
            guard !targets.isEmpty else { return [] }
            let times = encoding == .ulidFromOccurred ? try occurred ?? readInt64s(.occurredAt, granule: g) : nil
            try raw.withUnsafeBytes { payload in
                var r = ByteReader(payload)
                guard try GranuleCodec.readNulls(&r, rows: rows) == nil else {
                    throw GranuleCodec.Malformed(message: "null bitmap in a binary identifier block")
                }
                try GranuleCodec.forEachIdentifierWords(&r, encoding: encoding, rows: rows, occurred: times,
                                                        selected: selected) { k, hi, lo, form in
                    if targets.contains(where: { $0.hi == hi && $0.lo == lo && $0.form == form }) { found.append(Int32(k)) }
                }
            }
        } catch let e as TallyError {
            throw e
        } catch {
            throw .corruption("malformed \(column.name) granule \(g) in part \(name) at offset \(ref.offset): \(error)")
        }
        return found
    }
}

/// The values of `all` at `selected` (all of them when nil): a granule's column for the rows a
/// scan kept.
func pick<T>(_ all: [T], _ selected: [Int32]?) -> [T] {
    selected.map { $0.map { all[Int($0)] } } ?? all
}

extension Array where Element == Int64 {
    /// The median (the mean of the middle two for an even count); nil when empty.
    /// The median, by selection (Hoare's quickselect) rather than a sort: visit durations of
    /// 1.9M sessions spent 3 % of a session query in `sorted()`.
    var median: Double? {
        guard !isEmpty else { return nil }
        var a = self
        let upper = a.count / 2
        let hi = Double(Self.select(&a, upper))
        if a.count % 2 == 1 { return hi }
        // The lower middle is the largest value left of the upper one after the partitioning.
        let lo = a[..<upper].max()!
        return (Double(lo) + hi) / 2
    }

    /// Rearranges `a` so that `a[k]` is the k-th smallest, smaller-or-equal values before it, and returns it.
    private static func select(_ a: inout [Int64], _ k: Int) -> Int64 {
        var lo = 0
        var hi = a.count - 1
        var rng = SystemRandomNumberGenerator()
        while lo < hi {
            let pivot = a[Int.random(in: lo...hi, using: &rng)]
            var i = lo
            var j = hi
            while i <= j {
                while a[i] < pivot { i += 1 }
                while a[j] > pivot { j -= 1 }
                if i <= j {
                    a.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            if k <= j { hi = j } else if k >= i { lo = i } else { break }
        }
        return a[k]
    }
}

extension Part {
    /// The rows of granule `g` with site code `site` and occurred_at in [from, to): their
    /// indices (nil: all rows) and the granule's occurred_at values; nil when none is.
    func rows(granule g: Int, site: UInt32, from: Int64, to: Int64) throws(TallyError) -> (selected: [Int32]?, times: [Int64])? {
        let meta = footer.granules[g]
        let n = meta.rows
        var selected: [Int32]?
        if !(meta.firstSite == site && meta.lastSite == site) {
            let sites = try readCodes(.siteID, granule: g)
            selected = (0..<n).compactMap { sites[$0] == site ? Int32($0) : nil }
        }
        let times = try readInt64s(.occurredAt, granule: g)
        if !(meta.minTime >= from && meta.maxTime < to) {
            selected = (selected ?? (0..<Int32(n)).map { $0 }).filter { times[Int($0)] >= from && times[Int($0)] < to }
        }
        if let selected, selected.isEmpty { return nil }
        return (selected, times)
    }
}

extension Snapshot {
    /// Runs `body(worker, part)` for every part on `workers` threads, the parts shared out by
    /// size. The first error is thrown (the other workers finish their current part).
    func forEachPartInParallel(workers: Int, _ body: @escaping (Int, Part) throws -> Void) throws {
        let n = parts.count >= 2 ? max(1, min(workers, QueryCores.available)) : 1
        var shares = [[Part]](repeating: [], count: n)
        var load = [Int](repeating: 0, count: n)
        for part in parts.sorted(by: { $0.rows > $1.rows }) {
            let i = load.firstIndex(of: load.min()!)!
            shares[i].append(part)
            load[i] += part.rows
        }
        let errors = (0..<n).map { _ in ScanWorkerBox<(any Error)?>(nil) }
        let failed = Mutex(false)
        let sharesBox = UnsafeSendable(shares)
        let bodyBox = UnsafeSendable(body)
        DispatchQueue.concurrentPerform(iterations: n) { i in
            do {
                for part in sharesBox.value[i] {
                    if failed.withLock({ $0 }) { return }
                    try bodyBox.value(i, part)
                }
            } catch {
                errors[i].state = error
                failed.withLock { $0 = true }
            }
        }
        if let e = errors.compactMap(\.state).first { throw e }
    }

    /// `body(worker, part, granules)` over the granules `plan` does not prune, shared between
    /// `workers` threads by count (`QueryExecutor.share`: a part may be split between them —
    /// whole parts per worker left a range inside one month on one core); the pruning's counts
    /// come back. The first error is thrown.
    func forEachPrunedPartInParallel(_ plan: ScanPlan, workers: Int, _ body: @escaping (Int, Part, [Int]) throws -> Void)
        throws -> ScanStats
    {
        var stats = ScanStats()
        var work: [(part: Part, granules: [Int])] = []
        for part in parts {
            stats.parts += 1
            guard let granules = try plan.granules(of: part, stats: &stats) else {
                stats.partsSkipped += 1
                continue
            }
            stats.granulesRead += granules.count
            if !granules.isEmpty { work.append((part, granules)) }
        }
        let total = work.reduce(0) { $0 + $1.granules.count }
        let n = total >= 8 ? max(1, min(workers, QueryCores.available)) : 1
        let shares = UnsafeSendable(QueryExecutor.share(work, total: total, workers: n))
        let errors = (0..<n).map { _ in ScanWorkerBox<(any Error)?>(nil) }
        let failed = Mutex(false)
        let bodyBox = UnsafeSendable(body)
        DispatchQueue.concurrentPerform(iterations: n) { i in
            do {
                for (part, granules) in shares.value[i] {
                    if failed.withLock({ $0 }) { return }
                    try bodyBox.value(i, part, granules)
                }
            } catch {
                errors[i].state = error
                failed.withLock { $0 = true }
            }
        }
        if let e = errors.compactMap(\.state).first { throw e }
        return stats
    }
}

extension Part {
    /// Opens a part file for the admin CLI (`tally inspect PART`, `tally verify PART`).
    public static func openForInspection(path: String, name: String, number: Int) throws(TallyError) -> Part {
        try open(path: path, name: name, number: number, fs: PosixFileSystem())
    }

    /// The columns with bloom filters, in the order of `GranuleMeta.blooms`.
    public static var bloomFilterColumns: [EventColumn] { PartFormat.bloomColumns }

    /// The size in bits of a granule's bloom filter on `column`, or nil if it has none.
    public func bloomFilterBits(_ column: EventColumn, granule g: Int) throws(TallyError) -> Int? {
        try bloom(column, granule: g).map { $0.numBlocks * 256 }
    }
}

/// A part's dictionary codes of one column → codes of a query's value space, each translated
/// once (a part's dictionary of paths has thousands of entries; a query meets some of them).
struct CodeTranslator {
    let dictionary: StringColumn
    let space: ValueSpace
    var map: [UInt32]

    init(_ dictionary: StringColumn, _ space: ValueSpace) {
        self.dictionary = dictionary
        self.space = space
        map = Array(repeating: .max, count: dictionary.count + 1)
        map[dictionary.count] = space.code(.null)
    }

    /// `raw` holds part codes, `UInt32.max` for null rows.
    mutating func codes(_ raw: [UInt32]) -> [UInt32] {
        let nullIndex = dictionary.count
        let dictionary = dictionary
        let space = space
        return map.withUnsafeMutableBufferPointer { m in
            raw.map { r in
                let i = r == .max ? nullIndex : Int(r)
                if m[i] == .max { m[i] = dictionary.withValue(i) { space.code(bytes: $0) } }
                return m[i]
            }
        }
    }
}
