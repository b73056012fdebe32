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
}

/// A set of uniformly distributed UInt64 (hashes) in 16 `UInt64Set`s chosen by the top four
/// bits. Lookups cost what one table's do; a table grows on its own, so growing never holds
/// the old and the new copy of all the keys at once (one table of 3M keys grew from 16 to 32 MiB,
/// 48 MiB at the peak, heaptrack of `tally ingest`), and never rehashes all of them while an
/// ingest holds the store's lock.
struct ShardedUInt64Set {
    private var shards = [UInt64Set](repeating: UInt64Set(), count: 16)

    var count: Int { shards.reduce(0) { $0 + $1.count } }

    @inline(__always) private static func shard(_ k: UInt64) -> Int { Int(truncatingIfNeeded: k >> 60) }

    func contains(_ k: UInt64) -> Bool { shards[Self.shard(k)].contains(k) }

    mutating func insert(_ k: UInt64) { shards[Self.shard(k)].insert(k) }

    mutating func remove(_ k: UInt64) { shards[Self.shard(k)].remove(k) }
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

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: 0, count: old.count * 2)
        count = hasZero ? 1 : 0
        for k in old where k != 0 { insert(k) }
    }
}
