/// Reads what `ByteWriter` wrote, with bounds checks: reading past the end throws
/// `ByteReader.Truncated`, which callers turn into a corruption error naming the file.
public struct ByteReader {
    public struct Truncated: Error, CustomStringConvertible {
        public let offset: Int
        public let needed: Int
        public var description: String { "truncated: needed \(needed) bytes at offset \(offset)" }
    }

    public let bytes: UnsafeRawBufferPointer
    public var offset: Int

    public init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    public var remaining: Int { bytes.count - offset }
    public var isAtEnd: Bool { offset >= bytes.count }

    @inline(__always) mutating func need(_ n: Int) throws {
        if n < 0 || n > bytes.count - offset { throw Truncated(offset: offset, needed: n) }
    }

    public mutating func u8() throws -> UInt8 {
        try need(1)
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func u16() throws -> UInt16 {
        try need(2)
        defer { offset += 2 }
        return UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    public mutating func u32() throws -> UInt32 {
        try need(4)
        defer { offset += 4 }
        return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    public mutating func u64() throws -> UInt64 {
        try need(8)
        defer { offset += 8 }
        return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    public mutating func i64() throws -> Int64 { Int64(bitPattern: try u64()) }

    public mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try u8()
            if shift == 63 && b > 1 { throw Truncated(offset: offset, needed: 0) }
            result |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw Truncated(offset: offset, needed: 0) }
        }
    }

    /// A varint that must fit an Int no larger than `limit` (lengths, counts).
    public mutating func count(limit: Int = Int(Int32.max)) throws -> Int {
        let v = try varint()
        if v > UInt64(limit) { throw Truncated(offset: offset, needed: Int(clamping: v)) }
        return Int(v)
    }

    public mutating func zigzag() throws -> Int64 {
        let v = try varint()
        return Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1)))
    }

    public mutating func raw(_ n: Int) throws -> UnsafeRawBufferPointer {
        try need(n)
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n])
    }

    public mutating func string() throws -> String {
        let n = try count(limit: remaining)
        return String(decoding: try raw(n), as: UTF8.self)
    }

    public mutating func blob() throws -> [UInt8] {
        let n = try count(limit: remaining)
        return Array(try raw(n))
    }
}
