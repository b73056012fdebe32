extension EventStore {
    /// Writes everything buffered so far into new parts, one per month partition, then
    /// deletes WAL segments that parts now cover. Queries see the rows throughout: in the
    /// buffer until the parts are published, in the parts after.
    public func flush() throws(TallyError) {
        guard !options.readOnly else { throw TallyError(.closed, "\(options.directory) is open read-only") }
        try flushLock.withLock { (_) throws(TallyError) in
            var (entries, lsn) = state.withLock { st -> ([BufferEntry], UInt64) in
                st.flushing = st.active
                st.active = []
                st.activeRows = 0
                st.activeBytes = 0
                return (st.flushing, st.flushing.last?.lsn ?? 0)
            }
            guard !entries.isEmpty else { return }
            wal.requestRotation()
            defer {
                // Under sustained ingest the memory this flush freed is what the next batches and
                // the next flush need: handing it back to the kernel only to fault it in again
                // cost 1.3 → 0.5 s of system time per 1M events (`tally ingest`). Trim only when
                // the buffer stayed small meanwhile (an idle store or an age-driven flush).
                let backlog = state.withLock { $0.activeBytes }
                if backlog < options.flushBytes / 4 {
                    releaseFreedMemory()
                }
            }
            // Each month's rows, gathered in sort order; readers see these in place of the pieces,
            // which are freed now (the next batches reuse their memory while the parts are written).
            let arrived = entries[0].arrived
            let months = Self.sortedPartitions(entries.map(\.batch))
            state.withLock { st in st.flushing = months.map { BufferEntry(lsn: lsn, batch: $0.rows, arrived: arrived) } }
            entries = []
            do throws(TallyError) {
                let (parts, dictionaries) = try writeParts(months, walLSN: lsn)
                let coverage = parts.map(\.number).max() ?? 0
                // Rollup rows of the same rows; published with the parts. A crash between the two
                // leaves parts without rollup rows, which opening rolls up (FORMAT.md, "Rollups").
                // (Gathering several flushes' rollup rows in memory and writing them together
                // was tried: no change in `tally ingest`'s CPU at 1M or 3M events, since rows of
                // different flushes rarely share a day; BENCHMARKS.md, 2026-12-06.)
                // Each rollup's coverage file, written after all its parts, commits them: a crash
                // before it leaves parts that opening removes, rolling the raw parts up again.
                var rollups: [String: [RollupPart]] = [:]
                var advanced: [RollupDefinition] = []
                var summaries: [SessionSummaryFile?] = []
                do throws(TallyError) {
                    // Each month's values coded by its part's dictionaries (the part writer
                    // coded every text column already; coding them again was ~3 % of the
                    // ingest's CPU with merges off).
                    let prepared = options.rollups.isEmpty ? [] : parallelMap(Array(months.indices)) { [self] k in
                        prepareRollups(months[k].rows, dictionaries: dictionaries[k])
                    }
                    // Session summaries from the same rows, written beside the rollups and
                    // attached before the parts are published (`SessionSummaryFile.summarize(
                    // rows:…)`). A part whose summaries fail here gets them from the background
                    // work, which reads it back and reports what fails. (Written after the rollups
                    // instead, the flush took longer and ingest waited for it: 1M events no faster;
                    // as a parallelMap beside the rollups' the rollups ran on one thread.)
                    let fs = fs
                    let built = ResultSlots<[SessionSummaryFile?]>(count: 1)
                    let summarize: @Sendable () -> Void = {
                        var files: [SessionSummaryFile?] = []
                        for k in parts.indices {
                            let visitors: [UInt64]? = prepared.isEmpty ? nil : prepared[k].visitors
                            let sessions: [UInt64]? = prepared.isEmpty ? nil : prepared[k].sessions
                            files.append(try? SessionSummaryFile.build(for: parts[k], rows: months[k].rows, dictionaries: dictionaries[k],
                                                                       visitors: visitors, sessions: sessions, fs: fs))
                        }
                        built.set(0, files)
                    }
                    rollups = try writeRollups(prepared: prepared, coverage: coverage,
                                               alongside: options.summarizeAtFlush ? summarize : nil)
                    summaries = options.summarizeAtFlush ? built.values[0] : []
                    for def in options.rollups {
                        try RollupCoverage.write(coverage, rollupDirectory(def.name), fs: fs)
                        advanced.append(def)
                    }
                } catch {
                    // Marks already moved go back first: a raw part left below a mark (its removal
                    // failing too) would never be rolled up, and replay skips its rows.
                    let previous = state.withLock { $0.rolledThrough }
                    for def in advanced { try? RollupCoverage.write(previous[def.name] ?? 0, rollupDirectory(def.name), fs: fs) }
                    for p in parts { try? Self.removePartFiles(p, fs: fs) }
                    for p in rollups.values.joined() { try? fs.remove(p.path) }
                    throw error
                }
                for (part, s) in zip(parts, summaries) { part.attach(s) }
                state.withLock { st in
                    st.parts += parts
                    for (name, r) in rollups { st.rollupParts[name, default: []] += r }
                    for def in options.rollups { st.rolledThrough[def.name] = coverage }
                    st.flushing = []
                    st.lastFlushError = nil
                }
            } catch {
                // Put the rows back in front of what arrived meanwhile; the WAL still has them.
                state.withLock { st in
                    st.active = st.flushing + st.active
                    st.activeRows = st.active.reduce(0) { $0 + $1.batch.count }
                    st.activeBytes = st.active.reduce(0) { $0 + $1.batch.byteSize }
                    st.flushing = []
                    st.lastFlushError = error
                }
                throw error
            }
            try wal.removeSegments(coveredUpTo: lsn)
        }
    }

    /// Splits the rows of `batches` by month, sorts each month by the sort key and writes it as
    /// a part.
    func writeParts(_ batches: [EventBatch], walLSN: UInt64) throws(TallyError) -> [Part] {
        try writeParts(Self.sortedPartitions(batches), walLSN: walLSN).parts
    }

    /// The rows of `batches` by month, each month's rows gathered in sort-key order. The batches
    /// are not joined first: each row is copied once, into its month in sort order.
    static func sortedPartitions(_ batches: [EventBatch]) -> [(partition: Partition, rows: EventBatch)] {
        var byPartition: [Partition: [RowRef]] = [:]
        for (b, batch) in batches.enumerated() where batch.count > 0 {
            let times = batch[int: .occurredAt].values
            var current = Partition(ms: times[0])
            var range = current.range
            var rows: [RowRef] = []
            for i in 0..<batch.count {
                if !range.contains(times[i]) {
                    byPartition[current, default: []].append(contentsOf: rows)
                    rows.removeAll(keepingCapacity: true)
                    current = Partition(ms: times[i])
                    range = current.range
                }
                rows.append(RowRef(batch: UInt32(b), row: UInt32(i)))
            }
            byPartition[current, default: []].append(contentsOf: rows)
        }
        return byPartition.keys.sorted().map { p in
            (p, EventBatch.gathering(batches, rows: SortKey.sorted(batches, rows: byPartition[p]!)))
        }
    }

    /// Writes each month's sorted rows as a part; returns the parts and, for each, the part
    /// writer's dictionaries.
    func writeParts(_ months: [(partition: Partition, rows: EventBatch)], walLSN: UInt64) throws(TallyError)
        -> (parts: [Part], dictionaries: [[EventColumn: PartWriter.PartDictionary]])
    {
        var parts: [Part] = []
        // Only the columns rollups and session summaries code are kept past each part's write.
        var dictionaries: [[EventColumn: PartWriter.PartDictionary]] = []
        let keptColumns = self.rollupColumns.union(options.summarizeAtFlush ? SessionSummaryFile.flushColumns : [])
        let writer = PartWriter(fs: fs, directory: partsDirectory, granuleRows: options.granuleRows)
        var paths: [String] = []
        do throws(TallyError) {
            for (partition, sorted) in months {
                let number = state.withLock { st in
                    defer { st.nextPartNumber += 1 }
                    return st.nextPartNumber
                }
                let written = try writer.write(sorted, partition: partition, number: number, level: 0, walLSN: walLSN)
                let path = partsDirectory + "/" + written.name
                paths.append(path)
                parts.append(try Part.open(path: path, name: written.name, number: number, fs: fs))
                dictionaries.append(written.dictionaries.filter { keptColumns.contains($0.key) })
            }
        } catch {
            // The rows go back to the buffer and a later flush writes them again: the months
            // already written must not stay beside them (after a restart both would be read).
            for path in paths { try? fs.remove(path) }
            throw error
        }
        return (parts, dictionaries)
    }
}

#if canImport(Glibc)
    @_silgen_name("malloc_trim") private func malloc_trim(_ pad: Int) -> Int32
#endif

/// Hands memory freed by a flush back to the operating system (glibc's allocator; in the `tally`
/// executable, which allocates through jemalloc (Sources/CJemalloc), this and `MemoryPolicy`
/// touch only glibc's unused allocator, and jemalloc's `dirty_decay_ms` returns freed pages
/// instead; they stay for processes on glibc: the test binaries, the benchmarks, an embedder).
/// glibc keeps freed chunks of
/// its arenas for reuse; after each flush that left ~100 MiB resident for nothing (peak RSS of
/// a 1M-event `tally ingest` with 32 MiB flushes: 325 MiB without, 275 MiB with, when every
/// flush trimmed).
private func releaseFreedMemory() {
    #if canImport(Glibc)
        _ = malloc_trim(0)
    #endif
}

#if canImport(Glibc)
    @_silgen_name("mallopt") private func mallopt(_ param: Int32, _ value: Int32) -> Int32
#endif

/// glibc's allocator policy for a process running a store: set once, by the `tally` executable
/// as it starts (`EventStore.configureAllocator()`) or else when the first store opens.
///
/// Batches, WAL payloads and flush buffers are arrays of 1–32 MiB allocated and freed all the
/// time. By default glibc serves those with mmap and returns them with munmap (its dynamic
/// threshold adapts only partly), so every one is page-faulted in afresh. Serving them from the
/// heap and keeping up to 64 MiB of free heap top: page faults of a 1M-event `tally ingest`
/// 160k → 63k, system time 0.5 → 0.3 s (with per-flush trimming off; BENCHMARKS.md).
/// One arena: memory a flush frees on one thread is what the next batches need on another;
/// with glibc's per-thread arenas peak RSS of that ingest ranged 200–273 MiB, with one
/// 178–193 MiB, at the same CPU time (4 alternated runs each, BENCHMARKS.md).
enum MemoryPolicy {
    static let configured: Void = {
        #if canImport(Glibc)
            _ = mallopt(-8, 1)  // M_ARENA_MAX
            _ = mallopt(-3, 32 << 20)  // M_MMAP_THRESHOLD: the largest value glibc accepts
            _ = mallopt(-1, 64 << 20)  // M_TRIM_THRESHOLD
        #endif
    }()
}

extension EventStore {
    /// Sets the allocator policy a store wants (see `MemoryPolicy`) for the whole process.
    /// Call it first thing in `main`, before other threads allocate; opening a store calls it too.
    public static func configureAllocator() {
        MemoryPolicy.configured
    }
}
