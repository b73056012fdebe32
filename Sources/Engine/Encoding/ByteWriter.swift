/// Appends little-endian integers, LEB128 varints and byte strings to a growing buffer.
/// Every multi-byte integer Tally writes to disk is little-endian (FORMAT.md).
public struct ByteWriter: Sendable {
    public var bytes: [UInt8]

    public init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public var count: Int { bytes.count }

    @inlinable public mutating func u8(_ v: UInt8) { bytes.append(v) }

    @inlinable public mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }

    @inlinable public mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }

    @inlinable public mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }

    @inlinable public mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }

    /// Unsigned LEB128.
    @inlinable public mutating func varint(_ v: UInt64) { Self.appendVarint(v, to: &bytes) }

    /// LEB128 of `v` appended to `out`.
    @inlinable public static func appendVarint(_ v: UInt64, to out: inout [UInt8]) {
        var v = v
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    /// Zigzag then LEB128.
    @inlinable public mutating func zigzag(_ v: Int64) { varint(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }

    @inlinable public mutating func raw<C: Collection>(_ b: C) where C.Element == UInt8 { bytes.append(contentsOf: b) }

    public mutating func raw(_ b: UnsafeRawBufferPointer) { bytes.append(contentsOf: b) }

    /// varint length, then the UTF-8 bytes.
    public mutating func string(_ s: String) {
        let u = Array(s.utf8)
        varint(UInt64(u.count))
        raw(u)
    }

    /// varint length, then the bytes.
    public mutating func blob(_ b: [UInt8]) {
        varint(UInt64(b.count))
        raw(b)
    }

    /// Overwrites 4 bytes at `offset` (for lengths known only after writing).
    public mutating func patchU32(_ v: UInt32, at offset: Int) {
        withUnsafeBytes(of: v.littleEndian) { for i in 0..<4 { bytes[offset + i] = $0[i] } }
    }
}
