/// Nonzero 64-bit hashes (TallyHash of session ids) → dense indices, by open addressing with
/// linear probing (keys must not be inserted in the slot order of a table like it: copy them in
/// arrival order). Swift's Dictionary rehashes every key with SipHash; these keys are already
/// uniform, and sessions assembled from 9.3M events spent 7 % of their time in Dictionary.find.
struct HashIndex {
    /// Key and value side by side: a probe touches one cache line (with two arrays, every
    /// lookup of a large table missed twice).
    private struct Slot {
        var key: UInt64
        var value: Int32
    }

    private var slots: [Slot]
    private(set) var count = 0

    init(capacity: Int = 1024) {
        slots = Array(repeating: Slot(key: 0, value: 0), count: Self.slotCount(for: capacity))
    }

    private static func slotCount(for capacity: Int) -> Int {
        var n = 1024
        while n * 3 < capacity * 4 { n <<= 1 }
        return n
    }

    @inline(__always) private static func mix(_ k: UInt64) -> Int {
        Int(truncatingIfNeeded: (k ^ (k >> 33)) &* 0xff51afd7ed558ccd)
    }

    /// The index of `key` (nonzero), or nil.
    func find(_ key: UInt64) -> Int32? {
        let mask = slots.count - 1
        var i = Self.mix(key) & mask
        while true {
            let k = slots[i].key
            if k == key { return slots[i].value }
            if k == 0 { return nil }
            i = (i + 1) & mask
        }
    }

    /// The index of `key` (nonzero); `next` is stored and returned when it is new.
    @inline(__always)
    mutating func findOrInsert(_ key: UInt64, _ next: Int32) -> (index: Int32, inserted: Bool) {
        if (count + 1) * 4 > slots.count * 3 { grow(to: slots.count * 2) }
        let mask = slots.count - 1
        var i = Self.mix(key) & mask
        return slots.withUnsafeMutableBufferPointer { b in
            while true {
                let k = b[i].key
                if k == key { return (b[i].value, false) }
                if k == 0 {
                    b[i] = Slot(key: key, value: next)
                    count += 1
                    return (next, true)
                }
                i = (i + 1) & mask
            }
        }
    }

    /// Makes room for `capacity` keys in all without growing on the way.
    mutating func reserve(_ capacity: Int) {
        let n = Self.slotCount(for: capacity)
        if n > slots.count { grow(to: n) }
    }

    private mutating func grow(to n: Int) {
        let old = slots
        slots = Array(repeating: Slot(key: 0, value: 0), count: n)
        count = 0
        for s in old where s.key != 0 { _ = findOrInsert(s.key, s.value) }
    }
}
