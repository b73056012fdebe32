import Foundation
import Synchronization

/// Settings of an `EventStore`. Defaults are documented with the measurement behind them
/// in FORMAT.md and BENCHMARKS.md.
public struct StoreOptions: Sendable {
    public var directory: String
    public var granuleRows = PartFormat.defaultGranuleRows
    /// Flush the buffer to parts once it holds this many rows…
    public var flushRows = 1 << 20
    /// …or this many bytes of column values. The buffer is most of the memory: ingest waits
    /// while twice this is buffered, and a flush holds one more copy. 16 MiB kept peak RSS of
    /// `tally ingest` at ~200 MiB (32 MiB: ~300 MiB) for 47.9 vs 46.5 bytes/event (BENCHMARKS.md).
    public var flushBytes = 16 << 20
    /// …or its oldest event has waited this long (ms).
    public var flushAge: Int64 = 10_000
    /// Retries of an event within this window (ms, by received time) are refused as duplicates.
    public var dedupeWindow: Int64 = 7 * 86_400_000
    /// Keys of one of the dedupe set's 16 shards kept in a hash table before they are sorted
    /// into a new run file (`DIR/dedupe`; FORMAT.md, "Dedupe"); a shard's runs are merged
    /// size-tiered, four of a tier into one of the next.
    public var dedupeSealKeys = 1 << 16
    /// Raw-event retention in ms: a month partition is dropped (its parts deleted) once its
    /// last day is older than this; nil keeps everything. Checked by the background flusher
    /// and on open.
    public var retention: Int64? = nil
    /// Run the flusher thread (off in tests that flush by hand).
    /// Open to read only (`tally query`, `dump`, `bench query`): the dedupe window is not
    /// rebuilt (only writes need it: it read 7 days of event ids and cost most of a query
    /// command's time and memory), no WAL segment is started, `ingest` refuses, and `close`
    /// leaves the WAL to be replayed by the next writer instead of flushing it.
    public var readOnly = false
    public var backgroundFlush = true
    /// Run the merger thread (only with `backgroundFlush`): merges parts per `mergePolicy`.
    public var backgroundMerge = true
    public var mergePolicy = MergePolicy()
    /// Write a flushed part's session summaries as it is flushed, from the rows in memory
    /// (`SessionSummaryFile.summarize(rows:…)`), instead of leaving them to the background
    /// work, which reads the part back (off in tests that compare the two, or answers from rows).
    public var summarizeAtFlush = true
    /// Daily rollups kept beside the raw parts (FORMAT.md, "Rollups").
    public var rollups: [RollupDefinition] = RollupDefinition.defaults
    /// Bytes of decoded rollup rows kept in memory between the queries and merges that read
    /// them (least recently used dropped first; a dropped part's rows are read again from its
    /// file when next needed). Rows in use are not counted against it.
    public var rollupCacheBytes = RollupRowsCache.defaultBudget
    /// The time zone of each site's rollup days.
    public var siteTimeZones = SiteTimeZones()
    public var clock: any TallyClock = SystemClock()
    public var fileSystem: any FileSystem = PosixFileSystem()

    public init(directory: String) {
        self.directory = directory
    }
}

/// What happened to a batch given to `EventStore.ingest`.
public struct IngestOutcome: Sendable, Equatable {
    public var accepted: Int
    public var duplicates: Int
    /// Indices (in the ingested batch) of the rows refused as duplicates.
    public var duplicateRows: [Int]
}

/// The events table: one writer owning the WAL and the in-memory buffer, parts on disk,
/// readers on immutable snapshots.
public final class EventStore: Sendable {
    struct BufferEntry: Sendable {
        let lsn: UInt64
        let batch: EventBatch
        let arrived: Int64
    }

    struct State: Sendable {
        var parts: [Part] = []
        var active: [BufferEntry] = []
        var flushing: [BufferEntry] = []
        var activeRows = 0
        var activeBytes = 0
        var nextLSN: UInt64 = 1
        var nextPartNumber = 1
        var dedupe: DedupeIndex
        var closed = false
        var lastFlushError: TallyError?
        /// Parts being merged, and partitions being dropped (merges of them are cancelled).
        var merging: Set<Int> = []
        var droppingPartitions: Set<Partition> = []
        var merges = MergeCounters()
        var lastMergeError: TallyError?
        /// Rollup parts by rollup name.
        var rollupParts: [String: [RollupPart]] = [:]
        /// Per rollup, the highest raw part number whose rows its parts hold. Level-0 parts above
        /// it are in no rollup yet (a crash came between a flush's parts and its rollup parts, and
        /// this open is read-only): the next writable open rolls them up, queries read them raw
        /// meanwhile. Merged raw parts are always rolled up.
        var rolledThrough: [String: Int] = [:]
        /// Months dropped by hand: the highest WAL LSN their dropped parts held (`DIR/DROPPED`).
        var dropped: [Partition: UInt64] = [:]
        /// Ingests waiting for the buffer to drain (backpressure).
    }

    public let options: StoreOptions
    /// The raw and rollup retentions in force: `options`' until `setRetention` changes them
    /// (a property's retention changed while the server runs).
    let retentions: Mutex<(raw: Int64?, rollup: Int64?)>
    let fs: any FileSystem
    let partsDirectory: String
    let wal: WriteAheadLog
    let lock: DirectoryLock
    let state: Mutex<State>
    /// Serializes flushes (and later merges' part-set changes).
    let flushLock = Mutex<Void>(())
    /// Serializes changes of rollup parts that replace others (rollup merges, rebuilds).
    let rollupLock = NSLock()
    let idGenerator = Mutex(ULIDGenerator())
    /// Decoded rollup rows kept between uses (`StoreOptions.rollupCacheBytes`).
    let rollupCache: RollupRowsCache
    private let flusherExited = DispatchSemaphore(value: 0)
    private let mergerExited = DispatchSemaphore(value: 0)
    private let mergeWake = NSCondition()
    /// Per merger thread (MergePolicy.Lane), set under `mergeWake` by `wakeMerger`.
    nonisolated(unsafe) private var mergeWakePending = [false, false, false]
    private let wake = NSCondition()
    private let waiting = Atomic<Int>(0)
    /// Set (under `wake`) by `wakeFlusher`, so a wake-up sent while the flusher is busy is not lost.
    nonisolated(unsafe) private var wakePending = false
    /// What opening found: WAL records replayed, bytes of a torn tail cut, problems.
    public let openReport: OpenReport

    public struct OpenReport: Sendable {
        public var parts = 0
        public var walRecordsReplayed = 0
        public var walRowsReplayed = 0
        public var walTruncatedBytes = 0
        public var problems: [String] = []
        public var leftoversRemoved = 0
        /// Partitions dropped on open because they were past the retention.
        public var partitionsDropped: [Partition] = []
        /// Parts deleted on open because a merged part on disk already holds their rows.
        public var supersededRemoved = 0
        /// Raw parts whose rollup rows were missing (a crash mid-flush, a new rollup) and were rolled up on open.
        public var rollupPartsRebuilt = 0
    }

    /// Opens (creating if needed) the store in `options.directory`: removes leftovers of
    /// interrupted flushes, opens every part, replays the WAL past what parts hold, and
    /// rebuilds the dedupe window.
    public init(options: StoreOptions) throws(TallyError) {
        MemoryPolicy.configured
        self.options = options
        retentions = Mutex((raw: options.retention, rollup: nil))
        fs = options.fileSystem
        rollupCache = RollupRowsCache(budget: options.rollupCacheBytes)
        partsDirectory = options.directory + "/parts"
        try fs.createDirectory(partsDirectory)
        lock = try DirectoryLock(directory: options.directory)
        wal = WriteAheadLog(fs: fs, directory: options.directory + "/wal")
        var report = OpenReport()
        // Sealed dedupe keys of the previous process are a cache of it: gone, rebuilt below.
        let dedupeDirectory = options.directory + "/dedupe"
        if !options.readOnly {
            try fs.createDirectory(dedupeDirectory)
            for name in try fs.list(dedupeDirectory) { try fs.remove(dedupeDirectory + "/" + name) }
        }
        var st = State(dedupe: DedupeIndex(window: options.dedupeWindow, directory: options.readOnly ? nil : dedupeDirectory,
                                           sealAt: options.dedupeSealKeys))

        for name in try fs.list(partsDirectory) {
            let path = partsDirectory + "/" + name
            if name.hasSuffix(PartFormat.temporarySuffix) {
                try fs.remove(path)
                report.leftoversRemoved += 1
                continue
            }
            guard let parsed = PartFormat.parseFileName(name) else { continue }
            do {
                let part = try Part.open(path: path, name: name, number: parsed.number, fs: fs)
                st.parts.append(part)
                st.nextPartNumber = max(st.nextPartNumber, parsed.number + 1)
            } catch {
                // A part that cannot be opened is reported, not fatal: the others stay readable.
                report.problems.append(error.description)
            }
        }
        // A merge that died between publishing its part and deleting its inputs left both.
        let superseded = Self.superseded(st.parts)
        for part in st.parts where superseded.contains(part.number) {
            try Self.removePartFiles(part, fs: fs)
            report.supersededRemoved += 1
        }
        if report.supersededRemoved > 0 {
            try fs.syncDirectory(partsDirectory)
            st.parts.removeAll { superseded.contains($0.number) }
        }
        // Partitions past the retention go before anything reads them.
        let openedAt = options.clock.nowMillis()
        let expired = st.parts.filter { Self.isExpired($0.partition, now: openedAt, retention: options.retention) }
        for part in expired { try Self.removePartFiles(part, fs: fs) }
        if !expired.isEmpty {
            try fs.syncDirectory(partsDirectory)
            st.parts.removeAll { Self.isExpired($0.partition, now: openedAt, retention: options.retention) }
            report.partitionsDropped = Set(expired.map(\.partition)).sorted()
        }
        report.parts = st.parts.count
        try Self.removeOrphanSummaries(parts: st.parts, directory: partsDirectory, fs: fs)
        try Self.openRollups(&st, options: options, fs: fs, cache: rollupCache, report: &report, now: openedAt)

        // Rows of a month dropped by hand are skipped up to the LSN its parts held.
        st.dropped = try DroppedMarks.read(options.directory, fs: fs)
        var covered: [Partition: UInt64] = st.dropped
        var maxLSN: UInt64 = st.dropped.values.max() ?? 0
        for p in st.parts {
            covered[p.partition] = max(covered[p.partition] ?? 0, p.footer.walLSN)
            maxLSN = max(maxLSN, p.footer.walLSN)
        }

        let now = options.clock.nowMillis()
        // Rebuild the dedupe window from parts that may hold events received inside it.
        for p in st.parts where !options.readOnly && p.footer.maxReceived >= now - options.dedupeWindow {
            var dicts: [EventColumn: StringColumn] = [:]
            for g in 0..<p.footer.granules.count {
                var b = EventBatch(columns: [.siteID, .eventID, .receivedAt])
                do {
                    for c in [EventColumn.siteID, .eventID, .receivedAt] {
                        try p.read(c, granule: g, into: &b, dictionaries: &dicts)
                    }
                } catch {
                    report.problems.append(error.description)
                    continue
                }
                Self.remember(b, rows: 0..<p.footer.granules[g].rows, in: &st.dedupe, now: now)
            }
        }

        var replayed: [BufferEntry] = []
        let walReport = try wal.replay { (record) throws(TallyError) in
            maxLSN = max(maxLSN, record.lsn)
            var keep: [Int32] = []
            let times = record.batch[int: .occurredAt].values
            for i in 0..<record.batch.count where (covered[Partition(ms: times[i])] ?? 0) < record.lsn
                && !Self.isExpired(Partition(ms: times[i]), now: now, retention: options.retention) {
                keep.append(Int32(i))
            }
            guard !keep.isEmpty else { return }
            let batch = keep.count == record.batch.count ? record.batch : record.batch.gather(keep)
            if !options.readOnly { Self.remember(batch, rows: 0..<batch.count, in: &st.dedupe, now: now) }
            replayed.append(BufferEntry(lsn: record.lsn, batch: batch, arrived: now))
            report.walRowsReplayed += batch.count
        }
        report.walRecordsReplayed = walReport.records
        report.walTruncatedBytes = walReport.truncatedBytes
        report.problems += walReport.problems
        st.active = replayed
        st.activeRows = replayed.reduce(0) { $0 + $1.batch.count }
        st.activeBytes = replayed.reduce(0) { $0 + $1.batch.byteSize }
        st.nextLSN = maxLSN + 1
        st.parts.sort { $0.number < $1.number }
        state = Mutex(st)
        openReport = report
        if options.readOnly { return }
        try wal.start(nextLSN: maxLSN + 1)
        if options.backgroundFlush { startFlusher() }
        if options.backgroundFlush && options.backgroundMerge { startMerger() }
    }

    // MARK: Retention

    /// Whether every day of `partition` is older than the retention at `now`.
    static func isExpired(_ partition: Partition, now: Int64, retention: Int64?) -> Bool {
        guard let retention else { return false }
        return partition.range.upperBound <= now - retention
    }

    /// The raw retention in force (ms; nil keeps everything).
    public var rawRetention: Int64? { retentions.withLock { $0.raw } }

    /// The retention every rollup has since `setRetention(raw:rollups:)` (nil: each its own).
    public var rollupRetentionOverride: Int64? { retentions.withLock { $0.rollup } }

    /// The retention of rollup `definition` in force (ms).
    func rollupRetention(_ definition: RollupDefinition) -> Int64 {
        rollupRetentionOverride ?? definition.retention
    }

    /// Changes the raw retention and, when given, every rollup's retention from now on (the next
    /// TTL check applies them). The server calls it when a property's retention changes, with
    /// the longest of all properties.
    public func setRetention(raw: Int64?, rollups: Int64? = nil) {
        retentions.withLock { r in
            r.raw = raw
            if let rollups { r.rollup = rollups }
        }
    }

    /// Drops the partitions past the raw retention (`rawRetention`); returns them.
    @discardableResult
    public func dropExpiredPartitions() throws(TallyError) -> [Partition] {
        guard let retention = rawRetention else { return [] }
        let now = options.clock.nowMillis()
        let expired = state.withLock { st in
            Set(st.parts.map(\.partition).filter { Self.isExpired($0, now: now, retention: retention) })
        }
        for p in expired.sorted() { _ = try dropPartition(p) }
        return expired.sorted()
    }

    /// Removes every part of `partition` (TTL or an operator's `tally drop-partition`); returns
    /// how many rows went. Snapshots taken before keep reading the parts they hold (the files
    /// stay open); new snapshots no longer see them. Buffered rows of the partition stay.
    public func dropPartition(_ partition: Partition) throws(TallyError) -> Int {
        // Merges of the partition are cancelled, and waited for: a merged part published after
        // the drop would bring the rows back.
        state.withLock { _ = $0.droppingPartitions.insert(partition) }
        defer { state.withLock { _ = $0.droppingPartitions.remove(partition) } }
        while state.withLock({ st in st.parts.contains { $0.partition == partition && st.merging.contains($0.number) } }) {
            usleep(5_000)
        }
        // The WAL may still hold records of the rows these parts held (segments go only once a
        // later flush covers them): the mark, written before the parts go, keeps replay from
        // bringing them back.
        let (gone, marks) = state.withLock { st -> ([Part], [Partition: UInt64]) in
            let gone = st.parts.filter { $0.partition == partition }
            if let lsn = gone.map(\.footer.walLSN).max(), lsn > st.dropped[partition] ?? 0 { st.dropped[partition] = lsn }
            return (gone, st.dropped)
        }
        if !gone.isEmpty && !options.readOnly { try DroppedMarks.write(marks, options.directory, fs: fs) }
        let dropped = state.withLock { st -> [Part] in
            let gone = st.parts.filter { $0.partition == partition }
            st.parts.removeAll { $0.partition == partition }
            return gone
        }
        for part in dropped { try Self.removePartFiles(part, fs: fs) }
        if !dropped.isEmpty { try fs.syncDirectory(partsDirectory) }
        return dropped.reduce(0) { $0 + $1.rows }
    }

    static func remember(_ b: EventBatch, rows: Range<Int>, in dedupe: inout DedupeIndex, now: Int64) {
        let sites = b[string: .siteID]
        let ids = b[string: .eventID]
        let received = b[int: .receivedAt].values
        for i in rows where received[i] >= now - dedupe.window {
            let key = sites.withValue(i) { s in ids.withValue(i) { DedupeIndex.key(site: s, eventID: $0) } }
            _ = dedupe.insert(key, time: received[i])
        }
    }

    // MARK: Ingest

    /// Makes `batch` durable and visible, minus duplicates of events already accepted within
    /// the dedupe window (or earlier in the same batch). Returns once the WAL record is
    /// fsynced. Rows with an empty event_id get a new ULID.
    public func ingest(_ batch: EventBatch) async throws(TallyError) -> IngestOutcome {
        guard !options.readOnly else { throw TallyError(.closed, "\(options.directory) is open read-only") }
        guard batch.count > 0 else { return IngestOutcome(accepted: 0, duplicates: 0, duplicateRows: []) }
        precondition(batch.columns.count == EventColumn.allCases.count, "ingest takes whole events")
        var batch = assignMissingIDs(batch)
        let now = options.clock.nowMillis()

        var keys: [UInt64] = []
        keys.reserveCapacity(batch.count)
        let sites = batch[string: .siteID]
        let ids = batch[string: .eventID]
        for i in 0..<batch.count {
            keys.append(sites.withValue(i) { s in ids.withValue(i) { DedupeIndex.key(site: s, eventID: $0) } })
        }
        let received = batch[int: .receivedAt].values
        var duplicateRows: [Int] = []
        // Dedupe tables big enough to seal are sorted and written after the lock is released
        // (a seal under it held every other ingest for its sort and write). Under HTTP ingest
        // (40 s, alternated, a slow stretch): ack max 205-238 ms against 497, p99 109-126
        // against 119 ms.
        var sealJobs: [SealJob]? = []
        try state.withLock { (st) throws(TallyError) in
            if st.closed { throw TallyError(.closed, "the store is closed") }
            st.dedupe.expire(now: now)
            for i in 0..<keys.count where !st.dedupe.insert(keys[i], time: received[i], jobs: &sealJobs) {
                duplicateRows.append(i)
            }
        }
        runSealJobs(sealJobs ?? [])
        if !duplicateRows.isEmpty {
            var keep: [Int32] = []
            var d = 0
            for i in 0..<batch.count {
                if d < duplicateRows.count && duplicateRows[d] == i { d += 1 } else { keep.append(Int32(i)) }
            }
            if keep.isEmpty { return IngestOutcome(accepted: 0, duplicates: duplicateRows.count, duplicateRows: duplicateRows) }
            batch = batch.gather(keep)
        }
        await waitForBufferSpace()
        let payload = WALBatchCodec.encode(batch)
        let accepted = batch
        do {
            try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, any Error>) in
                state.withLock { st in
                    let lsn = st.nextLSN
                    st.nextLSN += 1
                    wal.append(lsn: lsn, payload: payload) { [self] result in
                        switch result {
                        case .success:
                            let due = state.withLock { st in
                                st.active.append(BufferEntry(lsn: lsn, batch: accepted, arrived: now))
                                st.activeRows += accepted.count
                                st.activeBytes += accepted.byteSize
                                return st.activeRows >= options.flushRows || st.activeBytes >= options.flushBytes
                            }
                            if due { wakeFlusher() }
                            cont.resume()
                        case .failure(let e):
                            cont.resume(throwing: e)
                        }
                    }
                }
            }
        } catch {
            // Not durable: forget the keys so a retry is accepted.
            let dup = Set(duplicateRows)
            state.withLock { st in for (i, k) in keys.enumerated() where !dup.contains(i) { st.dedupe.remove(k) } }
            throw (error as? TallyError) ?? TallyError(.io, "write-ahead log append failed", cause: "\(error)")
        }
        return IngestOutcome(accepted: accepted.count, duplicates: duplicateRows.count, duplicateRows: duplicateRows)
    }

    /// True while the buffer holds twice the flush threshold: an ingest now would wait for a
    /// flush. Servers answer 503 with Retry-After instead of queueing more requests.
    public var isOverloaded: Bool {
        state.withLock { st in st.activeBytes >= 2 * options.flushBytes || st.closed }
    }

    /// Callers in `waitForRoom(upTo:)` now.
    public var waitingForRoom: Int { waiting.load(ordering: .relaxed) }

    /// True while the buffer holds more than 1¼ flushes' worth (`flushBytes`): the flusher, at
    /// background priority, is behind. A server holds new requests back then
    /// (`waitForRoom(upTo:)`).
    public var isBehind: Bool {
        state.withLock { st in st.activeBytes >= behindBytes && !st.closed }
    }

    private var behindBytes: Int { options.flushBytes + options.flushBytes / 4 }

    /// Waits up to `limit` while the buffer is behind (`isBehind`), checking every 5 ms; true
    /// if it caught up, false at the limit, once the store closes or if the task is cancelled
    /// (with `backgroundFlush` off nothing flushes meanwhile: the wait runs to its limit).
    /// Background work runs at a lower priority than requests (`BackgroundPriority`): a
    /// saturating client kept the cores from the flush, and its buffer sat at its bound
    /// (server peak RSS 262–283 MiB against 203–236). While requests wait here the flush gets
    /// the cores. A waiting request holds its connection, not its body.
    public func waitForRoom(upTo limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        waiting.add(1, ordering: .relaxed)
        defer { waiting.subtract(1, ordering: .relaxed) }
        while true {
            let (behind, closed) = state.withLock { st in (st.activeBytes >= behindBytes, st.closed) }
            if closed { return false }
            if !behind { return true }
            if ContinuousClock.now >= deadline { return false }
            wakeFlusher()
            do { try await Task.sleep(for: .milliseconds(5)) } catch { return false }
        }
    }

    /// Backpressure: while the buffer holds twice the flush threshold (a flush is running and
    /// ingest outpaces it), new ingests wait for the flush to finish instead of growing memory.
    /// Polled every 2 ms rather than resumed by the flush: a continuation resumed from the
    /// flusher's thread (nice 10) can make Dispatch start a pool thread there, and a thread
    /// inherits its creator's nice value, so requests would then run niced too.
    private func waitForBufferSpace() async {
        guard options.backgroundFlush else { return }
        while state.withLock({ st in st.activeBytes >= 2 * options.flushBytes && !st.closed }) {
            wakeFlusher()
            do { try await Task.sleep(for: .milliseconds(2)) } catch { return }
        }
    }

    private func assignMissingIDs(_ batch: EventBatch) -> EventBatch {
        let ids = batch[string: .eventID]
        var missing = false
        for i in 0..<batch.count where ids.ends[i] == (i == 0 ? 0 : ids.ends[i - 1]) {
            missing = true
            break
        }
        guard missing else { return batch }
        var out = batch
        var col = StringColumn()
        col.reserve(rows: batch.count, bytes: batch.count * 26)
        let times = batch[int: .occurredAt].values
        idGenerator.withLock { gen in
            for i in 0..<batch.count {
                if ids.withValue(i, { $0.isEmpty }) {
                    gen.next(ms: times[i], into: &col.bytes)
                    col.ends.append(UInt32(col.bytes.count))
                } else {
                    col.append(from: ids, row: i)
                }
            }
        }
        out[string: .eventID] = col
        return out
    }

    // MARK: Snapshots

    /// An immutable view of everything acknowledged so far: parts and buffered batches.
    public func snapshot() -> Snapshot {
        state.withLock { st in
            Snapshot(parts: st.parts, buffered: (st.flushing + st.active).map(\.batch), rollups: st.rollupParts,
                     rollupDefinitions: options.rollups, rolledThrough: st.rolledThrough)
        }
    }

    public struct Status: Sendable {
        public var parts: Int
        /// Parts of the month partition that has the most (the merge policy's bound applies per partition).
        public var maxPartsPerPartition: Int
        public var bufferedRows: Int
        public var bufferedBytes: Int
        public var nextLSN: UInt64
        public var dedupeKeys: Int
        /// Of those, the keys kept sorted (generations no longer written to; `compactDedupe`).
        public var dedupeSealedKeys: Int
        /// Of those, the keys in files (`DIR/dedupe`), not in memory.
        public var dedupeFileKeys: Int
        /// Decoded rollup rows kept in memory (`StoreOptions.rollupCacheBytes`): bytes, parts,
        /// and how many times a part's rows were read and decoded from its file (the first
        /// query of a part opened with its header only, after the cache dropped them, merges).
        public var rollupCacheBytes: Int
        public var rollupCacheParts: Int
        public var rollupCacheLoads: Int
        public var lastFlushError: String?
        public var merges: MergeCounters
        public var mergesRunning: Int
        public var lastMergeError: String?
    }

    public var status: Status {
        let cache = rollupCache.counters
        return state.withLock { st in
            var perPartition: [Partition: Int] = [:]
            for part in st.parts { perPartition[part.partition, default: 0] += 1 }
            return Status(parts: st.parts.count, maxPartsPerPartition: perPartition.values.max() ?? 0, bufferedRows: st.activeRows + st.flushing.reduce(0) { $0 + $1.batch.count },
                   bufferedBytes: st.activeBytes, nextLSN: st.nextLSN, dedupeKeys: st.dedupe.count,
                   dedupeSealedKeys: st.dedupe.sealedCount, dedupeFileKeys: st.dedupe.fileCount,
                   rollupCacheBytes: cache.bytes,
                   rollupCacheParts: cache.parts, rollupCacheLoads: cache.loads,
                   lastFlushError: st.lastFlushError?.description, merges: st.merges,
                   mergesRunning: st.merging.isEmpty ? 0 : 1, lastMergeError: st.lastMergeError?.description)
        }
    }

    /// WAL segment files and sizes.
    public func walSegments() throws(TallyError) -> [(name: String, size: Int)] { try wal.segmentFiles() }

    // MARK: Background flushing

    private func startFlusher() {
        let exited = flusherExited
        let t = Thread { [weak self] in
            BackgroundPriority.lowerCallingThread()
            while let s = self, s.flusherStep() {}
            exited.signal()
        }
        t.name = "tally-flush"
        t.start()
    }

    /// One wait-and-maybe-flush round; false once the store is closed.
    private func flusherStep() -> Bool {
        wake.lock()
        if !wakePending {
            _ = wake.wait(until: Date(timeIntervalSinceNow: min(1.0, Double(options.flushAge) / 1000)))
        }
        wakePending = false
        wake.unlock()
        if state.withLock({ $0.closed }) { return false }
        do {
            let before = state.withLock { $0.parts.count }
            try flushIfDue()
            if state.withLock({ $0.parts.count }) != before { wakeMerger() }
            try dropExpiredPartitions()
            try dropExpiredRollups()
            // A few shards of past dedupe generations per round, sealed outside the lock.
            for _ in 0..<4 where !state.withLock({ $0.closed }) {
                guard sealDedupeShard() else { break }
            }
        } catch {
            state.withLock { $0.lastFlushError = error }
        }
        return true
    }

    /// Moves the dedupe keys of generations that no longer get events received now into
    /// sorted arrays (`DedupeIndex.sealStep`), all at once; returns how many table shards it
    /// sealed. The background flusher does the same a few shards per round.
    @discardableResult
    public func compactDedupe() -> Int {
        var sealed = 0
        while sealDedupeShard() { sealed += 1 }
        return sealed
    }

    /// Seals one shard of a past dedupe generation (`DedupeIndex.sealStep`): its table and runs
    /// merged into one run, read and written outside the store's lock. False when none is left.
    private func sealDedupeShard() -> Bool {
        var jobs: [SealJob]? = []
        guard state.withLock({ st in !st.closed && st.dedupe.sealStep(jobs: &jobs) }) else { return false }
        // A run that could not be read: the keys went back to the table; stop for this round.
        return runSealJobs(jobs ?? [])
    }

    /// Runs dedupe seal jobs (sort, merge, write) outside the lock and installs their results;
    /// false if one could not read a run it merges (its keys go back to their table).
    @discardableResult
    private func runSealJobs(_ jobs: [SealJob]) -> Bool {
        var sealed = true
        for job in jobs {
            let result = job.run()
            if result == nil { sealed = false }
            state.withLock { $0.dedupe.install(job, result) }
        }
        return sealed
    }

    // MARK: Background merging

    /// Three merger threads (MergePolicy): small merges, big merges, rollup merges.
    private func startMerger() {
        let exited = mergerExited
        for lane in MergePolicy.Lane.allCases {
            let t = Thread { [weak self] in
                BackgroundPriority.lowerCallingThread()
                while let s = self, s.mergerStep(lane) {}
                exited.signal()
            }
            t.name = "tally-merge-\(lane)"
            t.start()
        }
    }

    /// Waits for a flush (or a second), then merges while the policy finds work of `lane`;
    /// false once the store is closed.
    private func mergerStep(_ lane: MergePolicy.Lane) -> Bool {
        mergeWake.lock()
        if !mergeWakePending[lane.rawValue] { _ = mergeWake.wait(until: Date(timeIntervalSinceNow: 1.0)) }
        mergeWakePending[lane.rawValue] = false
        mergeWake.unlock()
        if state.withLock({ $0.closed }) { return false }
        do {
            if lane == .rollups {
                try mergeRollups()
                try buildSessionSummaries()
                return true
            }
            while let task = nextMergeTask(lane: lane) {
                guard try runMerge(task) != nil else { break }
                // A merged part may complete a group of the other lane's size.
                wakeMerger()
            }
        } catch {
            state.withLock { $0.lastMergeError = error }
        }
        return true
    }

    func wakeMerger() {
        mergeWake.lock()
        mergeWakePending = [true, true, true]
        mergeWake.broadcast()
        mergeWake.unlock()
    }

    func wakeFlusher() {
        wake.lock()
        wakePending = true
        wake.signal()
        wake.unlock()
    }

    /// Flushes when the buffer is over its size or age threshold.
    public func flushIfDue() throws(TallyError) {
        let now = options.clock.nowMillis()
        let due = state.withLock { st in
            guard let first = st.active.first else { return false }
            return st.activeRows >= options.flushRows || st.activeBytes >= options.flushBytes
                || now - first.arrived >= options.flushAge
        }
        if due { try flush() }
    }

    /// Flushes, stops the WAL writer and the flusher. Pending ingests complete first.
    public func close() throws(TallyError) {
        let already = state.withLock { st in
            defer { st.closed = true }
            return st.closed
        }
        if already { return }
        if options.readOnly {
            lock.release()
            return
        }
        wakeFlusher()
        wakeMerger()
        if options.backgroundFlush { flusherExited.wait() }
        if options.backgroundFlush && options.backgroundMerge {
            for _ in MergePolicy.Lane.allCases { mergerExited.wait() }
        }
        wal.close()
        defer { lock.release() }
        try flush()
        // Everything acknowledged is in parts now: the log has nothing left to replay.
        try wal.removeAllSegments()
    }
}
