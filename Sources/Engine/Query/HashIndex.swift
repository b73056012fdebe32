/// Nonzero 64-bit hashes (TallyHash of session ids) → dense indices, by open addressing with
/// linear probing (keys must not be inserted in the slot order of a table like it: copy them in
/// arrival order). Swift's Dictionary rehashes every key with SipHash; these keys are already
/// uniform, and sessions assembled from 9.3M events spent 7 % of their time in Dictionary.find.
struct HashIndex {
    private var keys: [UInt64]
    private var values: [Int32]
    private(set) var count = 0

    init(capacity: Int = 1024) {
        var n = 1024
        while n * 3 < capacity * 4 { n <<= 1 }
        keys = Array(repeating: 0, count: n)
        values = Array(repeating: 0, count: n)
    }

    @inline(__always) private static func mix(_ k: UInt64) -> Int {
        Int(truncatingIfNeeded: (k ^ (k >> 33)) &* 0xff51afd7ed558ccd)
    }

    /// The index of `key` (nonzero), or nil.
    func find(_ key: UInt64) -> Int32? {
        let mask = keys.count - 1
        var i = Self.mix(key) & mask
        while true {
            let k = keys[i]
            if k == key { return values[i] }
            if k == 0 { return nil }
            i = (i + 1) & mask
        }
    }

    /// The index of `key` (nonzero); `next` is stored and returned when it is new.
    mutating func findOrInsert(_ key: UInt64, _ next: Int32) -> (index: Int32, inserted: Bool) {
        if (count + 1) * 4 > keys.count * 3 { grow() }
        let mask = keys.count - 1
        var i = Self.mix(key) & mask
        while true {
            let k = keys[i]
            if k == key { return (values[i], false) }
            if k == 0 {
                keys[i] = key
                values[i] = next
                count += 1
                return (next, true)
            }
            i = (i + 1) & mask
        }
    }

    private mutating func grow() {
        let oldKeys = keys
        let oldValues = values
        keys = Array(repeating: 0, count: oldKeys.count * 2)
        values = Array(repeating: 0, count: oldKeys.count * 2)
        count = 0
        for i in 0..<oldKeys.count where oldKeys[i] != 0 { _ = findOrInsert(oldKeys[i], oldValues[i]) }
    }
}
