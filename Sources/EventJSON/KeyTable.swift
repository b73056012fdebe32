/// Maps the member names an object may carry to `InputField`s in a few instructions.
///
/// Every name the reader knows is at most 16 bytes, so a key is packed into two
/// little-endian words and found by open addressing in a 128-slot table. Keys longer than
/// 16 bytes are unknown by construction.
final class KeyTable: @unchecked Sendable {
    private struct Entry {
        var w0: UInt64 = 0
        var w1: UInt64 = 0
        var length: UInt8 = 0  // 0: empty slot
        var field: UInt8 = 0
    }

    private static let slotCount = 128
    private let entries: UnsafeMutablePointer<Entry>

    init(_ fields: [(String, InputField)]) {
        precondition(fields.count <= KeyTable.slotCount / 2, "key table too full")
        entries = .allocate(capacity: KeyTable.slotCount)
        entries.initialize(repeating: Entry(), count: KeyTable.slotCount)
        for (name, field) in fields {
            let bytes = Array(name.utf8)
            precondition(!bytes.isEmpty && bytes.count <= 16, "key '\(name)' must be 1...16 bytes")
            var w0: UInt64 = 0
            var w1: UInt64 = 0
            for (i, b) in bytes.enumerated() {
                if i < 8 { w0 |= UInt64(b) << (8 * UInt64(i)) } else { w1 |= UInt64(b) << (8 * UInt64(i - 8)) }
            }
            var slot = KeyTable.hash(w0, w1, bytes.count)
            while entries[slot].length != 0 {
                precondition(entries[slot].w0 != w0 || entries[slot].w1 != w1 || Int(entries[slot].length) != bytes.count,
                             "duplicate key '\(name)'")
                slot = (slot + 1) & (KeyTable.slotCount - 1)
            }
            entries[slot] = Entry(w0: w0, w1: w1, length: UInt8(bytes.count), field: field.rawValue)
        }
    }

    deinit { entries.deallocate() }

    @inline(__always) private static func hash(_ w0: UInt64, _ w1: UInt64, _ length: Int) -> Int {
        let h = (w0 &* 0x9E37_79B9_7F4A_7C15) ^ (w1 &* 0xC2B2_AE3D_27D4_EB4F) ^ UInt64(truncatingIfNeeded: length)
        return Int(truncatingIfNeeded: (h ^ (h >> 29)) >> 57)
    }

    /// The field named by the packed key, or nil.
    @inline(__always) func lookup(_ w0: UInt64, _ w1: UInt64, length: Int) -> InputField? {
        var slot = KeyTable.hash(w0, w1, length)
        while true {
            let e = entries[slot]
            if e.length == 0 { return nil }
            if e.w0 == w0 && e.w1 == w1 && Int(e.length) == length { return InputField(rawValue: e.field) }
            slot = (slot &+ 1) & (KeyTable.slotCount &- 1)
        }
    }

    /// The field named by `key`, or nil for a name this table does not know.
    @inline(__always) func lookup(_ key: StringToken, in base: UnsafePointer<UInt8>, end: Int) -> InputField? {
        let n = key.length
        guard UInt(bitPattern: n &- 1) < 16 else { return nil }  // 1...16
        if key.hasEscapes { return lookupEscaped(key, in: base) }
        var w0: UInt64
        var w1: UInt64 = 0
        if key.start &+ 16 <= end {
            // The key's quote, the colon and a value follow it, so 16 bytes are usually there.
            let p = UnsafeRawPointer(base + key.start)
            w0 = UInt64(littleEndian: p.loadUnaligned(as: UInt64.self))
            if n < 8 {
                w0 &= (1 << UInt64(n &* 8)) &- 1
            } else if n > 8 {
                w1 = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
                if n < 16 { w1 &= (1 << UInt64((n &- 8) &* 8)) &- 1 }
            }
        } else {
            w0 = 0
            for i in 0..<n {
                let b = UInt64(base[key.start &+ i])
                if i < 8 { w0 |= b << UInt64(i &* 8) } else { w1 |= b << UInt64((i &- 8) &* 8) }
            }
        }
        return lookup(w0, w1, length: n)
    }

    private func lookupEscaped(_ key: StringToken, in base: UnsafePointer<UInt8>) -> InputField? {
        var words: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for the 16 plus slack
        let n = withUnsafeMutableBytes(of: &words) { raw -> Int in
            // The unescaped key is `key.length` <= 16 bytes.
            guard let out = raw.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return 0 }
            return JSONUnescaper.unescape(base, from: key.start, to: key.end, into: out)
        }
        return lookup(UInt64(littleEndian: words.0), UInt64(littleEndian: words.1), length: n)
    }
}
