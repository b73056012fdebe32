/// Hooks for fault-injection tests: they leave the store as a crash at a chosen moment would.
extension EventStore {
    /// Stops the WAL writer and flusher and releases the directory lock without flushing:
    /// the data directory is left as if the process had died after its last acknowledgement.
    @_spi(Testing) public func abandonForTesting() throws(TallyError) {
        state.withLock { $0.closed = true }
        wakeFlusher()
        wal.close()
        lock.release()
    }

    /// Writes parts for the buffered rows of `onlyPartitions` only, as a flush that died
    /// between publishing one month's part and the next would leave the directory.
    @_spi(Testing) public func flushForTesting(onlyPartitions: Set<Partition>) throws(TallyError) {
        let (batches, lsn) = state.withLock { st in (st.active.map(\.batch), st.active.last?.lsn ?? 0) }
        var keep = EventBatch()
        for b in batches {
            let times = b[int: .occurredAt].values
            for i in 0..<b.count where onlyPartitions.contains(Partition(ms: times[i])) { keep.append(from: b, row: i) }
        }
        _ = try writeParts([keep], walLSN: lsn)
    }
}
