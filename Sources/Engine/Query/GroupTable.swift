/// The groups of a query: group i's key is `keys[i]`, found through an open-addressing index
/// with a multiply–xorshift hash of the key's four codes.
///
/// Replaced `[GroupKey: Int]`: Swift's `Dictionary` hashes with seeded SipHash, 20–25 % of
/// `hourly_7d` and `top_pages_30d` (BENCHMARKS.md, "Reporting queries … 2026-12-06").
struct GroupTable {
    private(set) var keys: [GroupKey] = []
    /// Group index per slot, -1 for an empty slot; a power of two, at most half full.
    private var slots = [Int32](repeating: -1, count: 16)

    var count: Int { keys.count }

    @inline(__always)
    private static func hash(_ k: GroupKey) -> Int {
        var h = (UInt64(k.a) | UInt64(k.b) << 32) &* 0x9E37_79B9_7F4A_7C15
        h ^= (UInt64(k.c) | UInt64(k.d) << 32) &* 0xC2B2_AE3D_27D4_EB4F
        h ^= h >> 29
        h = h &* 0xBF58_476D_1CE4_E5B9
        h ^= h >> 32
        return Int(truncatingIfNeeded: h)
    }

    /// The group of `key`, or nil.
    func find(_ key: GroupKey) -> Int? {
        let mask = slots.count - 1
        var i = Self.hash(key) & mask
        return slots.withUnsafeBufferPointer { s in
            keys.withUnsafeBufferPointer { k in
                while true {
                    let g = s[i]
                    if g < 0 { return nil }
                    if k[Int(g)] == key { return Int(g) }
                    i = (i + 1) & mask
                }
            }
        }
    }

    /// Adds `key` (not present) as group `count`; returns its index.
    @discardableResult
    mutating func insert(_ key: GroupKey) -> Int {
        if (keys.count + 1) * 2 > slots.count { grow() }
        let g = keys.count
        keys.append(key)
        place(Int32(g))
        return g
    }

    private mutating func place(_ g: Int32) {
        let mask = slots.count - 1
        var i = Self.hash(keys[Int(g)]) & mask
        slots.withUnsafeMutableBufferPointer { s in
            while s[i] >= 0 { i = (i + 1) & mask }
            s[i] = g
        }
    }

    private mutating func grow() {
        slots = [Int32](repeating: -1, count: slots.count * 2)
        for g in keys.indices { place(Int32(g)) }
    }
}
