/// A read-only look at a data directory: parts and WAL segments, opened without replaying,
/// truncating or locking anything, so it is safe beside a running server.
public struct Inventory: Sendable {
    public struct PartInfo: Sendable {
        public let part: Part
        public var name: String { part.name }
    }

    public var parts: [Part] = []
    /// Parts that could not be opened, with the reason.
    public var problems: [String] = []
    public var walSegments: [(name: String, size: Int)] = []
    /// Rollup parts by rollup name (directories under `rollups/`).
    public var rollups: [String: [RollupPart]] = [:]

    public init(directory: String, fileSystem fs: any FileSystem = PosixFileSystem()) throws(TallyError) {
        let partsDirectory = directory + "/parts"
        guard fs.exists(directory) else { throw TallyError(.notFound, "no data directory at \(directory)") }
        // A running server's merge may delete a listed part before it is opened; the merged part
        // that holds its rows was renamed into place after the listing began, so the listing is
        // taken again until every listed part opens (or a few tries fail: a partition drop).
        for attempt in 0..<8 where fs.exists(partsDirectory) {
            var vanished = false
            parts = []
            problems = []
            for name in try fs.list(partsDirectory) {
                guard let parsed = PartFormat.parseFileName(name) else { continue }
                do {
                    parts.append(try Part.open(path: partsDirectory + "/" + name, name: name, number: parsed.number, fs: fs))
                } catch {
                    if fs.exists(partsDirectory + "/" + name) { problems.append(error.description) } else { vanished = true }
                }
            }
            if !vanished || attempt == 7 { break }
        }
        // A running server may be between publishing a merged part and deleting its inputs.
        let superseded = EventStore.superseded(parts)
        parts.removeAll { superseded.contains($0.number) }
        let rollupDirectory = directory + "/rollups"
        if fs.exists(rollupDirectory) {
            for name in try fs.list(rollupDirectory).sorted() where fs.exists(rollupDirectory + "/" + name + "/" + RollupCoverage.fileName) {
                var list: [RollupPart] = []
                for file in try fs.list(rollupDirectory + "/" + name) {
                    guard let parsed = RollupFormat.parseFileName(file) else { continue }
                    do {
                        list.append(try RollupPart.open(path: rollupDirectory + "/" + name + "/" + file, name: file,
                                                        number: parsed.number, fs: fs, cache: nil))
                    } catch {
                        if fs.exists(rollupDirectory + "/" + name + "/" + file) { problems.append(error.description) }
                    }
                }
                let superseded = Set(list.flatMap(\.provenance.sources))
                // Parts of a flush not yet committed (a server mid-flush, or a crash's half) are
                // left out, as opening the directory would.
                let file = try? RollupCoverage.read(rollupDirectory + "/" + name, fs: fs)
                let mark = file?.committed == true ? file?.mark : nil
                rollups[name] = list.filter { p in
                    !superseded.contains(p.number) && !(mark.map { p.isFlushPart && p.provenance.coverage > $0 } ?? false)
                }.sorted { $0.number < $1.number }
            }
        }
        let walDirectory = directory + "/wal"
        if fs.exists(walDirectory) {
            for name in try fs.list(walDirectory) where WALFormat.parseFileName(name) != nil {
                // A segment a flush deleted since the listing is skipped.
                guard let f = try? fs.openForReading(walDirectory + "/" + name) else { continue }
                walSegments.append((name, try f.size()))
                f.close()
            }
        }
    }

    public var partitions: [Partition: [Part]] { Dictionary(grouping: parts, by: \.partition) }

    /// Events in the parts received at or after `cutoff` (ms): the ids a writer opening the
    /// directory keeps in its dedupe window. Reads the received_at column of parts that straddle
    /// the cutoff only; the footer's min/max received time decides for the others.
    public func eventsReceived(since cutoff: Int64) throws(TallyError) -> Int {
        var total = 0
        for p in parts where p.footer.maxReceived >= cutoff {
            if p.footer.minReceived >= cutoff {
                total += p.rows
                continue
            }
            var dictionaries: [EventColumn: StringColumn] = [:]
            for g in 0..<p.footer.granules.count {
                var b = EventBatch(columns: [.receivedAt])
                try p.read(.receivedAt, granule: g, into: &b, dictionaries: &dictionaries)
                total += b[int: .receivedAt].values.reduce(0) { $0 + ($1 >= cutoff ? 1 : 0) }
            }
        }
        return total
    }
}
