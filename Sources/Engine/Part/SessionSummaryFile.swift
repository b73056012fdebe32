import Foundation
import Synchronization

/// The per-session summaries of one raw part: `NAME.sessions` beside `NAME.part` (FORMAT.md,
/// "Session summaries"). For each site of the part, one partial summary per session_id of
/// the part's rows: first and last occurred_at, events, pageviews, entry and exit pageview
/// (time and page), the first event's visitor and dimensions, and which event types occurred.
/// A session whose events lie in several parts has a partial summary in each; session queries
/// combine them (`SessionExecutor.Builder.absorb`) exactly as they combine the sessions two
/// scan workers assembled from raw rows, so both paths give the same sessions.
///
/// The file is derived data: written by the flush from the rows in memory
/// (`summarize(rows:…)`), or built from the part's rows after the part is written (by the
/// store's background work, `EventStore.buildSessionSummaries()`), deleted with the part, and
/// rebuilt when missing or unreadable. A part without one is read raw.
public final class SessionSummaryFile: Sendable {
    static let version: UInt32 = 1
    /// The part file's frame with the magics "TLYSESS1" and "TLYSEND1".
    static let frame = FileFrame(kind: "session summary file", magic: Array("TLYSESS1".utf8),
                                 endMagic: Array("TLYSEND1".utf8), versions: version...version)
    static let fileExtension = ".sessions"
    /// Sessions a block can hold, in order of start: a query reads the blocks whose sessions
    /// can touch its range.
    static let chunkSessions = 1 << 16
    /// Sessions per block written (tests lower it). A merge or a query holds, besides its
    /// window, the current block of every part it reads (their times overlap): with blocks of
    /// 65,536 a merge of 8 parts held ~500k sessions (~90 MB) whatever the window (BENCHMARKS.md,
    /// fifteenth session).
    static let blockSessions = Atomic<Int>(1 << 13)
    /// Sessions a merge's `combine` holds before it moves out those that are whole (tests
    /// lower it).
    static let combineWindow = Atomic<Int>(1 << 14)
    /// Event types a summary can list per session (a bit each); a part with more types keeps none.
    static let maxTypes = 64
    /// The first-event dimensions a summary keeps, in this order.
    static let attributes: [EventColumn] = SessionExecutor.attributeColumns.sorted()

    /// One block: up to `chunkSessions` sessions of one site.
    public struct Chunk: Sendable {
        public let site: String
        public let sessions: Int
        public let minStart: Int64
        public let maxStart: Int64
        public let maxEnd: Int64
        public let block: BlockRef
    }

    public let name: String
    public let fileSize: Int
    public let chunks: [Chunk]
    /// Whether each session's event types are listed (false when the part has more than 64 types).
    public let hasTypes: Bool
    let file: any StoredFile

    private init(name: String, fileSize: Int, chunks: [Chunk], hasTypes: Bool, file: any StoredFile) {
        self.name = name
        self.fileSize = fileSize
        self.chunks = chunks
        self.hasTypes = hasTypes
        self.file = file
    }

    deinit { file.close() }

    /// `NAME.sessions` for `NAME.part`.
    static func path(forPart partPath: String) -> String {
        String(partPath.dropLast(PartFormat.fileExtension.count)) + fileExtension
    }

    /// The part file name a summary file name belongs to, or nil if `name` is not one.
    static func partName(of name: String) -> String? {
        name.hasSuffix(fileExtension) ? String(name.dropLast(fileExtension.count)) + PartFormat.fileExtension : nil
    }

    // MARK: Reading

    /// Opens the summaries of a part, checking that they were built from this very part (its
    /// file size and footer checksum).
    static func open(path: String, partFileSize: Int, partFooterCRC: UInt32, fs: any FileSystem) throws(TallyError)
        -> SessionSummaryFile
    {
        let name = String(path.split(separator: "/").last ?? "")
        let file = try fs.openForReading(path)
        do throws(TallyError) {
            let frame = try Self.frame.open(file, name: name)
            let (size, footerOffset, footer) = (frame.size, frame.footerOffset, frame.footer)
            var chunks: [Chunk] = []
            var hasTypes = false
            do {
                try footer.withUnsafeBytes { b in
                    var r = ByteReader(b)
                    let partSize = try r.u64()
                    let partCRC = try r.u32()
                    guard partSize == UInt64(partFileSize), partCRC == partFooterCRC else {
                        throw TallyError(.corruption, "session summaries \(name) were built from another part file")
                    }
                    hasTypes = try r.u8() == 1
                    let n = try r.count(limit: 1 << 24)
                    for _ in 0..<n {
                        let site = try r.string()
                        let sessions = try r.count()
                        let minStart = try r.i64()
                        let maxStart = try r.i64()
                        let maxEnd = try r.i64()
                        let offset = try r.count(limit: footerOffset)
                        let length = try r.count(limit: footerOffset)
                        guard offset >= PartFormat.headerSize, offset + length <= footerOffset else {
                            throw TallyError(.corruption, "session summaries \(name): block ref beyond the footer")
                        }
                        chunks.append(Chunk(site: site, sessions: sessions, minStart: minStart, maxStart: maxStart,
                                            maxEnd: maxEnd, block: BlockRef(offset: offset, length: length)))
                    }
                    guard r.isAtEnd else { throw TallyError(.corruption, "session summaries \(name): bytes after the footer") }
                }
            } catch let e as TallyError {
                throw e
            } catch {
                throw .corruption("malformed footer in session summaries \(name) at offset \(footerOffset): \(error)")
            }
            return SessionSummaryFile(name: name, fileSize: size, chunks: chunks, hasTypes: hasTypes, file: file)
        } catch {
            file.close()
            throw error
        }
    }

    /// The sessions of one block.
    struct Sessions {
        var hash: [UInt64] = []
        var visitor: [UInt64] = []
        var start: [Int64] = []
        var end: [Int64] = []
        var events: [Int32] = []
        var pageviews: [Int32] = []
        /// Entry and exit pageview time (`.max`/`.min` without pageviews) and page (a code of `pages`).
        var entryTime: [Int64] = []
        var exitTime: [Int64] = []
        var entryPage: [UInt32] = []
        var exitPage: [UInt32] = []
        var pages: [QueryValue] = []
        /// Per attribute (in `SessionSummaryFile.attributes` order): its values and each session's code.
        var attributeValues: [[QueryValue]] = []
        var attributeCodes: [[UInt32]] = []
        /// Event type names and, per session, a bit per type it had (empty when not kept).
        var types: [String] = []
        var typeBits: [UInt64] = []
        var count: Int { hash.count }
    }

    func read(_ chunk: Chunk) throws(TallyError) -> Sessions {
        try decode(checked: try readChecked(chunk), chunk)
    }

    /// The stored bytes of a chunk's block, its header and checksum checked (not decompressed).
    func readChecked(_ chunk: Chunk) throws(TallyError) -> [UInt8] {
        let ref = chunk.block
        let bytes = try Part.readStoredBlock(ref, what: "session summaries", file: file, name: name)
        let encoding = try bytes.withBytes { (b) throws(TallyError) -> ColumnEncoding in
            try Part.checkBlock(b, offset: ref.offset, what: "session summaries", name: name).1
        }
        guard encoding == .sessionSummaries else {
            throw .corruption("session summaries \(name): block at offset \(ref.offset) has encoding \(encoding)")
        }
        return bytes
    }

    /// The sessions of a block read by `readChecked`.
    func decode(checked bytes: [UInt8], _ chunk: Chunk) throws(TallyError) -> Sessions {
        let (_, raw) = try Part.decodeBlock(bytes, offset: chunk.block.offset, what: "session summaries", name: name,
                                            checksumChecked: true)
        do {
            return try raw.withUnsafeBytes { try Self.decode($0) }
        } catch let e as TallyError {
            throw e
        } catch {
            throw .corruption("malformed session summaries block in \(name) at offset \(chunk.block.offset): \(error)")
        }
    }

    static func decode(_ bytes: UnsafeRawBufferPointer) throws -> Sessions {
        var r = ByteReader(bytes)
        var s = Sessions()
        let n = try r.count(limit: chunkSessions)
        s.hash.reserveCapacity(n)
        s.visitor.reserveCapacity(n)
        for _ in 0..<n { s.hash.append(try r.u64()) }
        for _ in 0..<n { s.visitor.append(try r.u64()) }
        var previous: Int64 = 0
        for _ in 0..<n {
            previous &+= try r.zigzag()
            s.start.append(previous)
        }
        for i in 0..<n { s.end.append(s.start[i] &+ Int64(try r.count(limit: .max))) }
        for _ in 0..<n { s.events.append(Int32(try r.count())) }
        for _ in 0..<n { s.pageviews.append(Int32(try r.count())) }
        let pages = try readDictionary(&r)
        s.pages = pages
        s.entryTime = Array(repeating: .max, count: n)
        s.exitTime = Array(repeating: .min, count: n)
        s.entryPage = Array(repeating: 0, count: n)
        s.exitPage = Array(repeating: 0, count: n)
        for i in 0..<n where s.pageviews[i] > 0 {
            s.entryTime[i] = s.start[i] &+ Int64(try r.count(limit: .max))
            s.exitTime[i] = s.start[i] &+ Int64(try r.count(limit: .max))
            s.entryPage[i] = UInt32(try r.count(limit: pages.count - 1))
            s.exitPage[i] = UInt32(try r.count(limit: pages.count - 1))
        }
        let attributeCount = try r.count(limit: 64)
        guard attributeCount == attributes.count else {
            throw TallyError(.corruption, "\(attributeCount) dimensions in a summary block, expected \(attributes.count)")
        }
        for k in 0..<attributeCount {
            let id = Int(try r.u16())
            guard id == attributes[k].rawValue else {
                throw TallyError(.corruption, "summary dimension \(k) is column \(id), expected \(attributes[k].name)")
            }
            let values = try readDictionary(&r)
            var codes: [UInt32] = []
            codes.reserveCapacity(n)
            for _ in 0..<n { codes.append(UInt32(try r.count(limit: values.count - 1))) }
            s.attributeValues.append(values)
            s.attributeCodes.append(codes)
        }
        if try r.u8() == 1 {
            let t = try r.count(limit: maxTypes)
            for _ in 0..<t { s.types.append(try r.string()) }
            for _ in 0..<n { s.typeBits.append(try r.varint()) }
        }
        guard r.isAtEnd else { throw TallyError(.corruption, "\(r.remaining) bytes after a summary block") }
        return s
    }

    /// Values coded by position: varint count, then each as varint (length + 1) and bytes, 0 for null.
    static func readDictionary(_ r: inout ByteReader) throws -> [QueryValue] {
        let m = try r.count(limit: 1 << 26)
        var values: [QueryValue] = []
        values.reserveCapacity(m)
        for _ in 0..<m {
            let length = try r.count()
            if length == 0 {
                values.append(.null)
            } else {
                values.append(.string(String(decoding: try r.raw(length - 1), as: UTF8.self)))
            }
        }
        return values
    }

    static func writeDictionary(_ values: [QueryValue], _ w: inout ByteWriter) {
        w.varint(UInt64(values.count))
        for v in values {
            if case .string(let s) = v {
                w.varint(UInt64(s.utf8.count + 1))
                w.raw(Array(s.utf8))
            } else {
                w.varint(0)
            }
        }
    }

    // MARK: Writing

    /// Builds the summaries of `part` from its rows and writes them beside it, atomically
    /// (`NAME.sessions.tmp`, fsync, rename, directory fsync). Uses both cores.
    static func build(for part: Part, fs: any FileSystem) throws(TallyError) -> SessionSummaryFile {
        let typeNames = (0..<part.eventTypes.count).map { part.eventTypes.string(at: $0) ?? "" }
        return try write(try summarize(part), types: typeNames.count <= maxTypes ? typeNames : nil, forPart: part, fs: fs)
    }

    /// An empty builder of a summary file's sessions: its attributes, and conversions by event
    /// type when the part has at most `maxTypes` of them.
    static func builder(typeNames: [String]) -> SessionExecutor.Builder {
        SessionExecutor.Builder(attributes: attributes.map { .column($0) },
                                conversionTypes: typeNames.count <= maxTypes ? typeNames : [], zone: .utc, maxSessions: .max,
                                keepIDs: false)
    }

    /// Builders of jobs in site order (a site's halves adjacent) joined into one per site.
    private static func joinSites(_ sites: [String], _ built: [Result<SessionExecutor.Builder, TallyError>]) throws(TallyError)
        -> [(site: String, builder: SessionExecutor.Builder)]
    {
        var bySite: [(site: String, builder: SessionExecutor.Builder)] = []
        for (site, result) in zip(sites, built) {
            let builder = try result.get()
            if let last = bySite.last, last.site == site {
                do { try last.builder.absorb(builder) } catch { throw TallyError(.corruption, error.message) }
            } else {
                bySite.append((site, builder))
            }
        }
        return bySite
    }

    /// Each site's sessions of `part`, assembled from its rows on both cores.
    static func summarize(_ part: Part) throws(TallyError) -> [(site: String, builder: SessionExecutor.Builder)] {
        let typeNames = (0..<part.eventTypes.count).map { part.eventTypes.string(at: $0) ?? "" }
        var jobs: [(site: UInt32, granules: [Int])] = []
        for s in 0..<UInt32(part.sites.count) {
            let granules = part.footer.granules.indices.filter {
                part.footer.granules[$0].firstSite <= s && s <= part.footer.granules[$0].lastSite
            }
            if granules.isEmpty { continue }
            // Two halves, one per core, combined after.
            let half = (granules.count + 1) / 2
            jobs.append((s, Array(granules[..<half])))
            if granules.count > half { jobs.append((s, Array(granules[half...]))) }
        }
        // The dictionaries every job translates codes through, decoded once: each job (a site's
        // half) decoded its own, 3 % of `tally ingest`'s CPU (perf --call-graph dwarf, 1M events).
        var dictionaries: [EventColumn: StringColumn] = [:]
        for c in Set([EventColumn.pagePath] + attributes) where c != .siteID && c != .eventType {
            if let meta = part.footer.column(c), !meta.dictionary.isNone { _ = try part.queryDictionary(c, cache: &dictionaries) }
        }
        let shared = UnsafeSendable(dictionaries)
        let partBox = UnsafeSendable(part)
        let jobBox = UnsafeSendable(jobs)
        let built = parallelMap(Array(jobs.indices)) { j -> UnsafeSendable<Result<SessionExecutor.Builder, TallyError>> in
            let (site, granules) = jobBox.value[j]
            let part = partBox.value
            let builder = builder(typeNames: typeNames)
            do {
                try builder.add(part: part, granules: granules, site: part.sites.string(at: Int(site)) ?? "",
                                from: .min, to: .max, deadline: .unlimited, dictionaries: shared.value)
                return UnsafeSendable(.success(builder))
            } catch let e as TallyError {
                return UnsafeSendable(.failure(e))
            } catch {
                return UnsafeSendable(.failure(TallyError(.corruption, "part \(part.name): \(error)")))
            }
        }
        return try joinSites(jobs.map { part.sites.string(at: Int($0.site)) ?? "" }, built.map(\.value))
    }

    /// The columns `summarize(rows:…)` codes through the part writer's dictionaries.
    static let flushColumns: Set<EventColumn> = Set(attributes + [.pagePath, .eventType])

    /// Each site's sessions of a part being flushed, assembled from the rows it was written from
    /// (`rows`, in the part's order) on both cores: the same summaries as `summarize(part)`
    /// reads from the part's blocks, without reading them back (decoding the flushed part's
    /// codes and ids again was ~5 % of a bulk load's CPU; BENCHMARKS.md, sixteenth session).
    /// Text columns with a part dictionary (`PartWriter.dictionary`) are coded once per
    /// distinct value through it; `visitors` and `sessions` are the ids' TallyHash when the
    /// caller has them (a flush's rollups hash them too), else they are hashed here.
    static func summarize(rows b: EventBatch, typeNames: [String], dictionaries: [EventColumn: PartWriter.PartDictionary],
                          visitors: [UInt64]?, sessions: [UInt64]?) throws(TallyError)
        -> [(site: String, builder: SessionExecutor.Builder)]
    {
        let n = b.count
        let keepTypes = typeNames.count <= maxTypes
        // Rows come grouped by site (the sort key's first column): one run per site, each split
        // in two halves (one per core) when big, combined after.
        let siteColumn = b[string: .siteID]
        var jobs: [(site: String, rows: Range<Int>)] = []
        var s = 0
        while s < n {
            var e = s + 1
            siteColumn.withValue(s) { first in
                while e < n && siteColumn.withValue(e, { ByteOrder.equal($0, first) }) { e += 1 }
            }
            let site = siteColumn.string(at: s) ?? ""
            if e - s >= 2 * PartFormat.defaultGranuleRows {
                let mid = s + (e - s) / 2
                jobs.append((site, s..<mid))
                jobs.append((site, mid..<e))
            } else {
                jobs.append((site, s..<e))
            }
            s = e
        }
        let typeIndex = Dictionary(typeNames.enumerated().map { (Array($1.utf8), $0) }, uniquingKeysWith: { a, _ in a })
        let typePageview = typeNames.map { QueryMetric.pageviewTypes.contains($0) } + [false]
        let typeBits = typeNames.indices.map { keepTypes ? UInt64(1) << UInt64($0) : 0 } + [0]
        let input = UnsafeSendable((b, dictionaries, visitors, sessions))
        let ranges = jobs.map(\.rows)
        let built = parallelMap(Array(jobs.indices)) { j -> UnsafeSendable<Result<SessionExecutor.Builder, TallyError>> in
            let (b, dictionaries, visitors, sessions) = input.value
            let range = ranges[j]
            let builder = builder(typeNames: typeNames)
            var rows = SessionExecutor.Builder.Rows(count: range.count)
            rows.times = Array(b[int: .occurredAt].values[range])
            func hashes(_ given: [UInt64]?, _ c: EventColumn) -> [UInt64] {
                if let given { return Array(given[range]) }
                let col = b[string: c]
                return range.map { r in col.withValue(r) { $0.isEmpty ? 0 : TallyHash.hash($0) } }
            }
            rows.sessions = hashes(sessions, .sessionID)
            rows.visitors = hashes(visitors, .visitorID)
            // Each row's event type as an index into `typeNames` (its count: none of them): the
            // part dictionary's code is that index (the part lists its types in code order).
            let nullType = UInt32(typeNames.count)
            let typeColumn = b[string: .eventType]
            let typeCodes = dictionaries[.eventType]?.codes
            let types: [UInt32] = range.map { r in
                if typeColumn.isNull(r) { return nullType }
                if let typeCodes { return typeCodes[r] }
                return typeColumn.withValue(r) { v in typeIndex[Array(v)].map(UInt32.init) ?? nullType }
            }
            for k in 0..<range.count {
                rows.pageview[k] = typePageview[Int(types[k])]
                rows.conversions[k] = typeBits[Int(types[k])]
            }
            rows.pages = codes(b, .pagePath, range, dictionaries[.pagePath]) { value in
                value.map { builder.pages.code(bytes: $0) } ?? builder.pages.code(.null)
            }
            rows.attributes = attributes.enumerated().map { i, c in
                let space = builder.attributeSpaces[i]
                return codes(b, c, range, dictionaries[c]) { value in value.map { space.code(bytes: $0) } ?? space.code(.null) }
            }
            do throws(QueryError) {
                try builder.fold(rows, ids: nil)
                return UnsafeSendable(.success(builder))
            } catch {
                return UnsafeSendable(.failure(TallyError(.corruption, error.message)))
            }
        }
        return try joinSites(jobs.map(\.site), built.map(\.value))
    }

    /// Each row of `range` of text column `c` coded by `code` (given the value's bytes, nil for
    /// a null): once per distinct value through the part dictionary `d` when there is one.
    private static func codes(_ b: EventBatch, _ c: EventColumn, _ range: Range<Int>, _ d: PartWriter.PartDictionary?,
                              _ code: (UnsafeRawBufferPointer?) -> UInt32) -> [UInt32]
    {
        let col = b[string: c]
        let nulls = col.nulls
        guard let d else {
            return range.map { r in nulls?[r] == true ? code(nil) : col.withValue(r) { code($0) } }
        }
        let unset = UInt32.max
        var nullCode: UInt32?
        var map = [UInt32](repeating: unset, count: d.order.count)
        return range.map { r in
            if nulls?[r] == true {
                if nullCode == nil { nullCode = code(nil) }
                return nullCode!
            }
            let k = Int(d.codes[r])
            if map[k] == unset { map[k] = d.values.withValue(Int(d.order[k])) { code($0) } }
            return map[k]
        }
    }

    /// Writes the summaries of a part just flushed from `rows` (`summarize(rows:…)`) beside it.
    static func build(for part: Part, rows: EventBatch, dictionaries: [EventColumn: PartWriter.PartDictionary],
                      visitors: [UInt64]?, sessions: [UInt64]?, fs: any FileSystem) throws(TallyError) -> SessionSummaryFile
    {
        let typeNames = (0..<part.eventTypes.count).map { part.eventTypes.string(at: $0) ?? "" }
        let sites = try summarize(rows: rows, typeNames: typeNames, dictionaries: dictionaries, visitors: visitors,
                                  sessions: sessions)
        return try write(sites, types: typeNames.count <= maxTypes ? typeNames : nil, forPart: part, fs: fs)
    }

    /// Problems of these summaries against the part's rows: unreadable blocks, blocks out of
    /// order, and per site a different number of distinct session ids, events or pageviews.
    /// For `tally verify`.
    func problems(against part: Part) -> [(offset: Int?, message: String)] {
        var out: [(Int?, String)] = []
        var totals: [String: (events: Int, pageviews: Int)] = [:]
        // Sessions are counted by distinct session_id: a merge writes pieces of one session
        // more than `sessionGap` apart as separate summaries (their events and pageviews add).
        var ids: [String: Set<UInt64>] = [:]
        for chunk in chunks {
            let s: Sessions
            do { s = try read(chunk) } catch {
                out.append((chunk.block.offset, error.message))
                continue
            }
            if s.count != chunk.sessions { out.append((chunk.block.offset, "block holds \(s.count) sessions, the footer says \(chunk.sessions)")) }
            if s.start.first != chunk.minStart || s.start.last != chunk.maxStart || s.end.max() != chunk.maxEnd
                || zip(s.start, s.start.dropFirst()).contains(where: { $0 > $1 }) {
                out.append((chunk.block.offset, "block's session starts and ends disagree with the footer or are out of order"))
            }
            ids[chunk.site, default: []].formUnion(s.hash)
            var t = totals[chunk.site] ?? (0, 0)
            t.events += s.events.reduce(0) { $0 + Int($1) }
            t.pageviews += s.pageviews.reduce(0) { $0 + Int($1) }
            totals[chunk.site] = t
        }
        do {
            for (site, b) in try Self.summarize(part) {
                let t = totals[site] ?? (0, 0)
                let held = (ids[site]?.count ?? 0, t.events, t.pageviews)
                let expected = (b.count, b.events.reduce(0) { $0 + Int($1) }, b.pageviews.reduce(0) { $0 + Int($1) })
                if held != expected {
                    out.append((nil, "site \(site): summaries hold \(held.0) sessions, \(t.events) events, \(t.pageviews) pageviews; "
                                    + "the part's rows \(expected.0), \(expected.1), \(expected.2)"))
                }
            }
        } catch {
            out.append((nil, "the part's rows could not be summarized: \(error.message)"))
        }
        return out
    }

    /// The summaries of a merged part from those of its inputs (when no rows were dropped as
    /// duplicates, the merged part holds exactly their rows): each site's partial sessions
    /// combined, without reading a row. Nil when an input has none.
    ///
    /// One site at a time, and within a site in bounded memory: the inputs' blocks are read in
    /// order of first start, and once `window` sessions are held, every session that ended
    /// more than `sessionGap` before the next block's first start is whole (no piece of it
    /// can follow without a longer gap) and moves to the output, which is written a block at a
    /// time once nothing held or still to read can start before it — or, behind a session held
    /// for longer than `4 × sessionGap`, once nothing to read can (such a session is written
    /// later, in a block that starts before blocks already written). Pieces of one session
    /// further apart than `sessionGap` stay separate sessions, as a query holding one block at
    /// a time counts them. Combining every site at once held all of a merged part's sessions
    /// (61 MB of a 10M-event `tally ingest`'s 282 MB peak heap, heaptrack); combining a whole
    /// site held all of its sessions; holding those of a day (a `sessionGap` of 24 hours),
    /// plus the hash of every session written to notice a split one, still held 315 MB in one
    /// merge under sustained ingest into one property (jemalloc heap profile of the 10-minute
    /// run at 50k events/s, peak RSS 512–554 MiB unprofiled; BENCHMARKS.md, fifteenth session).
    static func combine(_ inputs: [Part], into merged: Part, fs: any FileSystem) throws(TallyError) -> SessionSummaryFile? {
        let window = max(1, combineWindow.load(ordering: .relaxed))
        let files = inputs.compactMap(\.sessionSummaries)
        guard files.count == inputs.count else { return nil }
        let typeNames = (0..<merged.eventTypes.count).map { merged.eventTypes.string(at: $0) ?? "" }
        let keepTypes = typeNames.count <= maxTypes && files.allSatisfy(\.hasTypes)
        // Each site's (file, chunk) pairs, grouped once.
        var bySite: [String: [(file: Int, chunk: Chunk)]] = [:]
        for (f, file) in files.enumerated() {
            for chunk in file.chunks { bySite[chunk.site, default: []].append((f, chunk)) }
        }
        let gap = SessionExecutor.sessionGap
        return try Writer.write(forPart: merged, types: keepTypes ? typeNames : nil, fs: fs) { (writer) throws(TallyError) in
            for site in bySite.keys.sorted() {
                let held = builder(typeNames: keepTypes ? typeNames : [])
                var out = held.sharingSibling()
                var moveAt = window
                let blocks = bySite[site]!.sorted { $0.chunk.minStart < $1.chunk.minStart }
                // Sessions go out once whole (ended `gap` before every block not yet read), and
                // are written once no session still held or to come can start before them (the
                // file is then in order of start), unless one held started more than 4 × gap
                // before the next block: a long session delays writing by that much at most.
                func move(before cutoff: Int64, nextStart: Int64) throws(TallyError) {
                    held.move(endingBefore: cutoff, to: out)
                    let bound = min(nextStart, max(held.start.min() ?? .max, nextStart - 4 * gap))
                    out = try writer.add(site: site, out, startingBefore: bound)
                }
                for (k, (f, chunk)) in blocks.enumerated() {
                    let file = files[f]
                    let sessions = try file.read(chunk)
                    do throws(QueryError) {
                        try held.absorb(sessions, from: .min, to: .max)
                    } catch {
                        throw TallyError(.corruption, "\(file.name): \(error.message)")
                    }
                    if held.count >= moveAt && k + 1 < blocks.count {
                        let next = blocks[k + 1].chunk.minStart
                        try move(before: next - gap, nextStart: next)
                        moveAt = max(window, 2 * held.count)
                    }
                }
                try move(before: .max, nextStart: .max)
            }
        }
    }

    static func write(_ sites: [(site: String, builder: SessionExecutor.Builder)], types: [String]?, forPart part: Part,
                      fs: any FileSystem) throws(TallyError) -> SessionSummaryFile
    {
        try Writer.write(forPart: part, types: types, fs: fs) { (writer) throws(TallyError) in
            for (site, b) in sites { try writer.add(site: site, b) }
        }
    }

    /// Writes a summary file site by site, each block appended to the file as it is made
    /// (`NAME.sessions.tmp`; `finish` writes the footer, fsyncs and renames it into place).
    struct Writer {
        let part: Part
        let path: String
        let temporary: String
        let types: [String]?
        let file: any StoredFile
        var offset = 0
        var chunks: [Chunk] = []

        /// Writes the summary file of `part` with the sites `fill` adds; on an error, nothing is
        /// left behind.
        static func write(forPart part: Part, types: [String]?, fs: any FileSystem,
                          _ fill: (inout Writer) throws(TallyError) -> Void) throws(TallyError) -> SessionSummaryFile {
            var writer = try Writer(forPart: part, types: types, fs: fs)
            do throws(TallyError) {
                try fill(&writer)
                return try writer.finish(fs: fs)
            } catch {
                writer.abandon(fs: fs)
                throw error
            }
        }

        init(forPart part: Part, types: [String]?, fs: any FileSystem) throws(TallyError) {
            self.part = part
            self.types = types
            path = SessionSummaryFile.path(forPart: part.path)
            temporary = path + PartFormat.temporarySuffix
            file = try fs.openForWriting(temporary, truncate: true)
            var header = ByteWriter(capacity: 16)
            frame.appendHeader(version: version, to: &header)
            do throws(TallyError) { try file.append(header.bytes) } catch {
                abandon(fs: fs)
                throw error
            }
            offset = header.count
        }

        /// Appends the blocks of one site's sessions (sites in byte order, each once).
        mutating func add(site: String, _ b: SessionExecutor.Builder) throws(TallyError) {
            _ = try add(site: site, b, startingBefore: .max)
        }

        /// Appends blocks of `b`'s sessions in order of start (then hash): with `bound` .max
        /// all of them, else as many full blocks as those starting before `bound` make (the
        /// caller's bound: no session still to read starts before it, nor one held, unless held
        /// for long). Returns a builder, sharing `b`'s values, with the sessions not written.
        mutating func add(site: String, _ b: SessionExecutor.Builder, startingBefore bound: Int64) throws(TallyError)
            -> SessionExecutor.Builder
        {
            let order = (0..<b.count).sorted { b.start[$0] != b.start[$1] ? b.start[$0] < b.start[$1] : b.sessionHash[$0] < b.sessionHash[$1] }
            let perBlock = min(chunkSessions, max(1, SessionSummaryFile.blockSessions.load(ordering: .relaxed)))
            var written = order.count
            if bound != .max {
                let ready = order.firstIndex { b.start[$0] >= bound } ?? order.count
                written = ready / perBlock * perBlock
                if written == 0 { return b }
            }
            let rest = b.sharingSibling()
            for j in order[written...] { rest.append(j, of: b) }
            var from = 0
            while from < written {
                let slice = order[from..<min(written, from + perBlock)]
                let payload = encode(b, Array(slice), types: types)
                let block = PartWriter.frame(payload, codec: .zstd, encoding: .sessionSummaries, level: Codec.zstdLevel)
                chunks.append(Chunk(site: site, sessions: slice.count, minStart: b.start[slice.first!],
                                    maxStart: b.start[slice.last!], maxEnd: slice.map { b.end[$0] }.max()!,
                                    block: BlockRef(offset: offset, length: block.count)))
                try file.append(block)
                offset += block.count
                from = slice.endIndex
            }
            return rest
        }

        /// Writes the footer and trailer, fsyncs, renames the file into place and opens it.
        func finish(fs: any FileSystem) throws(TallyError) -> SessionSummaryFile {
            var footer = ByteWriter(capacity: 64 + chunks.count * 48)
            footer.u64(UInt64(part.fileSize))
            footer.u32(part.footerCRC)
            footer.u8(types == nil ? 0 : 1)
            footer.varint(UInt64(chunks.count))
            for c in chunks {
                footer.string(c.site)
                footer.varint(UInt64(c.sessions))
                footer.i64(c.minStart)
                footer.i64(c.maxStart)
                footer.i64(c.maxEnd)
                footer.varint(UInt64(c.block.offset))
                footer.varint(UInt64(c.block.length))
            }
            var tail = ByteWriter(capacity: footer.count + 32)
            frame.appendFooter(footer.bytes, at: offset, to: &tail)
            try file.append(tail.bytes)
            try file.sync()
            file.close()
            try fs.rename(temporary, to: path)
            try fs.syncDirectory(String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]))
            return try open(path: path, partFileSize: part.fileSize, partFooterCRC: part.footerCRC, fs: fs)
        }

        /// Closes and removes the temporary file (after a failure).
        func abandon(fs: any FileSystem) {
            file.close()
            try? fs.remove(temporary)
        }
    }

    /// One block's payload: the sessions `rows` of builder `b` (in order of start).
    static func encode(_ b: SessionExecutor.Builder, _ rows: [Int], types: [String]?) -> [UInt8] {
        var w = ByteWriter(capacity: rows.count * 48)
        w.varint(UInt64(rows.count))
        for s in rows { w.u64(b.sessionHash[s]) }
        for s in rows { w.u64(b.visitor[s]) }
        var previous: Int64 = 0
        for s in rows {
            w.zigzag(b.start[s] &- previous)
            previous = b.start[s]
        }
        for s in rows { w.varint(UInt64(b.end[s] - b.start[s])) }
        for s in rows { w.varint(UInt64(b.events[s])) }
        for s in rows { w.varint(UInt64(b.pageviews[s])) }
        // Block-local dictionaries: only the values these sessions use.
        func local(_ space: [QueryValue], _ codes: [UInt32]) -> (values: [QueryValue], codes: [UInt32]) {
            var map = [UInt32](repeating: .max, count: space.count)
            var values: [QueryValue] = []
            let out = codes.map { c -> UInt32 in
                if map[Int(c)] == .max {
                    map[Int(c)] = UInt32(values.count)
                    values.append(space[Int(c)])
                }
                return map[Int(c)]
            }
            return (values, out)
        }
        let withViews = rows.filter { b.pageviews[$0] > 0 }
        let pages = local(b.pages.values, withViews.flatMap { [b.entryPage[$0], b.exitPage[$0]] })
        writeDictionary(pages.values, &w)
        for (i, s) in withViews.enumerated() {
            w.varint(UInt64(b.entryTime[s] - b.start[s]))
            w.varint(UInt64(b.exitTime[s] - b.start[s]))
            w.varint(UInt64(pages.codes[2 * i]))
            w.varint(UInt64(pages.codes[2 * i + 1]))
        }
        w.varint(UInt64(attributes.count))
        for (k, c) in attributes.enumerated() {
            w.u16(UInt16(c.rawValue))
            let coded = local(b.attributeSpaces[k].values, rows.map { b.attributeCodes[k][$0] })
            writeDictionary(coded.values, &w)
            for code in coded.codes { w.varint(UInt64(code)) }
        }
        if let types {
            w.u8(1)
            w.varint(UInt64(types.count))
            for t in types { w.string(t) }
            for s in rows { w.varint(b.conversions[s]) }
        } else {
            w.u8(0)
        }
        return w.bytes
    }
}
