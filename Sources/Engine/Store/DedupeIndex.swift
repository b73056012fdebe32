import Foundation
import Synchronization

/// The keys of events accepted within the dedupe window, to refuse retries.
///
/// A key is XXH3-64 of event_id seeded with XXH3-64 of site_id. Keys live in generations
/// that each cover 1/8 of the window by received time; a generation is dropped whole once
/// it is older than the window. With N keys in the window, a new event is wrongly taken
/// for a duplicate with probability N/2^64 (≈ 7e-13 for 12M keys, a month of seed 000's
/// top volume): documented in FORMAT.md, accepted for 8 bytes per key. Sealed keys live in
/// files with a Bloom filter in memory (`ShardedUInt64Set`, `SealedKeys`).
struct DedupeIndex {
    private struct Generation {
        var start: Int64
        var keys: ShardedUInt64Set
    }

    let window: Int64
    /// Where sealed keys are written (nil: kept in memory).
    let directory: String?
    private let sealAt: Int
    private var generations: [Generation] = []
    private var span: Int64 { max(1, window / 8) }

    init(window: Int64, directory: String? = nil, sealAt: Int = ShardedUInt64Set.defaultSealAt) {
        self.window = window
        self.directory = directory
        self.sealAt = sealAt
    }

    /// Keys held in files rather than in memory.
    var fileCount: Int { generations.reduce(0) { $0 + $1.keys.fileCount } }

    static func key(site: UnsafeRawBufferPointer, eventID: UnsafeRawBufferPointer) -> UInt64 {
        TallyHash.hash(eventID, seed: TallyHash.hash(site))
    }

    var count: Int { generations.reduce(0) { $0 + $1.keys.count } }
    /// Keys held in sorted arrays (`sealStep`).
    var sealedCount: Int { generations.reduce(0) { $0 + $1.keys.sealedCount } }

    func contains(_ key: UInt64) -> Bool {
        for i in generations.indices where generations[i].keys.contains(key) { return true }
        return false
    }

    /// Adds `key` received at `time`; false if it was already present. With `jobs`, tables
    /// big enough to seal are handed to jobs appended to it (`install` their results).
    mutating func insert(_ key: UInt64, time: Int64, jobs: inout [SealJob]?) -> Bool {
        if contains(key) { return false }
        let start = time - ((time % span) + span) % span
        if let k = generations.lastIndex(where: { $0.start == start }) {
            generations[k].keys.insert(key, jobs: &jobs)
        } else {
            generations.append(Generation(start: start, keys: ShardedUInt64Set(directory: directory, tag: start, sealAt: sealAt)))
            generations.sort { $0.start < $1.start }
            let k = generations.firstIndex { $0.start == start }!
            generations[k].keys.insert(key, jobs: &jobs)
        }
        return true
    }

    /// Adds `key`, sealing tables in place when they are big enough.
    mutating func insert(_ key: UInt64, time: Int64) -> Bool {
        var none: [SealJob]? = nil
        return insert(key, time: time, jobs: &none)
    }

    /// Installs what a seal job built, if its generation is still there.
    mutating func install(_ job: SealJob, _ result: SealedKeys?) {
        guard let k = generations.firstIndex(where: { $0.start == job.tag }) else { return }
        generations[k].keys.install(job, result)
    }

    mutating func remove(_ key: UInt64) {
        for k in generations.indices { generations[k].keys.remove(key) }
    }

    /// Drops generations that ended before `now - window`.
    mutating func expire(now: Int64) {
        let cutoff = now - window - span
        generations.removeAll { $0.start <= cutoff }
    }

    /// Seals one shard of a generation other than the newest into a single run
    /// (`ShardedUInt64Set.sealOneShard`); false when there are none. Only the newest generation
    /// gets the keys of events received now: the others, seven eighths of the window once it is
    /// full, stop changing. One shard (1/16 of a generation) per call, handed to a job in `jobs`
    /// (run outside the store's lock, then `install`ed).
    mutating func sealStep(jobs: inout [SealJob]?) -> Bool {
        guard let newest = generations.map(\.start).max() else { return false }
        for k in generations.indices where generations[k].start != newest {
            if generations[k].keys.sealOneShard(jobs: &jobs) { return true }
        }
        return false
    }
}

/// A set of uniformly distributed UInt64 (hashes) in 16 shards chosen by the top four bits.
/// Each shard holds its newest keys in a `UInt64Set` and the rest sorted (`SealedKeys`): in a
/// file when the index has a directory, with a blocked Bloom filter in memory, so that a key
/// costs ~1.25 bytes of memory instead of the table's 11-21 (a server's dedupe set was 67 MB
/// for 3.5M keys, heaptrack; BENCHMARKS.md). The file is read only when the filter lets a key
/// through (~1 % of new keys, and true duplicates).
///
/// A shard's table is sealed into a new *run* (sorted keys in a file) once it holds `sealAt`
/// keys, and runs are merged size-tiered: a run of n keys is of tier ⌊log₄(n / sealAt)⌋, and a
/// seal that would leave four runs of one tier merges them (with the table) into one, so a
/// shard has at most three runs per tier and each key is written again ~log₄(keys / sealAt)
/// times. The tables stay below 16 × `sealAt` keys however many the window holds. (They were
/// sealed once they held a quarter of the shard's sealed keys, into one file per shard: the
/// tables held up to a fifth of the window's keys, 34 MB of a 10M-event `tally ingest`'s
/// 249 MB peak heap, heaptrack, and grew without bound in a long-running server.)
struct ShardedUInt64Set {
    private var shards = [UInt64Set](repeating: UInt64Set(), count: 16)
    /// A table handed to a `SealJob` (sorted and written outside the store's lock), still
    /// searched until the job's keys are installed.
    private var pending = [UInt64Set?](repeating: nil, count: 16)
    /// Per shard, its runs, oldest (biggest) first.
    private var runs = [[SealedKeys]](repeating: [], count: 16)
    /// Sealed keys removed since their shard was last sealed (rare: a WAL write that failed).
    private var removed = [Set<UInt64>](repeating: [], count: 16)
    /// Where sealed keys go (nil: kept in memory).
    private let directory: String?
    private let sealAt: Int
    /// The generation's start, naming its files.
    private let tag: Int64

    init(directory: String? = nil, tag: Int64 = 0, sealAt: Int = ShardedUInt64Set.defaultSealAt) {
        self.directory = directory
        self.tag = tag
        self.sealAt = max(1, sealAt)
    }

    static let defaultSealAt = 1 << 16

    var count: Int { shards.reduce(0) { $0 + $1.count } + pending.reduce(0) { $0 + ($1?.count ?? 0) } + sealedCount }
    var sealedCount: Int { (0..<16).reduce(0) { $0 + runs[$1].reduce(0) { $0 + $1.count } - removed[$1].count } }
    var fileCount: Int { runs.reduce(0) { $0 + $1.reduce(0) { $0 + ($1.inFile ? $1.count : 0) } } }
    /// Runs of sealed keys, all shards.
    var runCount: Int { runs.reduce(0) { $0 + $1.count } }

    @inline(__always) private static func shard(_ k: UInt64) -> Int { Int(truncatingIfNeeded: k >> 60) }

    func contains(_ k: UInt64) -> Bool {
        let s = Self.shard(k)
        if shards[s].contains(k) { return true }
        if let p = pending[s], p.contains(k) { return removed[s].isEmpty || !removed[s].contains(k) }
        guard runs[s].contains(where: { $0.contains(k) }) else { return false }
        return removed[s].isEmpty || !removed[s].contains(k)
    }

    /// Adds `k` to its shard's table (callers check `contains` first: a sealed key is not added
    /// again). Once the table is big enough it is sealed here, or, with `jobs`, handed to a
    /// `SealJob` appended to it (the caller runs it outside its lock and installs the result).
    mutating func insert(_ k: UInt64, jobs: inout [SealJob]?) {
        let s = Self.shard(k)
        shards[s].insert(k)
        // A key removed (a failed WAL write) and accepted again is no longer masked.
        if !removed[s].isEmpty { removed[s].remove(k) }
        guard shards[s].count >= sealAt else { return }
        if jobs == nil {
            seal(s)
        } else if pending[s] == nil {
            handOut(s, to: &jobs!)
        }
    }

    /// Hands shard s's table to a job appended to `jobs` (it stays searched as pending).
    private mutating func handOut(_ s: Int, all: Bool = false, to jobs: inout [SealJob]) {
        jobs.append(job(s, all: all))
        pending[s] = shards[s]
        shards[s] = UInt64Set()
    }

    /// The tier of a run of `n` keys: ⌊log₄(n / sealAt)⌋ (0 below 4 × sealAt).
    private func tier(_ n: Int) -> Int { fourfoldSteps(n, from: sealAt) }

    /// How many of shard s's newest runs a seal of `keys` keys merges: while the three runs
    /// before what is merged so far are of its tier, they join it (four runs of a tier make one
    /// of the next).
    private func runsToMerge(_ s: Int, keys: Int) -> Int {
        let r = runs[s]
        var take = 0, total = keys
        while r.count - take >= 3 {
            let group = r[(r.count - take - 3)..<(r.count - take)]
            let t = tier(total)
            guard group.allSatisfy({ tier($0.count) == t }) else { break }
            take += 3
            total += group.reduce(0) { $0 + $1.count }
        }
        return take
    }

    /// The job that seals shard s's table as it is now (merging every run with `all`).
    private func job(_ s: Int, all: Bool = false) -> SealJob {
        let keys = shards[s].elements()
        let merged = all ? runs[s].count : runsToMerge(s, keys: keys.count)
        return SealJob(tag: tag, shard: s, keys: keys, previous: Array(runs[s].suffix(merged)),
                       removed: removed[s], path: directory.map { "\($0)/\(tag)-\(s)-\(SealedKeys.nextFileNumber()).keys" })
    }

    /// Installs what a job built: its run replaces the pending table and the runs it merged. A
    /// job that could not read a run it merges (nil result), or whose runs changed meanwhile,
    /// gives its table's keys back to the shard's table, to be sealed again.
    mutating func install(_ job: SealJob, _ result: SealedKeys?) {
        let s = job.shard
        let merged = job.previous.count
        guard let table = pending[s] else { return }
        pending[s] = nil
        guard let result, runs[s].count >= merged, zip(runs[s].suffix(merged), job.previous).allSatisfy({ $0 === $1 })
        else {
            for k in table.elements() { shards[s].insert(k) }
            return
        }
        replaceRuns(s, merged: merged, with: result)
    }

    /// Replaces shard s's newest `merged` runs with `result`; removed keys stay masked only
    /// where a run still holds them (the job dropped those it saw from what it merged).
    private mutating func replaceRuns(_ s: Int, merged: Int, with result: SealedKeys) {
        runs[s].removeLast(merged)
        if result.count > 0 { runs[s].append(result) }
        if !removed[s].isEmpty {
            let held = runs[s]
            removed[s] = removed[s].filter { k in held.contains { $0.contains(k) } }
        }
    }

    mutating func remove(_ k: UInt64) {
        let s = Self.shard(k)
        if shards[s].contains(k) { shards[s].remove(k) }
        if pending[s]?.contains(k) == true || runs[s].contains(where: { $0.contains(k) }) {
            removed[s].insert(k)
        }
    }

    /// Seals the first shard whose table holds any keys or that has more than one run (and no
    /// job pending) into one run; false when there is none. For a generation that no longer
    /// gets keys: a lookup checks one filter per run, and each generation's shard would keep
    /// up to three runs per tier.
    /// With `jobs`, the work is handed to a job appended to it (run it outside the store's lock
    /// and `install` its result).
    mutating func sealOneShard(jobs: inout [SealJob]?) -> Bool {
        guard let s = shards.indices.first(where: { (shards[$0].count > 0 || runs[$0].count > 1) && pending[$0] == nil })
        else { return false }
        if jobs == nil {
            seal(s, all: true)
        } else {
            handOut(s, all: true, to: &jobs!)
        }
        return true
    }

    /// Sorts shard s's table into a run (without the removed keys), merging runs as `job` says
    /// (all of them with `all`), and empties it.
    private mutating func seal(_ s: Int, all: Bool = false) {
        let job = job(s, all: all)
        // (Kept in the table if a run it merges cannot be read.)
        guard let result = job.run() else { return }
        shards[s] = UInt64Set()
        replaceRuns(s, merged: job.previous.count, with: result)
    }
}

/// The work of sealing one shard's table: sort its keys, merge them with the runs it replaces
/// (less the removed keys), write the file. Needs no lock: it reads only what it was given.
struct SealJob: @unchecked Sendable {
    let tag: Int64
    let shard: Int
    let keys: [UInt64]
    /// The shard's newest runs that the new run replaces (`ShardedUInt64Set.runsToMerge`).
    let previous: [SealedKeys]
    let removed: Set<UInt64>
    let path: String?

    /// The new run; nil if a run it merges cannot be read (merging what could be read would
    /// lose the rest when the runs are replaced).
    func run() -> SealedKeys? {
        var keys = self.keys
        keys.sort()
        // Newest (smallest) runs first: the biggest is copied once, in the last merge.
        for run in previous.reversed() {
            guard let all = run.allKeys() else { return nil }
            keys = Self.merge(all, keys, dropping: removed)
        }
        if previous.isEmpty && !removed.isEmpty { keys.removeAll { removed.contains($0) } }
        return SealedKeys(keys, path: path)
    }

    /// The union of two ascending arrays, less `gone`.
    static func merge(_ a: [UInt64], _ keys: [UInt64], dropping gone: Set<UInt64>) -> [UInt64] {
        [UInt64](unsafeUninitializedCapacity: keys.count + a.count) { out, n in
            var i = 0, j = 0, w = 0
            while i < a.count || j < keys.count {
                let v: UInt64
                if j == keys.count || (i < a.count && a[i] < keys[j]) {
                    v = a[i]
                    i += 1
                } else {
                    v = keys[j]
                    j += 1
                }
                if !gone.isEmpty && gone.contains(v) { continue }
                out[w] = v
                w += 1
            }
            n = w
        }
    }
}

extension ShardedUInt64Set {

    /// Where `k` is in sorted `a`, or nil. Keys are hashes, spread evenly: a few interpolation
    /// steps find one (2-3 probes at millions of keys), then halving takes over, so ids chosen to
    /// make the hashes cluster cannot make a lookup linear.
    static func index(of k: UInt64, in a: UnsafeBufferPointer<UInt64>) -> Int? {
        var lo = 0, hi = a.count - 1
        var guesses = 0
        while lo <= hi {
            let low = a[lo], high = a[hi]
            if k < low || k > high { return nil }
            var mid = lo + (hi - lo) / 2
            if guesses < 4 && high > low {
                guesses += 1
                let f = Double(k - low) / Double(high - low)
                mid = lo + min(hi - lo, max(0, Int(f * Double(hi - lo))))
            }
            let v = a[mid]
            if v == k { return mid }
            if v < k { lo = mid + 1 } else { hi = mid - 1 }
        }
        return nil
    }
}

/// Sorted keys that no longer change, with a blocked Bloom filter in front: written to `path`
/// and read back with `pread` only when the filter lets a key through (the file goes when the
/// keys do), or held in memory when there is no path or the file cannot be written. Not mapped:
/// pages of a mapping that lookups touched counted in the process's RSS until, over many
/// lookups, the whole file did. The file is a cache of this process: opening a store deletes
/// every such file and rebuilds the dedupe window from the parts (FORMAT.md, "Dedupe").
final class SealedKeys: @unchecked Sendable {
    let count: Int
    private let owned: UnsafeMutableBufferPointer<UInt64>?
    private let fd: Int32
    private let path: String?
    /// 512-bit blocks, 10 bits per key, 6 bits set per key in its block (~1 % false positives).
    private let bloom: [UInt64]
    private let blocks: UInt64
    /// For keys in a file, the first key of each page of `pageKeys` keys: a lookup the filter
    /// lets through finds its page here and reads it with one `pread`. (An interpolation search
    /// over the file read the two ends of each step and its guess, ~6–9 reads a lookup: the
    /// dedupe's preads took 1.7 % of a server's CPU under `tally bench ingest`, perf.)
    private let fences: [UInt64]
    /// Keys per page: 4 KiB, 1/512 of the keys kept in memory (the filter keeps 10 bits a key).
    static let pageKeys = 512

    private static let files = Atomic<Int>(0)
    static func nextFileNumber() -> Int { files.add(1, ordering: .relaxed).newValue }

    init(_ sorted: [UInt64], path: String?) {
        count = sorted.count
        let blocks = max(1, (sorted.count * 10 + 511) / 512)
        self.blocks = UInt64(blocks)
        var bloom = [UInt64](repeating: 0, count: blocks * 8)
        for k in sorted { Self.set(k, in: &bloom, blocks: UInt64(blocks)) }
        self.bloom = bloom
        let fd = path.flatMap { sorted.isEmpty ? nil : Self.write(sorted, path: $0) } ?? -1
        self.fd = fd
        self.path = fd >= 0 ? path : nil
        fences = fd >= 0 ? Array(stride(from: 0, to: sorted.count, by: Self.pageKeys).lazy.map { sorted[$0] }) : []
        if fd >= 0 {
            owned = nil
        } else {
            let copy = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: sorted.count)
            _ = copy.initialize(from: sorted)
            owned = copy
        }
    }

    deinit {
        if fd >= 0, let path {
            close(fd)
            unlink(path)
        }
        owned?.deallocate()
    }

    /// Whether the keys are in a file (not in memory).
    var inFile: Bool { fd >= 0 }

    func contains(_ k: UInt64) -> Bool {
        mayContain(k) && search(k)
    }

    /// Whether `k` is among the keys, by searching them (in memory, or the one page of the file
    /// that can hold it), the Bloom filter aside.
    func search(_ k: UInt64) -> Bool {
        if let owned { return ShardedUInt64Set.index(of: k, in: UnsafeBufferPointer(owned)) != nil }
        // The last page whose first key is at most k.
        var lo = 0, hi = fences.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if fences[mid] <= k { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0 else { return false }
        let first = (lo - 1) * Self.pageKeys
        let n = min(Self.pageKeys, count - first)
        let fd = self.fd
        return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: Self.pageKeys) { page in
            // A page that cannot be read is taken as absent: the event is kept, and a merge drops
            // it if it was a duplicate after all (a duplicate beats a lost event).
            guard pread(fd, page.baseAddress, n * 8, off_t(first) * 8) == n * 8 else { return false }
            #if _endian(big)
                for i in 0..<n { page[i] = UInt64(littleEndian: page[i]) }
            #endif
            return ShardedUInt64Set.index(of: k, in: UnsafeBufferPointer(rebasing: page[0..<n])) != nil
        }
    }

    /// Every key, ascending (read from the file); nil if it cannot be read.
    func allKeys() -> [UInt64]? {
        if let owned { return Array(owned) }
        let bytes = count * 8
        var ok = true
        let fd = self.fd
        let out = [UInt64](unsafeUninitializedCapacity: count) { b, n in
            var done = 0
            while done < bytes {
                let r = pread(fd, UnsafeMutableRawPointer(b.baseAddress!) + done, bytes - done, off_t(done))
                if r <= 0 {
                    ok = false
                    break
                }
                done += r
            }
            n = ok ? count : 0
            #if _endian(big)
                for i in 0..<n { b[i] = UInt64(littleEndian: b[i]) }
            #endif
        }
        return ok ? out : nil
    }

    @inline(__always) private static func probe(_ k: UInt64, blocks: UInt64) -> (block: Int, bits: UInt64) {
        // The block from the key's bits below the top four (which pick the shard: all of a
        // shard's keys share them), the six bit positions from a remix.
        let block = Int(truncatingIfNeeded: (k << 4).multipliedFullWidth(by: blocks).high)
        return (block, (k ^ (k >> 29)) &* 0xbf58_476d_1ce4_e5b9)
    }

    private static func set(_ k: UInt64, in bloom: inout [UInt64], blocks: UInt64) {
        let (block, bits) = probe(k, blocks: blocks)
        for i in 0..<6 {
            let bit = Int(truncatingIfNeeded: bits >> (i * 9)) & 511
            bloom[block * 8 + bit >> 6] |= 1 << UInt64(bit & 63)
        }
    }

    func mayContain(_ k: UInt64) -> Bool {
        let (block, bits) = Self.probe(k, blocks: blocks)
        return bloom.withUnsafeBufferPointer { b in
            for i in 0..<6 {
                let bit = Int(truncatingIfNeeded: bits >> (i * 9)) & 511
                if b[block * 8 + bit >> 6] & (1 << UInt64(bit & 63)) == 0 { return false }
            }
            return true
        }
    }

    /// Writes the keys (little-endian u64, no header); the open descriptor, or -1 if writing
    /// failed (the caller keeps the keys in memory).
    private static func write(_ keys: [UInt64], path: String) -> Int32 {
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return -1 }
        let bytes = keys.count * 8
        #if _endian(big)
            let keys = keys.map { $0.littleEndian }
        #endif
        let written = keys.withUnsafeBytes { b -> Bool in
            var done = 0
            while done < bytes {
                let n = Glibc.write(fd, b.baseAddress! + done, bytes - done)
                if n <= 0 { return false }
                done += n
            }
            return true
        }
        guard written else {
            close(fd)
            unlink(path)
            return -1
        }
        return fd
    }
}

/// An open-addressing set of UInt64 (linear probing, tombstone-free deletion by backshift).
struct UInt64Set {
    private var slots: [UInt64] = Array(repeating: 0, count: 64)
    private var hasZero = false
    private(set) var count = 0

    private static func mix(_ k: UInt64) -> Int {
        Int(truncatingIfNeeded: (k ^ (k >> 33)) &* 0xff51afd7ed558ccd)
    }

    func contains(_ k: UInt64) -> Bool {
        if k == 0 { return hasZero }
        let mask = slots.count - 1
        var i = Self.mix(k) & mask
        while true {
            let s = slots[i]
            if s == k { return true }
            if s == 0 { return false }
            i = (i + 1) & mask
        }
    }

    mutating func insert(_ k: UInt64) {
        if k == 0 {
            if !hasZero { hasZero = true; count += 1 }
            return
        }
        if (count + 1) * 4 > slots.count * 3 { grow() }
        let mask = slots.count - 1
        var i = Self.mix(k) & mask
        while slots[i] != 0 {
            if slots[i] == k { return }
            i = (i + 1) & mask
        }
        slots[i] = k
        count += 1
    }

    mutating func remove(_ k: UInt64) {
        if k == 0 {
            if hasZero { hasZero = false; count -= 1 }
            return
        }
        let mask = slots.count - 1
        var i = Self.mix(k) & mask
        while slots[i] != k {
            if slots[i] == 0 { return }
            i = (i + 1) & mask
        }
        slots[i] = 0
        count -= 1
        var j = (i + 1) & mask
        while slots[j] != 0 {
            let k2 = slots[j]
            let home = Self.mix(k2) & mask
            // Move k2 back into the hole if its home is not in (i, j].
            let inRange = i <= j ? (home > i && home <= j) : (home > i || home <= j)
            if !inRange {
                slots[i] = k2
                slots[j] = 0
                i = j
            }
            j = (j + 1) & mask
        }
    }

    /// Every key held, in slot order.
    func elements() -> [UInt64] {
        var out: [UInt64] = []
        out.reserveCapacity(count)
        if hasZero { out.append(0) }
        for k in slots where k != 0 { out.append(k) }
        return out
    }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: 0, count: old.count * 2)
        count = hasZero ? 1 : 0
        for k in old where k != 0 { insert(k) }
    }
}
