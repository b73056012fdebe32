/// Assigns dense codes (0, 1, 2, …) to distinct byte strings without allocating per lookup:
/// an open-addressing table of codes keyed by XXH3, values kept back to back in a
/// `StringColumn`. Used to build part dictionaries and to rank sort-key strings.
struct ByteStringInterner {
    private(set) var values = StringColumn()
    private var hashes: [UInt64] = []
    private var table: [Int32]
    private var mask: Int

    init(capacity: Int = 64) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        table = Array(repeating: -1, count: size)
        mask = size - 1
    }

    var count: Int { values.count }

    /// The code of `bytes`, adding it if new.
    mutating func intern(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        let h = TallyHash.hash(bytes)
        var slot = Int(truncatingIfNeeded: h) & mask
        while true {
            let code = table[slot]
            if code < 0 { break }
            if hashes[Int(code)] == h && values.withValue(Int(code), { ByteOrder.equal($0, bytes) }) { return code }
            slot = (slot + 1) & mask
        }
        let code = Int32(values.count)
        values.append(bytes)
        hashes.append(h)
        table[slot] = code
        if values.count * 2 > table.count { grow() }
        return code
    }

    /// The code of `bytes` if present.
    func find(_ bytes: UnsafeRawBufferPointer) -> Int32? {
        let h = TallyHash.hash(bytes)
        var slot = Int(truncatingIfNeeded: h) & mask
        while true {
            let code = table[slot]
            if code < 0 { return nil }
            if hashes[Int(code)] == h && values.withValue(Int(code), { ByteOrder.equal($0, bytes) }) { return code }
            slot = (slot + 1) & mask
        }
    }

    private mutating func grow() {
        let size = table.count * 2
        table = Array(repeating: -1, count: size)
        mask = size - 1
        for (code, h) in hashes.enumerated() {
            var slot = Int(truncatingIfNeeded: h) & mask
            while table[slot] >= 0 { slot = (slot + 1) & mask }
            table[slot] = Int32(code)
        }
    }

    /// Ranks of the codes by the byte order of their values: `ranks[code]` is the value's
    /// position in the sorted list of distinct values, and `order` lists codes in that order.
    func sortedRanks() -> (ranks: [Int32], order: [Int32]) {
        var order = (0..<Int32(values.count)).map { $0 }
        order.sort { a, b in
            values.withValue(Int(a)) { x in values.withValue(Int(b)) { y in ByteOrder.less(x, y) } }
        }
        var ranks = [Int32](repeating: 0, count: order.count)
        for (r, code) in order.enumerated() { ranks[Int(code)] = Int32(r) }
        return (ranks, order)
    }
}

/// Byte-wise (memcmp) order of strings: the order of every string in the sort key,
/// in dictionaries and in the primary index.
public enum ByteOrder {
    @inlinable public static func compare(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
        let n = min(a.count, b.count)
        if n > 0 {
            let r = memcmpBytes(a.baseAddress!, b.baseAddress!, n)
            if r != 0 { return r }
        }
        return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
    }

    @inlinable public static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        a.count == b.count && (a.count == 0 || memcmpBytes(a.baseAddress!, b.baseAddress!, a.count) == 0)
    }

    @inlinable public static func less(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        compare(a, b) < 0
    }

    public static func compare(_ a: String, _ b: String) -> Int {
        var a = a
        var b = b
        return a.withUTF8 { x in b.withUTF8 { y in compare(UnsafeRawBufferPointer(x), UnsafeRawBufferPointer(y)) } }
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@inlinable func memcmpBytes(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Int {
    Int(memcmp(a, b, n))
}
