import Foundation

/// When background merges combine parts (FORMAT.md, "Merges").
///
/// Size-tiered: a part's tier is 0 below `baseRows` rows, else 1 + ⌊log₄(rows / baseRows)⌋.
/// Once a partition holds `fanIn` parts of one tier, up to `maxFanIn` of them (oldest first) are
/// merged into one part of a higher tier. Parts of `maxPartRows` or more are left alone. So
/// while merges keep up, a partition holds at most (fanIn − 1) parts per tier — 7 per tier
/// between the flushes' size and the month's (4–5 tiers for months of 1–10M events), plus one
/// per 2²⁸ rows beyond the largest tier — however long ingest runs, and every row is rewritten
/// about once per eightfold growth of its part (8 parts of a tier become one).
///
/// `fanIn` is 8, not 4: merging four at a time rewrote each row once per fourfold growth, and
/// merges were most of what grew with the store. A 10M-event `tally ingest`: 174–218k → 248k
/// events/s, CPU 89–110 → 76 s, same peak RSS; 3M: 234–252k → 272–281k. It costs parts: 45–48
/// instead of 30–35 at 10M, and queries on 3M events moved within −8 … +10 % (session_stats
/// +9 %, top_referrers +10 %; BENCHMARKS.md, twelfth session).
///
/// `baseRows` is small so that tiers are geometric from the size of a flush up: a part in tier
/// 0 is merged again with parts of its own size until it leaves the tier, so a wide tier 0
/// rewrites its growing part again every few flushes. With the earlier 2¹⁸, a 1M-event
/// `tally ingest` (flushes of 26–62k rows) merged its flushed parts into a ~160k-row part and
/// that one again with the next three flushes (2.0 writes per row instead of 1: 1M events
/// 5–9 % faster, BENCHMARKS.md, eleventh session), and a quiet server flushing
/// 100 rows every 10 s rewrote each row ~40 times before it reached 2¹⁸ rows (simulated; ~4
/// times with 2¹⁰).
///
/// Three merger threads share the work: one runs merges of fewer than `bigMergeRows` rows in
/// all, one the bigger ones, one the rollup merges, so that a merge of large parts, which takes
/// minutes under load, does not hold up the small merges that keep the part count down (one
/// thread let a month reach 43 parts in a 10-minute run at 50k events/s, two threads with
/// rollup merges beside the small ones 32; BENCHMARKS.md; both with fan-in 4). Rollup parts of
/// a month are tiered the same way with `rollupBaseRows`, never below their level
/// (`rollupTier`), and merged only below `maxRollupMergeRows` in all.
public struct MergePolicy: Sendable {
    public var fanIn = 8
    public var maxFanIn = 10
    public var baseRows = 1 << 10
    /// A merged part below this many rows is compressed at the flush's zstd level
    /// (`Codec.flushZstdLevel`): merges will write it again soon.
    public var fastCompressionRows = 1 << 18
    public var maxPartRows = 1 << 28
    public var bigMergeRows = 1 << 21
    public var rollupBaseRows = 1 << 12
    /// A rollup merge stays below this many rows in all, and rollup parts this big are
    /// left alone (`tally merge` still merges everything). A rollup merge holds every
    /// group of its output in memory (~125 bytes each): the merges of a month's big `pages`
    /// and `widgets` parts (~800k rows at 10M events) were the peak of a 10M-event
    /// `tally ingest` (~110 of 185 MB of heap, heaptrack; BENCHMARKS.md, twelfth session).
    /// Parts this big come from bulk loads, whose parts are mostly of different days: their
    /// rows rarely share a group, so leaving them apart costs queries few extra rows. (A
    /// server's parts share the same days' groups; they merge as long as their total stays
    /// below this.)
    public var maxRollupMergeRows = 1 << 19

    public init() {}

    /// Which merger thread a merge belongs to.
    public enum Lane: Int, Sendable, CaseIterable {
        case small, big, rollups
    }

    func lane(rows: Int) -> Lane { rows < bigMergeRows ? .small : .big }

    public func tier(_ rows: Int, base: Int? = nil) -> Int {
        let base = base ?? baseRows
        return rows < base ? 0 : 1 + fourfoldSteps(rows, from: base)
    }

    /// The parts of one partition (listed oldest first) to merge next, or nil; with `lane`,
    /// only a merge of that lane.
    func pick(_ parts: [Part], lane: Lane? = nil) -> [Part]? {
        let tiers = Dictionary(grouping: parts.filter { $0.rows < maxPartRows }, by: { tier($0.rows) })
        for t in tiers.keys.sorted() {
            let group = tiers[t]!
            guard group.count >= fanIn else { continue }
            let task = Array(group.sorted { $0.number < $1.number }.prefix(maxFanIn))
            if let lane, self.lane(rows: task.reduce(0) { $0 + $1.rows }) != lane { continue }
            return task
        }
        return nil
    }

    /// A rollup part's size tier, at least its level. Rows of one day collapse into the same
    /// groups, so merging parts of the same days makes a part no bigger than its inputs: by rows
    /// alone it stayed in its tier and was merged again each time seven more parts reached it.
    /// A server under steady load merged the current month's `pages` rollup part 19 times in
    /// 80 flushes, and rollup merges took 13 % of its CPU (perf; BENCHMARKS.md, twelfth
    /// session). A merged rollup part's level is one above its inputs' highest tier (not
    /// level), so each merge moves its rows up a tier: a group is rewritten about once per
    /// eightfold growth of the flushes behind it, as raw merges do.
    func rollupTier(_ part: RollupPart) -> Int {
        max(tier(part.rows, base: rollupBaseRows), part.level)
    }

    /// The rollup parts of one month (oldest first) to merge next, or nil: `fanIn` or more of
    /// one size tier below `maxRollupMergeRows`, smallest tier first: up to `maxFanIn` of the
    /// oldest that stay below it in all, if that is two or more; with `force`, all of them once
    /// there are two.
    func pickRollups(_ parts: [RollupPart], force: Bool) -> [RollupPart]? {
        if force { return parts.count >= 2 ? parts : nil }
        let tiers = Dictionary(grouping: parts.filter { $0.rows < maxRollupMergeRows }, by: rollupTier)
        for t in tiers.keys.sorted() where tiers[t]!.count >= fanIn {
            // Oldest first, skipping a part that would take the merge to the cap: stopping there
            // instead left a tier whose two oldest parts do not fit together unmerged for good.
            var task: [RollupPart] = []
            var rows = 0
            for p in tiers[t]!.sorted(by: { $0.number < $1.number }) where rows + p.rows < maxRollupMergeRows {
                task.append(p)
                rows += p.rows
                if task.count == maxFanIn { break }
            }
            if task.count >= 2 { return task }
        }
        return nil
    }
}

/// ⌊log₄(n / base)⌋, 0 below 4 × base: how many times a size grew fourfold from `base`. The
/// size tiers of merges (`MergePolicy.tier`) and of dedupe runs (`ShardedUInt64Set`).
func fourfoldSteps(_ n: Int, from base: Int) -> Int {
    var t = 0, bound = base * 4
    while n >= bound && bound <= Int.max / 4 {
        t += 1
        bound *= 4
    }
    return t
}

/// What one merge did.
public struct MergeReport: Sendable {
    public var partition: Partition
    public var inputs: [String]
    public var output: String
    public var rows: Int
    public var duplicatesDropped: Int
    public var inputBytes: Int
    public var outputBytes: Int
    public var seconds: Double
}

extension EventStore {
    /// Runs merges until the policy finds nothing more to merge (or, with `force`, until each
    /// partition — or just `partition` — is one part: what `tally merge` does). Returns what
    /// was merged. Safe beside ingest, queries and the background merger.
    public func mergeNow(partition: Partition? = nil, force: Bool = false) throws(TallyError) -> [MergeReport] {
        guard !options.readOnly else { throw TallyError(.closed, "\(options.directory) is open read-only") }
        var reports: [MergeReport] = []
        while let task = nextMergeTask(partition: partition, force: force) {
            if let r = try runMerge(task, final: force) { reports.append(r) } else { break }
        }
        return reports
    }

    /// Picks and reserves the next merge: parts not already merging, of a partition not being
    /// dropped. The partition with the most parts goes first.
    func nextMergeTask(partition only: Partition? = nil, force: Bool = false, lane: MergePolicy.Lane? = nil) -> [Part]? {
        state.withLock { st -> [Part]? in
            if st.closed { return nil }
            let free = st.parts.filter {
                !st.merging.contains($0.number) && !st.droppingPartitions.contains($0.partition)
                    && (only == nil || $0.partition == only)
            }
            let byPartition = Dictionary(grouping: free, by: \.partition)
            for (_, parts) in byPartition.sorted(by: { $0.value.count > $1.value.count }) {
                let task: [Part]?
                if force {
                    task = parts.count > 1 ? Array(parts.sorted { $0.number < $1.number }.prefix(16)) : nil
                } else {
                    task = options.mergePolicy.pick(parts, lane: lane)
                }
                if let task {
                    st.merging.formUnion(task.map(\.number))
                    return task
                }
            }
            return nil
        }
    }

    /// Merges `task` (reserved by `nextMergeTask`) and publishes the result: new snapshots see
    /// the merged part instead of the inputs; the inputs' files are deleted (a snapshot still
    /// holding them keeps reading its open files until it is released). Nil when cancelled
    /// (store closing, partition dropped).
    /// `final`: a merge down to one part per partition (`tally merge`), whose output no
    /// further merge is expected to rewrite.
    func runMerge(_ task: [Part], final: Bool = false) throws(TallyError) -> MergeReport? {
        let numbers = Set(task.map(\.number))
        let partition = task[0].partition
        let started = DispatchTime.now().uptimeNanoseconds
        let number = state.withLock { st in
            defer { st.nextPartNumber += 1 }
            return st.nextPartNumber
        }
        // A small merged part will be merged again: compressed faster (unless this merge is
        // meant to leave one part).
        let rows = task.reduce(0) { $0 + $1.rows }
        let rewritten = !final && rows < options.mergePolicy.fastCompressionRows
        // Inputs without session summaries get theirs first, so that the merged part's are
        // combined from them below: built from the merged part's rows instead, every row's
        // summary was built again at each merge it went through (~3.8 times per row under
        // sustained HTTP ingest: 1.9 µs of the server's ~21 µs per event, BENCHMARKS.md). If an
        // input cannot be summarized, the others are not either (there is nothing to combine):
        // the merged part is then summarized from its rows by the background build, which
        // reports what it finds. Closing or dropping the partition stops the builds, as it stops
        // the merge.
        for p in task where p.sessionSummaries == nil {
            if state.withLock({ $0.closed || $0.droppingPartitions.contains(partition) }) {
                state.withLock { $0.merging.subtract(numbers) }
                return nil
            }
            guard let summaries = try? SessionSummaryFile.build(for: p, fs: fs) else { break }
            p.attach(summaries)
        }
        let merger = PartMerger(fs: fs, directory: partsDirectory, granuleRows: options.granuleRows,
                                zstdLevel: rewritten ? Codec.flushZstdLevel : Codec.zstdLevel)
        let outcome: PartMerger.Outcome?
        var corrections: [String: [RollupPart]] = [:]
        do throws(TallyError) {
            outcome = try merger.merge(task, number: number, isCancelled: { [self] in
                state.withLock { $0.closed || $0.droppingPartitions.contains(partition) }
            }, beforePublish: { [self] (duplicates) throws(TallyError) in
                // The rollups counted the dropped copies: a correction part takes them back out,
                // written before the merged part appears so a crash cannot separate the two.
                guard duplicates.count > 0 else { return }
                corrections = try writeRollups(
                    [duplicates], coverage: 0, sign: -1,
                    provenance: RollupProvenance(correctsPart: number, correctedInputs: numbers.sorted()))
            })
        } catch {
            for p in corrections.values.joined() { try? fs.remove(p.path) }
            state.withLock { $0.merging.subtract(numbers) }
            throw error
        }
        guard let outcome else {
            state.withLock { $0.merging.subtract(numbers) }
            return nil
        }
        let path = partsDirectory + "/" + outcome.written.name
        let part: Part
        do throws(TallyError) {
            part = try Part.open(path: path, name: outcome.written.name, number: number, fs: fs)
        } catch {
            try? fs.remove(path)
            state.withLock { $0.merging.subtract(numbers) }
            throw error
        }
        // The inputs' session summaries, combined, are the merged part's (unless duplicates
        // went: then the background builds them from its rows). Written before the part is
        // published; a crash leaves them with a part that lists the inputs as replaced.
        if outcome.duplicates.count == 0, let summaries = try? SessionSummaryFile.combine(task, into: part, fs: fs) {
            part.attach(summaries)
        }
        let published = state.withLock { st -> Bool in
            defer { st.merging.subtract(numbers) }
            guard st.parts.filter({ numbers.contains($0.number) }).count == task.count else { return false }
            st.parts.removeAll { numbers.contains($0.number) }
            st.parts.append(part)
            st.parts.sort { $0.number < $1.number }
            st.merges.completed += 1
            st.merges.rows += part.rows
            st.merges.duplicatesDropped += outcome.duplicates.count
            for (name, r) in corrections { st.rollupParts[name, default: []] += r }
            return true
        }
        guard published else {
            // The inputs went meanwhile (a partition drop): the merged copy must not outlive them.
            for p in corrections.values.joined() { try fs.remove(p.path) }
            try Self.removePartFiles(part, fs: fs)
            try fs.syncDirectory(partsDirectory)
            return nil
        }
        for p in task { try Self.removePartFiles(p, fs: fs) }
        try fs.syncDirectory(partsDirectory)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        return MergeReport(partition: partition, inputs: task.map(\.name), output: part.name, rows: part.rows,
                           duplicatesDropped: outcome.duplicates.count, inputBytes: task.reduce(0) { $0 + $1.fileSize },
                           outputBytes: part.fileSize, seconds: seconds)
    }

    /// Parts that a merged part on disk lists as its sources: a merge published the merged part
    /// and died before deleting them. Their rows are in the merged part.
    static func superseded(_ parts: [Part]) -> Set<Int> {
        Set(parts.flatMap(\.footer.sources))
    }
}

/// Counters of merges since the store opened.
public struct MergeCounters: Sendable {
    public var completed = 0
    public var rows = 0
    public var duplicatesDropped = 0
}
