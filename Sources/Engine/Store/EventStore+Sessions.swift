extension EventStore {
    /// Builds the session summaries (`SessionSummaryFile`) of every part that has none — parts
    /// just flushed or merged, parts of an older build, parts whose summaries were damaged —
    /// biggest part first; returns how many were built. The background merger's rollup thread
    /// runs this after each round, so a served store keeps them current by itself; `tally
    /// merge` and tests call it directly. Safe beside ingest, queries and merges: a part is
    /// reserved (as for a merge) while its summaries are built.
    @discardableResult
    public func buildSessionSummaries() throws(TallyError) -> Int {
        guard !options.readOnly else { throw TallyError(.closed, "\(options.directory) is open read-only") }
        var built = 0
        while let part = nextPartWithoutSummaries() {
            defer { state.withLock { _ = $0.merging.remove(part.number) } }
            let summaries = try SessionSummaryFile.build(for: part, fs: fs)
            part.attach(summaries)
            let kept = state.withLock { st in st.parts.contains { $0 === part } }
            if !kept {
                // Dropped meanwhile: the summaries must not outlive their part.
                try? fs.remove(SessionSummaryFile.path(forPart: part.path))
            }
            built += 1
        }
        return built
    }

    /// Reserves the biggest part without session summaries that nothing else is working on.
    private func nextPartWithoutSummaries() -> Part? {
        state.withLock { st -> Part? in
            if st.closed { return nil }
            let candidate = st.parts.filter {
                $0.sessionSummaries == nil && !st.merging.contains($0.number) && !st.droppingPartitions.contains($0.partition)
            }.max { $0.rows < $1.rows }
            if let candidate { st.merging.insert(candidate.number) }
            return candidate
        }
    }

    /// Deletes a raw part's files: the part and its session summaries.
    static func removePartFiles(_ part: Part, fs: any FileSystem) throws(TallyError) {
        try fs.remove(part.path)
        let summaries = SessionSummaryFile.path(forPart: part.path)
        if fs.exists(summaries) { try fs.remove(summaries) }
    }

    /// Deletes session summaries whose part is gone (a crash between deleting the two).
    static func removeOrphanSummaries(parts: [Part], directory: String, fs: any FileSystem) throws(TallyError) {
        let names = Set(parts.map(\.name))
        var removed = false
        for name in try fs.list(directory) {
            guard let partName = SessionSummaryFile.partName(of: name), !names.contains(partName) else { continue }
            try fs.remove(directory + "/" + name)
            removed = true
        }
        if removed { try fs.syncDirectory(directory) }
    }
}
