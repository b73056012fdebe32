import Foundation
import Synchronization

/// The time zone of each site's rollup days (a property setting; UTC unless set). Shared with
/// whoever owns the settings (the server updates it when a property changes).
public final class SiteTimeZones: Sendable {
    private let zones: Mutex<[String: QueryTimeZone]>

    public init(_ zones: [String: QueryTimeZone] = [:]) { self.zones = Mutex(zones) }

    public func zone(_ site: String) -> QueryTimeZone { zones.withLock { $0[site] } ?? .utc }

    public func set(_ site: String, _ zone: QueryTimeZone) { zones.withLock { $0[site] = zone } }
}

extension EventStore {
    /// Counts `site`'s rollup days in `zone` from now on. When rollup parts of months that still
    /// have raw events counted them in another zone, those months are rebuilt on a background
    /// thread (queries over them are answered from raw events meanwhile). Returns whether a
    /// rebuild started.
    @discardableResult
    public func setTimeZone(_ zone: QueryTimeZone, forSite site: String) -> Bool {
        options.siteTimeZones.set(site, zone)
        let (stale, rawMonths) = state.withLock { st in
            (st.rollupParts.values.joined().filter { ($0.zone(ofSite: site) ?? zone.identifier) != zone.identifier },
             Set(st.parts.map(\.partition)))
        }
        let months = Set(stale.map(\.partition)).intersection(rawMonths).sorted()
        guard let first = months.first, let last = months.last else { return false }
        let t = Thread { [weak self] in
            guard let self else { return }
            do throws(TallyError) {
                _ = try self.rebuildRollups(from: first.range.lowerBound, to: last.range.upperBound)
            } catch {
                self.state.withLock { $0.lastMergeError = error }
            }
        }
        t.name = "tally-rollup-rebuild"
        t.start()
        return true
    }
}

/// Per rollup, the coverage file: the commit mark of its rollup parts. Every raw part numbered
/// up to it has its rows in the rollup; a flush writes it after all its rollup parts, so a
/// level-0 rollup part of a flush carrying a higher coverage is one a crash left half-written
/// (FORMAT.md, "Rollups"). Version 1 files, from before it was a commit mark, only kept the
/// mark of parts merged or dropped away.
enum RollupCoverage {
    static let magic: [UInt8] = Array("TLYRCOV2".utf8)
    static let magicVersion1: [UInt8] = Array("TLYRCOV1".utf8)
    static let fileName = "COVERED"

    /// The mark, and whether the file is a commit mark (version 2).
    static func read(_ directory: String, fs: any FileSystem) throws(TallyError) -> (mark: Int, committed: Bool)? {
        let path = directory + "/" + fileName
        guard fs.exists(path) else { return nil }
        let f = try fs.openForReading(path)
        defer { f.close() }
        let bytes = try f.read(at: 0, count: 20)
        let head = bytes.count == 20 ? Array(bytes[0..<8]) : []
        if head.count == 8, Array(head[0..<7]) == Array(magic[0..<7]), head != magic, head != magicVersion1 {
            throw TallyError(.unsupportedVersion,
                             "\(path) is a rollup coverage file of another version (\(String(decoding: head, as: UTF8.self))); this build reads TLYRCOV1 and TLYRCOV2")
        }
        guard head == magic || head == magicVersion1 else {
            throw .corruption("\(path) is not a rollup coverage file (20 bytes starting TLYRCOV2 or TLYRCOV1)")
        }
        let crc = bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 16, as: UInt32.self)) }
        guard CRC32C.checksum(Array(bytes[0..<16])) == crc else { throw .corruption("checksum mismatch in \(path)") }
        let mark = bytes.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self))) }
        return (mark, head == magic)
    }

    static func write(_ coverage: Int, _ directory: String, fs: any FileSystem) throws(TallyError) {
        var w = ByteWriter(capacity: 20)
        w.raw(magic)
        w.u64(UInt64(coverage))
        w.u32(CRC32C.checksum(w.bytes))
        try fs.writeAtomically(w.bytes, name: fileName, in: directory)
    }
}

extension RollupPart {
    /// Written by a flush or by an open's roll-up (level 0, replacing nothing, not a
    /// correction): such a part is committed only once the coverage mark reaches its coverage.
    var isFlushPart: Bool { level == 0 && provenance.sources.isEmpty && provenance.correctsPart == 0 }
}

extension EventStore {
    func rollupDirectory(_ name: String) -> String { options.directory + "/rollups/" + name }

    /// Opens the rollup parts of every defined rollup and repairs what a crash can leave:
    /// superseded parts of a merge, a correction whose raw merge never published, raw parts a
    /// flush wrote before it could write their rollup rows (rolled up now). A rollup with no
    /// coverage file yet (new, or a directory from before rollups) is built from all raw parts.
    static func openRollups(_ st: inout State, options: StoreOptions, fs: any FileSystem, cache: RollupRowsCache,
                            report: inout OpenReport,
                            now: Int64) throws(TallyError) {
        try fs.createDirectory(options.directory + "/rollups")
        for def in options.rollups {
            try def.validate()
            let dir = options.directory + "/rollups/" + def.name
            try fs.createDirectory(dir)
            for name in try fs.list(dir) {
                if let parsed = RollupFormat.parseFileName(name) { st.nextPartNumber = max(st.nextPartNumber, parsed.number + 1) }
            }
        }
        // Every rollup part file of every rollup, opened on both cores: decoding them is most of
        // opening a big directory (30M events: 183 MB of rollups, 5.5 s of a 6 s `tally query`).
        var files: [(rollup: Int, name: String, number: Int)] = []
        for (k, def) in options.rollups.enumerated() {
            let dir = options.directory + "/rollups/" + def.name
            for name in try fs.list(dir) {
                if name.hasSuffix(PartFormat.temporarySuffix) {
                    try fs.remove(dir + "/" + name)
                    report.leftoversRemoved += 1
                    continue
                }
                guard let parsed = RollupFormat.parseFileName(name) else { continue }
                files.append((k, name, parsed.number))
            }
        }
        // The biggest first, so the two cores finish together.
        let sizes = files.map { f in (try? fs.openForReading(options.directory + "/rollups/" + options.rollups[f.rollup].name + "/" + f.name))
            .map { file in defer { file.close() }; return (try? file.size()) ?? 0 } ?? 0 }
        let order = files.indices.sorted { sizes[$0] > sizes[$1] }
        let directory = options.directory
        let definitions = options.rollups
        let opened = parallelMap(order.map { files[$0] }) { f -> Result<RollupPart, TallyError> in
            Result { () throws(TallyError) in
                try RollupPart.open(path: directory + "/rollups/" + definitions[f.rollup].name + "/" + f.name, name: f.name,
                                    number: f.number, fs: fs, cache: cache)
            }
        }
        var byRollup = [[(name: String, result: Result<RollupPart, TallyError>)]](repeating: [], count: options.rollups.count)
        for (i, k) in order.enumerated() { byRollup[files[k].rollup].append((files[k].name, opened[i])) }
        for (k, def) in options.rollups.enumerated() {
            let dir = options.directory + "/rollups/" + def.name
            var parts: [RollupPart] = []
            for (name, result) in byRollup[k].sorted(by: { $0.name < $1.name }) {
                do {
                    let part = try result.get()
                    guard part.columns == def.columns else {
                        report.problems.append("rollup part \(def.name)/\(name) has other dimensions than rollup \(def.name); rebuild it")
                        continue
                    }
                    parts.append(part)
                } catch {
                    report.problems.append(error.description)
                }
            }
            let superseded = Set(parts.flatMap(\.provenance.sources))
            let rawNumbers = Set(st.parts.map(\.number))
            let gone = Set(parts.filter { p in
                let orphanCorrection = p.provenance.correctsPart != 0 && !rawNumbers.contains(p.provenance.correctsPart)
                    && p.provenance.correctedInputs.contains { rawNumbers.contains($0) }
                return superseded.contains(p.number) || orphanCorrection
            }.map(\.number))
            if !gone.isEmpty {
                for p in parts where gone.contains(p.number) { try fs.remove(p.path) }
                try fs.syncDirectory(dir)
                report.supersededRemoved += gone.count
                parts.removeAll { gone.contains($0.number) }
            }
            // The commit mark. Level-0 rollup parts of a flush (or of an open's roll-up) above it
            // are a crash's half: removed, and their raw parts rolled up again below. A version-1
            // file predates the mark: then the parts' own coverage counts, as it did. With no
            // file, parts that only a flush or a first roll-up writes were never committed; any
            // other part (merged, rebuilt, a correction) means the file was lost: the parts'
            // coverage counts then too, rather than rolling everything up a second time.
            let file = try RollupCoverage.read(dir, fs: fs)
            let recorded = file?.mark
            let flushParts = parts.filter(\.isFlushPart)
            let legacy = file.map { !$0.committed } ?? (flushParts.count < parts.count)
            var coverage = recorded ?? 0
            if legacy {
                coverage = max(coverage, parts.map(\.provenance.coverage).max() ?? 0)
                if file == nil {
                    report.problems.append("rollup \(def.name) has merged parts but no \(RollupCoverage.fileName) file: its coverage is taken from its parts")
                }
            } else {
                let uncommitted = flushParts.filter { $0.provenance.coverage > coverage }
                if !uncommitted.isEmpty {
                    let numbers = Set(uncommitted.map(\.number))
                    parts.removeAll { numbers.contains($0.number) }
                    if !options.readOnly {
                        for p in uncommitted { try fs.remove(p.path) }
                        try fs.syncDirectory(dir)
                        report.leftoversRemoved += uncommitted.count
                    }
                }
            }
            let missing = st.parts.filter { file == nil && parts.isEmpty ? true : ($0.footer.level == 0 && $0.number > coverage) }
            // A read-only open (`tally query` after a crash mid-flush) writes no rollup part: the
            // next writable open rolls those parts up; queries read them raw meanwhile. (A
            // directory from before rollups, merged parts and all, is rolled up even so.)
            let leaveToWriter = options.readOnly && missing.allSatisfy { $0.footer.level == 0 }
            st.rolledThrough[def.name] = leaveToWriter && !missing.isEmpty ? coverage : max(coverage, st.parts.map(\.number).max() ?? 0)
            if !missing.isEmpty && !leaveToWriter {
                var aggregate = RollupAggregate(def)
                for raw in missing {
                    var dictionaries: [EventColumn: StringColumn] = [:]
                    for g in 0..<raw.footer.granules.count {
                        let b = try raw.readBatch(EventColumn.allCases, granule: g, dictionaries: &dictionaries)
                        let local = Self.localDays(b, zones: options.siteTimeZones)
                        aggregate.add(b, days: local.days, zones: local.zones)
                    }
                }
                let top = missing.map(\.number).max()!
                for (month, groups) in aggregate.months() {
                    let number = st.nextPartNumber
                    st.nextPartNumber += 1
                    parts.append(try RollupPart.write(&aggregate, groups: groups, partition: month, number: number, level: 0,
                                                      provenance: RollupProvenance(coverage: top), directory: dir, fs: fs,
                                                      cache: cache))
                }
                report.rollupPartsRebuilt += missing.count
            }
            let highest = max(coverage, st.parts.map(\.number).max() ?? 0)
            // A read-only open that rolled up (only with no file: a directory from before rollups)
            // commits what it wrote, or every later open would roll it all up again.
            let rolledUp = !missing.isEmpty && !leaveToWriter
            if (recorded != highest || file?.committed == false) && (!options.readOnly || rolledUp) {
                try RollupCoverage.write(highest, dir, fs: fs)
            }
            // Rollup months past the rollup's retention (a read-only open deletes nothing).
            if !options.readOnly {
                let expired = parts.filter { isExpired($0.partition, now: now, retention: def.retention) }
                for p in expired { try fs.remove(p.path) }
                parts.removeAll { isExpired($0.partition, now: now, retention: def.retention) }
            }
            st.rollupParts[def.name] = parts.sorted { $0.number < $1.number }
        }
    }

    /// The local day (site's zone) of each row of `b`.
    static func localDays(_ b: EventBatch, zones: SiteTimeZones) -> (days: [Int32], zones: [String: String]) {
        let sites = b[string: .siteID]
        let times = b[int: .occurredAt].values
        var days = [Int32](repeating: 0, count: b.count)
        var previous: [UInt8] = []
        var zone = QueryTimeZone.utc
        var used: [String: String] = [:]
        for r in 0..<b.count {
            // Rows come sorted by site: look the zone up when the site changes.
            sites.withValue(r) { v in
                if r == 0 || !v.elementsEqual(previous) {
                    previous = Array(v)
                    let site = String(decoding: v, as: UTF8.self)
                    zone = zones.zone(site)
                    used[site] = zone.identifier
                }
            }
            days[r] = Int32(clamping: zone.day(times[r]))
        }
        return (days, used)
    }

    /// The rollup rows of freshly sorted batches, one part per rollup and local month, written
    /// but not yet published. `coverage`: the highest raw part number these rows are in.
    func writeRollups(_ batches: [EventBatch], coverage: Int, sign: Int64 = 1, provenance base: RollupProvenance? = nil)
        throws(TallyError) -> [String: [RollupPart]]
    {
        guard !options.rollups.isEmpty, batches.contains(where: { $0.count > 0 }) else { return [:] }
        // Each batch's values coded once for every rollup, then the rollups on both cores.
        return try writeRollups(prepared: parallelMap(batches) { [self] in prepareRollups($0) }, coverage: coverage, sign: sign,
                                provenance: base)
    }

    /// A batch's values coded once for every rollup (`RollupBatch`); `dictionaries`: the part
    /// dictionaries of these very rows (a flushed part's), whose codes are used where they exist.
    func prepareRollups(_ b: EventBatch, dictionaries: [EventColumn: PartWriter.PartDictionary] = [:]) -> RollupBatch {
        let d = Self.localDays(b, zones: options.siteTimeZones)
        return RollupBatch(b, columns: Array(rollupColumns), days: d.days, zones: d.zones, dictionaries: dictionaries)
    }

    /// The columns some rollup groups by.
    var rollupColumns: Set<EventColumn> { Set(options.rollups.flatMap(\.columns)) }

    /// The rollup rows of prepared batches (`prepareRollups`), written as `writeRollups` does.
    /// `alongside` runs as one more job of the same `parallelMap`, first (a flush's session
    /// summaries; with Dispatch's concurrentPerform behind `parallelMap`, a second one beside
    /// it left the rollups on one thread: BENCHMARKS.md, sixteenth session).
    func writeRollups(prepared: [RollupBatch], coverage: Int, sign: Int64 = 1, provenance base: RollupProvenance? = nil,
                      alongside: (@Sendable () -> Void)? = nil)
        throws(TallyError) -> [String: [RollupPart]]
    {
        guard !options.rollups.isEmpty, prepared.contains(where: { $0.count > 0 }) else {
            alongside?()
            return [:]
        }
        // Each rollup built and written by one task, its aggregate freed once its parts are
        // written: at most two aggregates in memory at once (all seven alive until the writes
        // were a third of a flush's transient memory). When one fails, those written are removed.
        var provenance = base ?? RollupProvenance()
        provenance.coverage = coverage
        let p = provenance
        let fs = fs
        let jobs: [RollupDefinition?] = (alongside == nil ? [] : [nil]) + options.rollups
        let written = parallelMap(jobs) { [self] job -> Result<[RollupPart], TallyError> in
            guard let def = job else {
                alongside?()
                return .success([])
            }
            return Result { () throws(TallyError) -> [RollupPart] in
                var a = RollupAggregate(def)
                for b in prepared { a.add(b, sign: sign) }
                var parts: [RollupPart] = []
                do throws(TallyError) {
                    for (month, groups) in a.months().sorted(by: { $0.key < $1.key }) {
                        let number = state.withLock { st in
                            defer { st.nextPartNumber += 1 }
                            return st.nextPartNumber
                        }
                        parts.append(try RollupPart.write(&a, groups: groups, partition: month, number: number, level: 0,
                                                          provenance: p, directory: rollupDirectory(def.name), fs: fs,
                                                          cache: rollupCache))
                    }
                } catch {
                    for part in parts { try? fs.remove(part.path) }
                    throw error
                }
                return parts
            }
        }
        var out: [String: [RollupPart]] = [:]
        for (def, result) in zip(options.rollups, written.suffix(options.rollups.count)) {
            switch result {
            case .success(let parts): if !parts.isEmpty { out[def.name] = parts }
            case .failure(let error):
                for case .success(let parts) in written { for part in parts { try? fs.remove(part.path) } }
                throw error
            }
        }
        return out
    }

    // MARK: Rollup merges

    /// Merges rollup parts of each rollup month as `MergePolicy.pickRollups` picks them (`fanIn`
    /// of a tier, below `maxRollupMergeRows` in all: a merge holds its output in memory; with
    /// `force`, all of a month's parts at once). Returns how many merges ran.
    /// A month whose merge fails (a part whose rows cannot be read) does not hold up the
    /// others: the first error is thrown once every month was tried.
    @discardableResult
    public func mergeRollups(force: Bool = false) throws(TallyError) -> Int {
        var merges = 0
        var failure: TallyError?
        for def in options.rollups {
            let groups = state.withLock { st in
                Dictionary(grouping: st.rollupParts[def.name] ?? [], by: \.partition)
                    .compactMapValues { options.mergePolicy.pickRollups($0, force: force) }
            }
            for (month, parts) in groups.sorted(by: { $0.key < $1.key }) {
                if state.withLock({ $0.closed }) { return merges }
                rollupLock.lock()
                defer { rollupLock.unlock() }
                var aggregate = RollupAggregate(def)
                do throws(TallyError) {
                    for p in parts { try aggregate.add(p) }
                } catch {
                    if failure == nil { failure = error }
                    continue
                }
                let number = state.withLock { st in
                    defer { st.nextPartNumber += 1 }
                    return st.nextPartNumber
                }
                let provenance = RollupProvenance(coverage: parts.map(\.provenance.coverage).max() ?? 0,
                                                  sources: parts.map(\.number).sorted())
                let merged = try RollupPart.write(&aggregate, groups: Array(aggregate.keys.indices), partition: month,
                                                  number: number,
                                                  level: (parts.map(options.mergePolicy.rollupTier).max() ?? 0) + 1,
                                                  provenance: provenance, directory: rollupDirectory(def.name), fs: fs,
                                                  cache: rollupCache)
                let numbers = Set(parts.map(\.number))
                let published = state.withLock { st -> Bool in
                    let current = st.rollupParts[def.name] ?? []
                    guard current.filter({ numbers.contains($0.number) }).count == parts.count else { return false }
                    st.rollupParts[def.name] = current.filter { !numbers.contains($0.number) } + [merged]
                    return true
                }
                guard published else {
                    try fs.remove(merged.path)
                    continue
                }
                for p in parts { try fs.remove(p.path) }
                try fs.syncDirectory(rollupDirectory(def.name))
                merges += 1
            }
        }
        if let failure { throw failure }
        return merges
    }

    // MARK: Rollup TTL and rebuild

    /// Drops rollup months past their rollup's retention; returns (rollup, month) pairs dropped.
    @discardableResult
    public func dropExpiredRollups() throws(TallyError) -> [(String, Partition)] {
        let now = options.clock.nowMillis()
        return try dropRollups { def, month in Self.isExpired(month, now: now, retention: rollupRetention(def)) }
    }

    /// Drops every rollup's parts of local month `month` (`tally drop-partition M --rollups`,
    /// after the raw month: the rollups would otherwise still answer for it); returns the
    /// (rollup, month) pairs dropped.
    @discardableResult
    public func dropRollupMonth(_ month: Partition) throws(TallyError) -> [(String, Partition)] {
        try dropRollups { _, m in m == month }
    }

    private func dropRollups(_ drop: (RollupDefinition, Partition) -> Bool) throws(TallyError) -> [(String, Partition)] {
        // Rollup files go only under the rollup lock (a backup links them holding it).
        rollupLock.lock()
        defer { rollupLock.unlock() }
        var dropped: [(String, Partition)] = []
        for def in options.rollups {
            let gone = state.withLock { st -> [RollupPart] in
                let parts = st.rollupParts[def.name] ?? []
                st.rollupParts[def.name] = parts.filter { !drop(def, $0.partition) }
                return parts.filter { drop(def, $0.partition) }
            }
            guard !gone.isEmpty else { continue }
            // (The coverage mark, already past these parts' coverage, stays.)
            let dir = rollupDirectory(def.name)
            for p in gone { try fs.remove(p.path) }
            try fs.syncDirectory(dir)
            for m in Set(gone.map(\.partition)).sorted() { dropped.append((def.name, m)) }
        }
        return dropped
    }

    /// Rebuilds every rollup for the local months of [from, to) from the raw parts (rows still
    /// in the buffer join at their flush): for a rollup added later, a time zone changed, or a
    /// repair. The months' old rollup parts are replaced atomically (the new parts list them as
    /// sources). Months whose raw events are gone keep their rollups. Returns the months rebuilt.
    public func rebuildRollups(from: Int64, to: Int64) throws(TallyError) -> [Partition] {
        rollupLock.lock()
        defer { rollupLock.unlock() }
        return try flushLock.withLock { (_) throws(TallyError) -> [Partition] in
            let parts = state.withLock { $0.parts }
            var months: [Partition] = []
            var m = Partition(ms: from)
            while m.range.lowerBound < to {
                months.append(m)
                m = Partition(ms: m.range.upperBound)
            }
            guard let firstMonth = months.first, let lastMonth = months.last else { return [] }
            // Raw rows that can fall on those local days: a day of margin for any zone.
            let lower = firstMonth.range.lowerBound - 86_400_000, upper = lastMonth.range.upperBound + 86_400_000
            let wanted = Set(months)
            let retained = Set(parts.map(\.partition))
            let rebuildable = wanted.filter { retained.contains($0) }
            guard !rebuildable.isEmpty else { return [] }
            var batches: [EventBatch] = []
            let snapshot = Snapshot(parts: parts)
            // A raw part that cannot be read stops the rebuild: rollups rebuilt from the rows
            // before it would replace (and delete) complete ones with partial ones.
            do {
                try snapshot.scan(ScanRequest(from: lower, to: upper)) { batches.append($0) }
            } catch let e as TallyError {
                throw e
            } catch {
                throw TallyError(.corruption, "rebuilding rollups: \(error)")
            }
            for def in options.rollups {
                // Holding the flush lock, every flush's rollup rows are committed: the mark is
                // these parts' coverage (raw parts numbered above it are merges of parts below).
                let committed = state.withLock { $0.rolledThrough[def.name] } ?? 0
                var aggregate = RollupAggregate(def)
                for b in batches {
                    let local = Self.localDays(b, zones: options.siteTimeZones)
                    aggregate.add(b, days: local.days, zones: local.zones)
                }
                let old = state.withLock { ($0.rollupParts[def.name] ?? []).filter { rebuildable.contains($0.partition) } }
                var fresh: [RollupPart] = []
                let months = aggregate.months()
                for month in rebuildable.sorted() {
                    let number = state.withLock { st in
                        defer { st.nextPartNumber += 1 }
                        return st.nextPartNumber
                    }
                    let sources = old.filter { $0.partition == month }.map(\.number)
                    let provenance = RollupProvenance(coverage: committed, sources: sources)
                    fresh.append(try RollupPart.write(&aggregate, groups: months[month] ?? [], partition: month,
                                                      number: number, level: 0, provenance: provenance,
                                                      directory: rollupDirectory(def.name), fs: fs, cache: rollupCache))
                }
                let oldNumbers = Set(old.map(\.number))
                state.withLock { st in
                    st.rollupParts[def.name] = (st.rollupParts[def.name] ?? []).filter { !oldNumbers.contains($0.number) } + fresh
                }
                for p in old { try fs.remove(p.path) }
                try fs.syncDirectory(rollupDirectory(def.name))
            }
            return rebuildable.sorted()
        }
    }
}
