import Foundation

/// What `EventStore.backup(to:)` wrote.
public struct StoreBackup: Sendable {
    public struct File: Sendable, Equatable {
        /// Relative to the backup directory: `parts/…`, `rollups/NAME/…`, `wal/…`.
        public var path: String
        public var bytes: Int
    }

    public var files: [File] = []
    /// The snapshot position: every event whose WAL record has this LSN or a lower one is in the
    /// copy (in its parts or its WAL), and none after it.
    public var walLSN: UInt64 = 0
    /// Files made as hard links (same file system, no bytes copied) and files copied.
    public var linked = 0
    public var copied = 0
}

extension EventStore {
    /// Copies the store as of one instant into `destination` (which must not exist, or be an
    /// empty directory) while ingest, flushes and merges go on (FORMAT.md, "Backups").
    ///
    /// Parts are immutable, so the copy is a set of hard links (or copies, on another file
    /// system) of the parts and rollup parts of one snapshot, plus the WAL records not yet in
    /// those parts, cut at the last whole record. The snapshot is taken holding the rollup and
    /// flush locks, so no flush publishes parts or deletes WAL segments and no rollup part is
    /// replaced meanwhile; the WAL segments are opened then, so a flush that deletes them later
    /// does not take them from the copy. Raw merges may publish meanwhile: a merged-away input
    /// is copied from the snapshot's open file. Session summaries are linked when still there
    /// (they are derived: a restored store rebuilds missing ones).
    public func backup(to destination: String) throws(TallyError) -> StoreBackup {
        if fs.exists(destination) {
            guard try fs.list(destination).isEmpty else {
                throw TallyError(.invalidArgument, "\(destination) exists and is not empty: a backup goes into a new directory")
            }
        }
        var result = StoreBackup()
        for directory in ["parts", "wal", "rollups"] { try fs.createDirectory(destination + "/" + directory) }

        func place(_ source: String, _ relative: String, bytes: Int) throws(TallyError) -> Bool {
            let target = destination + "/" + relative
            guard fs.hardLink(source, to: target) else { return false }
            result.files.append(.init(path: relative, bytes: bytes))
            result.linked += 1
            return true
        }

        // 1. The snapshot, under the locks: link what can be linked, open the WAL segments.
        var unlinked: [Part] = []
        var segments: [(name: String, file: any StoredFile, size: Int)] = []
        // Rollup files that could not be linked, opened under the lock and copied after it.
        var rollupCopies: [(file: any StoredFile, relative: String, bytes: Int)] = []
        defer {
            for s in segments { s.file.close() }
            for r in rollupCopies { r.file.close() }
        }
        var partsLSN: UInt64 = 0
        rollupLock.lock()
        do {
            defer { rollupLock.unlock() }
            try flushLock.withLock { (_) throws(TallyError) in
                let (parts, rollups, dropped) = state.withLock { ($0.parts, $0.rollupParts, $0.dropped) }
                if !dropped.isEmpty {
                    try DroppedMarks.write(dropped, destination, fs: fs)
                    result.files.append(.init(path: DroppedMarks.fileName, bytes: 16 + 12 * dropped.count))
                    result.copied += 1
                }
                partsLSN = parts.map(\.footer.walLSN).max() ?? 0
                for part in parts {
                    if try !place(part.path, "parts/" + part.name, bytes: part.fileSize) { unlinked.append(part) }
                    let summaries = SessionSummaryFile.path(forPart: part.path)
                    let name = (summaries as NSString).lastPathComponent
                    if fs.exists(summaries), let size = try? fileSize(summaries) {
                        _ = try place(summaries, "parts/" + name, bytes: size)
                    }
                }
                for def in options.rollups {
                    let directory = rollupDirectory(def.name)
                    let relative = "rollups/" + def.name
                    try fs.createDirectory(destination + "/" + relative)
                    var files = (rollups[def.name] ?? []).map { (path: $0.path, name: $0.name, bytes: $0.fileSize) }
                    let coverage = directory + "/" + RollupCoverage.fileName
                    if fs.exists(coverage) { files.append((coverage, RollupCoverage.fileName, try fileSize(coverage))) }
                    // Rollup files cannot go while the rollup lock is held: opened now when they
                    // cannot be linked, copied once the locks are released.
                    for f in files where try !place(f.path, relative + "/" + f.name, bytes: f.bytes) {
                        rollupCopies.append((try fs.openForReading(f.path), relative + "/" + f.name, f.bytes))
                    }
                }
                for (name, _) in try wal.segmentFiles() {
                    let file = try fs.openForReading(wal.directory + "/" + name)
                    segments.append((name, file, try file.size()))
                }
            }
        }

        // 2. Raw parts a merge or drop removed since the snapshot (or on another file system),
        //    from the snapshot's open files; rollup files from theirs.
        for r in rollupCopies {
            try copy(from: r.file, count: r.bytes, to: destination + "/" + r.relative)
            result.files.append(.init(path: r.relative, bytes: r.bytes))
            result.copied += 1
        }
        for part in unlinked {
            try copy(from: part.file, count: part.fileSize, to: destination + "/parts/" + part.name)
            result.files.append(.init(path: "parts/" + part.name, bytes: part.fileSize))
            result.copied += 1
        }

        // 3. The WAL up to the last whole record of each segment as it was at the snapshot.
        var walLSN: UInt64 = 0
        for s in segments.sorted(by: { $0.name < $1.name }) {
            let bytes = try s.file.read(at: 0, count: s.size)
            guard let first = WALFormat.parseFileName(s.name) else { continue }
            // A segment without a whole record (just started) holds nothing to keep.
            guard let last = WALScan.scan(bytes, name: s.name, firstLSN: first).records.last else { continue }
            let end = last.offset + last.size
            walLSN = max(walLSN, last.lsn)
            let target = destination + "/wal/" + s.name
            let f = try fs.openForWriting(target, truncate: true)
            do throws(TallyError) {
                try bytes.withBytes { (b) throws(TallyError) in try f.append(UnsafeRawBufferPointer(rebasing: b[0..<end])) }
                try f.sync()
            } catch {
                f.close()
                throw error
            }
            f.close()
            result.files.append(.init(path: "wal/" + s.name, bytes: end))
            result.copied += 1
        }
        result.walLSN = max(walLSN, partsLSN)

        for directory in ["parts", "wal"] + options.rollups.map({ "rollups/" + $0.name }) + ["rollups", ""] {
            try fs.syncDirectory(directory.isEmpty ? destination : destination + "/" + directory)
        }
        result.files.sort { $0.path < $1.path }
        return result
    }

    private func fileSize(_ path: String) throws(TallyError) -> Int {
        let f = try fs.openForReading(path)
        defer { f.close() }
        return try f.size()
    }

    /// Copies the first `count` bytes of `source` to a new file `target` (fsynced), in 4 MiB steps.
    private func copy(from source: any StoredFile, count: Int, to target: String) throws(TallyError) {
        let out = try fs.openForWriting(target, truncate: true)
        defer { out.close() }
        var offset = 0
        while offset < count {
            let chunk = try source.read(at: offset, count: min(4 << 20, count - offset))
            guard !chunk.isEmpty else { throw TallyError(.io, "\(source.path) ended at byte \(offset) of \(count) while copying it") }
            try out.append(chunk)
            offset += chunk.count
        }
        try out.sync()
    }
}
