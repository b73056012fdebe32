/// Checks a part beyond what opening it checks: every block's checksum and encoding, row
/// counts, the sort order, the primary index and time bounds, and that the bloom filters
/// contain their granule's keys. For `tally verify`.
public enum PartVerifier {
    public struct Problem: Sendable, CustomStringConvertible {
        public var file: String
        /// Byte offset of the block at fault, when one is.
        public var offset: Int?
        public var message: String
        public var description: String { "\(file)" + (offset.map { " at offset \($0)" } ?? "") + ": \(message)" }
    }

    /// The problems of the part file at `path` (empty when it is sound). A part that cannot be
    /// opened at all is one problem.
    public static func verify(path: String, fileSystem fs: any FileSystem = PosixFileSystem()) -> [Problem] {
        let name = String(path.split(separator: "/").last ?? "")
        guard let parsed = PartFormat.parseFileName(name) else {
            return [Problem(file: path, offset: nil, message: "not a part file name (expected \(PartFormat.fileExtension))")]
        }
        let part: Part
        do { part = try Part.open(path: path, name: name, number: parsed.number, fs: fs) } catch {
            return [Problem(file: path, offset: nil, message: error.message)]
        }
        return verify(part, fileSystem: fs)
    }

    public static func verify(_ part: Part, fileSystem fs: any FileSystem = PosixFileSystem()) -> [Problem] {
        var problems: [Problem] = []
        func problem(_ offset: Int?, _ message: String) {
            problems.append(Problem(file: part.path, offset: offset, message: message))
        }
        let f = part.footer
        if f.granules.reduce(0, { $0 + $1.rows }) != f.rows {
            problem(nil, "granule rows add up to \(f.granules.reduce(0) { $0 + $1.rows }), the footer says \(f.rows)")
        }
        var expectedFirst = 0
        for (g, meta) in f.granules.enumerated() {
            if meta.firstRow != expectedFirst { problem(nil, "granule \(g) starts at row \(meta.firstRow), expected \(expectedFirst)") }
            expectedFirst += meta.rows
        }
        let partition = f.partition.range
        var previous: EventBatch?
        var dictionaries: [EventColumn: StringColumn] = [:]
        for (g, meta) in f.granules.enumerated() {
            // Every column decodes (checksums, encodings, dictionary codes) to the granule's rows.
            var batch = EventBatch()
            var complete = true
            for c in EventColumn.allCases {
                let before = c.kind == .int64 ? batch[int: c].count : batch[string: c].count
                do {
                    try part.read(c, granule: g, into: &batch, dictionaries: &dictionaries)
                } catch {
                    problem(part.footer.column(c)?.granules[g].offset, error.message)
                    complete = false
                    continue
                }
                let n = (c.kind == .int64 ? batch[int: c].count : batch[string: c].count) - before
                if n != meta.rows {
                    problem(part.footer.column(c)?.granules[g].offset, "\(c.name) granule \(g) has \(n) values, the index says \(meta.rows)")
                    complete = false
                }
            }
            guard complete else {
                previous = nil
                continue
            }
            batch.setCount(meta.rows)
            let times = batch[int: .occurredAt].values
            if let lo = times.min(), let hi = times.max(), lo != meta.minTime || hi != meta.maxTime {
                problem(nil, "granule \(g) holds occurred_at \(lo)…\(hi), the index says \(meta.minTime)…\(meta.maxTime)")
            }
            if let t = times.first(where: { !partition.contains($0) }) {
                problem(nil, "granule \(g) holds occurred_at \(CivilTime.iso8601(ms: t)) outside partition \(f.partition)")
            }
            // Sort order within the granule and across the boundary with the previous one.
            if let p = previous, meta.rows > 0, SortKey.compare(p, p.count - 1, batch, 0) > 0 {
                problem(nil, "granule \(g) starts before the end of granule \(g - 1) in sort order")
            }
            for i in 1..<max(1, meta.rows) where SortKey.compare(batch, i - 1, batch, i) > 0 {
                problem(nil, "granule \(g) rows \(i - 1) and \(i) are out of sort order")
                break
            }
            // Primary index bounds.
            if meta.rows > 0 {
                let first = Part.lookup(batch[string: .siteID].string(at: 0) ?? "", in: part.sites).code
                let last = Part.lookup(batch[string: .siteID].string(at: meta.rows - 1) ?? "", in: part.sites).code
                if first != meta.firstSite || last != meta.lastSite {
                    problem(nil, "granule \(g) spans site codes \(first)…\(last), the index says \(meta.firstSite)…\(meta.lastSite)")
                }
            }
            // Bloom filters hold every key of their granule.
            for (k, column) in PartFormat.bloomColumns.enumerated() where k < meta.blooms.count {
                let bloom: SplitBlockBloomFilter?
                do { bloom = try part.bloom(column, granule: g) } catch {
                    problem(meta.blooms[k].offset, error.message)
                    continue
                }
                guard let bloom else { continue }
                let col = batch[string: column]
                for r in 0..<meta.rows {
                    if !col.withValue(r, { bloom.mayContain(hash: TallyHash.hash($0)) }) {
                        problem(meta.blooms[k].offset, "\(column.name) bloom filter of granule \(g) lacks row \(r)'s value")
                        break
                    }
                }
            }
            previous = batch
        }
        // Session summaries: they must open (belong to this part) and agree with its rows.
        let summaryPath = SessionSummaryFile.path(forPart: part.path)
        if fs.exists(summaryPath) {
            do {
                let summaries = try SessionSummaryFile.open(path: summaryPath, partFileSize: part.fileSize,
                                                            partFooterCRC: part.footerCRC, fs: fs)
                for (offset, message) in summaries.problems(against: part) {
                    problems.append(Problem(file: summaryPath, offset: offset, message: message))
                }
            } catch {
                problems.append(Problem(file: summaryPath, offset: nil, message: error.message))
            }
        }
        return problems
    }
}
