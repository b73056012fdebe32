/// A column of UTF-8 strings in memory: the bytes of all values back to back and the end
/// offset of each value. Null values (in nullable columns) are empty and flagged in `nulls`.
public struct StringColumn: Sendable, Equatable {
    public var bytes: [UInt8] = []
    /// `ends[i]` is the end of value `i` in `bytes`; value `i` starts at `ends[i-1]` (or 0).
    public var ends: [UInt32] = []
    public var nulls: NullBitmap?

    public init(nullable: Bool = false) {
        nulls = nullable ? NullBitmap() : nil
    }

    @inlinable public var count: Int { ends.count }

    @inlinable public func start(_ i: Int) -> Int { i == 0 ? 0 : Int(ends[i &- 1]) }

    @inlinable public mutating func append(_ value: UnsafeRawBufferPointer) {
        bytes.append(contentsOf: value)
        ends.append(UInt32(truncatingIfNeeded: bytes.count))
        nulls?.append(false)
    }

    @inlinable public mutating func append(_ value: String) {
        var v = value
        v.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    @inlinable public mutating func append<C: Collection>(bytesOf value: C) where C.Element == UInt8 {
        bytes.append(contentsOf: value)
        ends.append(UInt32(truncatingIfNeeded: bytes.count))
        nulls?.append(false)
    }

    /// Appends a null; in a non-nullable column, the empty string.
    @inlinable public mutating func appendNull() {
        ends.append(UInt32(truncatingIfNeeded: bytes.count))
        nulls?.append(true)
    }

    @inlinable public func isNull(_ i: Int) -> Bool { nulls?[i] ?? false }

    /// Calls `body` with the bytes of value `i` (empty for null).
    @inlinable public func withValue<R>(_ i: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let s = start(i)
        let e = Int(ends[i])
        return try bytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[s..<e])) }
    }

    public func string(at i: Int) -> String? {
        if isNull(i) { return nil }
        let s = start(i)
        return String(decoding: bytes[s..<Int(ends[i])], as: UTF8.self)
    }

    public mutating func reserve(rows: Int, bytes n: Int) {
        ends.reserveCapacity(rows)
        bytes.reserveCapacity(n)
    }

    /// Appends value `i` of `other`.
    @inlinable public mutating func append(from other: StringColumn, row i: Int) {
        if other.isNull(i) && nulls != nil {
            appendNull()
            return
        }
        let s = other.start(i)
        let e = Int(other.ends[i])
        bytes.append(contentsOf: other.bytes[s..<e])
        ends.append(UInt32(truncatingIfNeeded: bytes.count))
        nulls?.append(false)
    }

    public mutating func removeAll(keepingCapacity: Bool = false) {
        bytes.removeAll(keepingCapacity: keepingCapacity)
        ends.removeAll(keepingCapacity: keepingCapacity)
        nulls?.removeAll(keepingCapacity: keepingCapacity)
    }
}

/// A column of 64-bit integers in memory.
public struct Int64Column: Sendable, Equatable {
    public var values: [Int64] = []
    public var nulls: NullBitmap?

    public init(nullable: Bool = false) {
        nulls = nullable ? NullBitmap() : nil
    }

    @inlinable public var count: Int { values.count }

    @inlinable public mutating func append(_ v: Int64) {
        values.append(v)
        nulls?.append(false)
    }

    @inlinable public mutating func appendNull() {
        values.append(0)
        nulls?.append(true)
    }

    @inlinable public func isNull(_ i: Int) -> Bool { nulls?[i] ?? false }

    public func value(at i: Int) -> Int64? { isNull(i) ? nil : values[i] }

    @inlinable public mutating func append(from other: Int64Column, row i: Int) {
        if other.isNull(i) && nulls != nil { appendNull() } else { append(other.values[i]) }
    }

    public mutating func removeAll(keepingCapacity: Bool = false) {
        values.removeAll(keepingCapacity: keepingCapacity)
        nulls?.removeAll(keepingCapacity: keepingCapacity)
    }
}
