extension EventStore {
    /// Writes everything buffered so far into new parts, one per month partition, then
    /// deletes WAL segments that parts now cover. Queries see the rows throughout: in the
    /// buffer until the parts are published, in the parts after.
    public func flush() throws(TallyError) {
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
            // One contiguous batch for sorting and writing; readers see it in place of the pieces.
            let all = EventBatch.joined(entries.map(\.batch))
            let joined = BufferEntry(lsn: lsn, batch: all, arrived: entries[0].arrived)
            state.withLock { $0.flushing = [joined] }
            entries = []  // the pieces are freed once no snapshot holds them
            defer {
                resumeWaiters()
                // Under sustained ingest the memory this flush freed is what the next batches and
                // the next flush need: handing it back to the kernel only to fault it in again
                // cost 1.3 → 0.5 s of system time per 1M events (`tally ingest`). Trim only when
                // the buffer stayed small meanwhile (an idle store or an age-driven flush).
                let backlog = state.withLock { $0.activeBytes }
                if backlog < options.flushBytes / 4 {
                    releaseFreedMemory()
                }
            }
            do throws(TallyError) {
                let parts = try writeParts([all], walLSN: lsn)
                state.withLock { st in
                    st.parts += parts
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

    /// Splits `batches` by month, sorts each month by the sort key and writes it as a part.
    func writeParts(_ batches: [EventBatch], walLSN: UInt64) throws(TallyError) -> [Part] {
        let all: EventBatch
        if batches.count == 1 {
            all = batches[0]
        } else {
            var joined = EventBatch()
            for b in batches { joined.append(contentsOf: b) }
            all = joined
        }
        let times = all[int: .occurredAt].values
        var byPartition: [Partition: [Int32]] = [:]
        var current = Partition(ms: times.first ?? 0)
        var range = current.range
        for i in 0..<all.count {
            if !range.contains(times[i]) {
                current = Partition(ms: times[i])
                range = current.range
            }
            byPartition[current, default: []].append(Int32(i))
        }
        var parts: [Part] = []
        let writer = PartWriter(fs: fs, directory: partsDirectory, granuleRows: options.granuleRows)
        for partition in byPartition.keys.sorted() {
            let order = SortKey.sortedOrder(all, rows: byPartition[partition]!)
            let number = state.withLock { st in
                defer { st.nextPartNumber += 1 }
                return st.nextPartNumber
            }
            let written = try writer.write(all, order: order, partition: partition, number: number, level: 0,
                                           walLSN: walLSN)
            parts.append(try Part.open(path: partsDirectory + "/" + written.name, name: written.name, number: number, fs: fs))
        }
        return parts
    }
}

#if canImport(Glibc)
    @_silgen_name("malloc_trim") private func malloc_trim(_ pad: Int) -> Int32
#endif

/// Hands memory freed by a flush back to the operating system. glibc keeps freed chunks of
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

/// glibc's allocator policy for a process running a store, set once when the first store opens.
///
/// Batches, WAL payloads and flush buffers are arrays of 1–32 MiB allocated and freed all the
/// time. By default glibc serves those with mmap and returns them with munmap (its dynamic
/// threshold adapts only partly), so every one is page-faulted in afresh. Serving them from the
/// heap and keeping up to 64 MiB of free heap top: page faults of a 1M-event `tally ingest`
/// 160k → 63k, system time 0.5 → 0.3 s (with per-flush trimming off; BENCHMARKS.md).
enum MemoryPolicy {
    static let configured: Void = {
        #if canImport(Glibc)
            _ = mallopt(-3, 32 << 20)  // M_MMAP_THRESHOLD: the largest value glibc accepts
            _ = mallopt(-1, 64 << 20)  // M_TRIM_THRESHOLD
        #endif
    }()
}
