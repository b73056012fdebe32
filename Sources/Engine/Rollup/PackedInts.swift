/// Integers stored in the fewest bytes (1, 2, 4 or 8 each) that hold their range above the
/// smallest. Decoded rollup parts stay in memory while a store is open, and their codes, days
/// and counts mostly fit a byte: a part's row took ~45 bytes as plain arrays, ~25 packed
/// (`tally ingest` of 1M events holds 1.3M rollup rows).
///
/// Unsigned 32-bit values are taken as their signed bit pattern, so a code column whose null is
/// `UInt32.max` packs as −1 beside small codes.
struct PackedInts<T: FixedWidthInteger & Sendable>: Sendable, Equatable {
    private let storage: [UInt8]
    private let base: Int64
    /// log2 of the bytes per value.
    private let shift: Int
    let count: Int

    init(_ values: [T]) {
        count = values.count
        var low = Int64.max, high = Int64.min
        for v in values {
            let x = Self.widen(v)
            low = min(low, x)
            high = max(high, x)
        }
        base = values.isEmpty ? 0 : low
        let range = values.isEmpty ? 0 : UInt64(bitPattern: high &- low)
        shift = range <= UInt64(UInt8.max) ? 0 : range <= UInt64(UInt16.max) ? 1 : range <= UInt64(UInt32.max) ? 2 : 3
        var bytes = [UInt8](repeating: 0, count: values.count << shift)
        let (b, s) = (base, shift)
        bytes.withUnsafeMutableBytes { out in
            for (i, v) in values.enumerated() {
                let d = UInt64(bitPattern: Self.widen(v) &- b)
                switch s {
                case 0: out[i] = UInt8(truncatingIfNeeded: d)
                case 1: out.storeBytes(of: UInt16(truncatingIfNeeded: d), toByteOffset: i << 1, as: UInt16.self)
                case 2: out.storeBytes(of: UInt32(truncatingIfNeeded: d), toByteOffset: i << 2, as: UInt32.self)
                default: out.storeBytes(of: d, toByteOffset: i << 3, as: UInt64.self)
                }
            }
        }
        storage = bytes
    }

    @inline(__always) private static func widen(_ v: T) -> Int64 {
        !T.isSigned && T.bitWidth == 32 ? Int64(Int32(truncatingIfNeeded: v)) : Int64(truncatingIfNeeded: v)
    }

    @inline(__always) subscript(i: Int) -> T {
        precondition(i >= 0 && i < count, "index \(i) outside \(count) packed values")
        let d: UInt64 = storage.withUnsafeBytes { b in
            switch shift {
            case 0: UInt64(b[i])
            case 1: UInt64(b.loadUnaligned(fromByteOffset: i << 1, as: UInt16.self))
            case 2: UInt64(b.loadUnaligned(fromByteOffset: i << 2, as: UInt32.self))
            default: b.loadUnaligned(fromByteOffset: i << 3, as: UInt64.self)
            }
        }
        return T(truncatingIfNeeded: base &+ Int64(bitPattern: d))
    }

    /// The values of a range of rows, the byte width chosen once for all (the rollup query
    /// loops read their rows this way: a site's days are one range of a part).
    func values(in range: Range<Int>) -> [T] {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "rows \(range) outside \(count) packed values")
        guard !range.isEmpty else { return [] }
        return storage.withUnsafeBytes { b in
            let base = self.base
            func read<W: FixedWidthInteger & UnsignedInteger>(_: W.Type) -> [T] {
                [T](unsafeUninitializedCapacity: range.count) { out, n in
                    let size = MemoryLayout<W>.size
                    for j in 0..<range.count {
                        let d = b.loadUnaligned(fromByteOffset: (range.lowerBound + j) * size, as: W.self)
                        out[j] = T(truncatingIfNeeded: base &+ Int64(bitPattern: UInt64(d)))
                    }
                    n = range.count
                }
            }
            switch shift {
            case 0: return read(UInt8.self)
            case 1: return read(UInt16.self)
            case 2: return read(UInt32.self)
            default: return read(UInt64.self)
            }
        }
    }

    /// The values of the rows `range.lowerBound + offset` for each of `picked` (ascending
    /// offsets; all of `range` when nil), the byte width chosen once for all.
    func values(in range: Range<Int>, picked: [Int32]?) -> [T] {
        guard let picked else { return values(in: range) }
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "rows \(range) outside \(count) packed values")
        guard !picked.isEmpty else { return [] }
        precondition(Int(picked.last!) < range.count && picked[0] >= 0, "picked rows outside \(range)")
        return storage.withUnsafeBytes { b in
            picked.withUnsafeBufferPointer { picked in
                let base = self.base
                func read<W: FixedWidthInteger & UnsignedInteger>(_: W.Type) -> [T] {
                    [T](unsafeUninitializedCapacity: picked.count) { out, n in
                        let size = MemoryLayout<W>.size
                        for j in 0..<picked.count {
                            let d = b.loadUnaligned(fromByteOffset: (range.lowerBound + Int(picked[j])) * size, as: W.self)
                            out[j] = T(truncatingIfNeeded: base &+ Int64(bitPattern: UInt64(d)))
                        }
                        n = picked.count
                    }
                }
                switch shift {
                case 0: return read(UInt8.self)
                case 1: return read(UInt16.self)
                case 2: return read(UInt32.self)
                default: return read(UInt64.self)
                }
            }
        }
    }

    /// Bytes held (for `tally inspect` and tests).
    var byteCount: Int { storage.count }
}

/// A rollup part's sketch offsets (non-decreasing, 2 per row + 1) in about 2.25 bytes each
/// instead of 4: per block of 16, the first offset in full and each one's distance from it in
/// 16 bits — unless some block spans 64 KiB or more of sketch bytes (a run of dense sketches),
/// in which case all are kept in full. Offsets were a third of a decoded rollup part's memory
/// (8 of ~25 bytes per row), and decoded rollup parts are most of an open store's memory.
struct SketchOffsets: Sendable, Equatable {
    private static let blockShift = 4
    private let bases: [UInt32]
    private let deltas: [UInt16]
    /// Every offset, when some block's span does not fit in 16 bits (then `bases` and `deltas` are empty).
    private let wide: [UInt32]
    let count: Int

    init(_ offsets: [UInt32]) {
        count = offsets.count
        let blocks = (offsets.count + (1 << Self.blockShift) - 1) >> Self.blockShift
        var bases: [UInt32] = []
        bases.reserveCapacity(blocks)
        var fits = true
        for b in 0..<blocks {
            let first = offsets[b << Self.blockShift]
            let last = offsets[min(offsets.count, (b + 1) << Self.blockShift) - 1]
            if last &- first > UInt32(UInt16.max) || last < first {
                fits = false
                break
            }
            bases.append(first)
        }
        if fits {
            self.bases = bases
            deltas = offsets.indices.map { UInt16(truncatingIfNeeded: offsets[$0] &- bases[$0 >> Self.blockShift]) }
            wide = []
        } else {
            self.bases = []
            deltas = []
            wide = offsets
        }
    }

    @inline(__always) subscript(i: Int) -> UInt32 {
        wide.isEmpty ? bases[i >> Self.blockShift] &+ UInt32(deltas[i]) : wide[i]
    }

    /// Whether the offsets are kept in full (for tests of both forms).
    var isWide: Bool { !wide.isEmpty }

    var byteCount: Int { bases.capacity * 4 + deltas.capacity * 2 + wide.capacity * 4 }
}
