/// The keys of events accepted within the dedupe window, to refuse retries.
///
/// A key is XXH3-64 of event_id seeded with XXH3-64 of site_id. Keys live in generations
/// that each cover 1/8 of the window by received time; a generation is dropped whole once
/// it is older than the window. With N keys in the window, a new event is wrongly taken
/// for a duplicate with probability N/2^64 (≈ 7e-13 for 12M keys, a month of seed 000's
/// top volume): documented in FORMAT.md, accepted for 8 bytes per key.
struct DedupeIndex {
    private struct Generation {
        var start: Int64
        var keys = ShardedUInt64Set()
    }

    let window: Int64
    private var generations: [Generation] = []
    private var span: Int64 { max(1, window / 8) }

    init(window: Int64) {
        self.window = window
    }

    static func key(site: UnsafeRawBufferPointer, eventID: UnsafeRawBufferPointer) -> UInt64 {
        TallyHash.hash(eventID, seed: TallyHash.hash(site))
    }

    var count: Int { generations.reduce(0) { $0 + $1.keys.count } }
    /// Keys held in sorted arrays (`sealStep`).
    var sealedCount: Int { generations.reduce(0) { $0 + $1.keys.sealedCount } }

    func contains(_ key: UInt64) -> Bool {
        for g in generations where g.keys.contains(key) { return true }
        return false
    }

    /// Adds `key` received at `time`; false if it was already present.
    mutating func insert(_ key: UInt64, time: Int64) -> Bool {
        if contains(key) { return false }
        let start = time - ((time % span) + span) % span
        if let k = generations.lastIndex(where: { $0.start == start }) {
            generations[k].keys.insert(key)
        } else {
            generations.append(Generation(start: start))
            generations.sort { $0.start < $1.start }
            let k = generations.firstIndex { $0.start == start }!
            generations[k].keys.insert(key)
        }
        return true
    }

    mutating func remove(_ key: UInt64) {
        for k in generations.indices { generations[k].keys.remove(key) }
    }

    /// Drops generations that ended before `now - window`.
    mutating func expire(now: Int64) {
        let cutoff = now - window - span
        generations.removeAll { $0.start <= cutoff }
    }

    /// Moves the hashed keys of one shard of a generation other than the newest into its sorted
    /// array; false when there are none. Only the newest generation gets the keys of events
    /// received now: the others, seven eighths of the window once it is full, stop changing and
    /// take 8 bytes per key sorted instead of the hash tables' 11-21 (at most 3/4 full, doubling:
    /// a server's dedupe set was 67 MB for 3.5M keys, heaptrack; BENCHMARKS.md). One shard (1/16
    /// of a generation) per call, so that the lock it runs under is held for a short sort.
    mutating func sealStep() -> Bool {
        guard let newest = generations.map(\.start).max() else { return false }
        for k in generations.indices where generations[k].start != newest {
            if generations[k].keys.sealOneShard() { return true }
        }
        return false
    }
}

/// A set of uniformly distributed UInt64 (hashes) in 16 `UInt64Set`s chosen by the top four
/// bits. Lookups cost what one table's do; a table grows on its own, so growing never holds
/// the old and the new copy of all the keys at once (one table of 3M keys grew from 16 to 32 MiB,
/// 48 MiB at the peak, heaptrack of `tally ingest`), and never rehashes all of them while an
/// ingest holds the store's lock.
///
/// Each shard also has a sorted array of keys sealed out of its table (`sealOneShard`), searched
/// after the table: 8 bytes per key instead of a table's 11-21.
struct ShardedUInt64Set {
    private var shards = [UInt64Set](repeating: UInt64Set(), count: 16)
    private var sorted = [[UInt64]](repeating: [], count: 16)

    var count: Int { shards.reduce(0) { $0 + $1.count } + sealedCount }
    var sealedCount: Int { sorted.reduce(0) { $0 + $1.count } }

    @inline(__always) private static func shard(_ k: UInt64) -> Int { Int(truncatingIfNeeded: k >> 60) }

    func contains(_ k: UInt64) -> Bool {
        let s = Self.shard(k)
        return shards[s].contains(k) || (!sorted[s].isEmpty && Self.index(of: k, in: sorted[s]) != nil)
    }

    /// Adds `k` to its shard's table (callers check `contains` first: a sealed key is not added again).
    mutating func insert(_ k: UInt64) { shards[Self.shard(k)].insert(k) }

    mutating func remove(_ k: UInt64) {
        let s = Self.shard(k)
        if shards[s].contains(k) {
            shards[s].remove(k)
        } else if let i = Self.index(of: k, in: sorted[s]) {
            sorted[s].remove(at: i)
        }
    }

    /// Moves the keys of the first shard whose table holds any into its sorted array and empties
    /// the table; false when every table is empty.
    mutating func sealOneShard() -> Bool {
        guard let s = shards.firstIndex(where: { $0.count > 0 }) else { return false }
        var keys = shards[s].elements()
        keys.sort()
        shards[s] = UInt64Set()
        sorted[s] = Self.merged(sorted[s], keys)
        return true
    }

    /// The union of two sorted arrays with no key in both.
    private static func merged(_ a: [UInt64], _ b: [UInt64]) -> [UInt64] {
        if a.isEmpty { return b }
        var out: [UInt64] = []
        out.reserveCapacity(a.count + b.count)
        var i = 0, j = 0
        while i < a.count && j < b.count {
            if a[i] < b[j] {
                out.append(a[i])
                i += 1
            } else {
                out.append(b[j])
                j += 1
            }
        }
        out.append(contentsOf: a[i...])
        out.append(contentsOf: b[j...])
        return out
    }

    /// Where `k` is in sorted `a`, or nil. Keys are hashes, spread evenly: a few interpolation
    /// steps find one (2-3 reads at millions of keys), then halving takes over, so ids chosen to
    /// make the hashes cluster cannot make a lookup linear.
    static func index(of k: UInt64, in a: [UInt64]) -> Int? {
        a.withUnsafeBufferPointer { a -> Int? in
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
