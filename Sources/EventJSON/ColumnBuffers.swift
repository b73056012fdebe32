import Engine

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The new rows of a request, column by column, in buffers the decoder owns.
///
/// Appending to `EventBatch`'s arrays directly costs three or four uniqueness checks and a
/// non-inlinable null-bitmap call per value (≈ 30% of decoding time in the profile of a
/// 100-event batch); here a value is a capacity check and a copy. `flush(into:)` moves the
/// rows into the batch at the end, one bulk copy per column.
struct ColumnBuffers {
    /// Indexed by `EventColumn.rawValue`; entries of the other storage class stay empty.
    let strings: UnsafeMutablePointer<StringBuffer>
    let ints: UnsafeMutablePointer<Int64Buffer>

    init(expectedRows: Int) {
        let n = EventColumn.os.rawValue + 1
        let rows = max(expectedRows, 16)
        strings = .allocate(capacity: n)
        ints = .allocate(capacity: n)
        // Only the entries of each column's own storage class are initialized (and ever read).
        for c in EventColumn.allCases {
            if c.kind == .int64 {
                ints.advanced(by: c.rawValue).initialize(to: Int64Buffer(rows: rows))
            } else {
                strings.advanced(by: c.rawValue).initialize(
                    to: StringBuffer(rows: rows, bytesPerRow: ColumnBuffers.bytesPerRow(c)))
            }
        }
    }

    /// A first guess at a column's bytes per row; buffers double when it is wrong.
    private static func bytesPerRow(_ c: EventColumn) -> Int {
        switch c.kind {
        case .int64: 0
        case .identifier: 32
        case .lowCardinality: 16
        case .string: 64
        }
    }

    func deallocate() {
        for c in EventColumn.allCases {
            if c.kind == .int64 { ints[c.rawValue].deallocate() } else { strings[c.rawValue].deallocate() }
        }
        strings.deallocate()
        ints.deallocate()
    }

    /// Appends every buffered row to `batch`'s columns (but not its count: the caller sets it).
    func flush(into batch: inout EventBatch) {
        for c in EventColumn.allCases {
            if c.kind == .int64 {
                ints[c.rawValue].flush(into: &batch.ints[c.slot])
            } else {
                strings[c.rawValue].flush(into: &batch.strings[c.slot])
            }
        }
    }
}

/// New values of one string column: bytes back to back, end offsets, a null flag per row.
struct StringBuffer {
    private(set) var bytes: UnsafeMutablePointer<UInt8>
    private(set) var byteCount = 0
    private var byteCapacity: Int
    private var ends: UnsafeMutablePointer<UInt32>
    private var nulls: UnsafeMutablePointer<UInt8>
    private(set) var count = 0
    private var rowCapacity: Int

    init(rows: Int, bytesPerRow: Int) {
        rowCapacity = max(rows, 1)
        byteCapacity = max(rows * bytesPerRow, 16)
        bytes = ColumnMemory.allocate(byteCapacity)
        ends = ColumnMemory.allocate(rowCapacity)
        nulls = ColumnMemory.allocate(rowCapacity)
    }

    func deallocate() {
        free(bytes)
        free(ends)
        free(nulls)
    }

    /// Appends `n` bytes from `source` as one value.
    @inline(__always) mutating func append(_ source: UnsafeRawPointer, count n: Int) {
        let at = reserve(n)
        UnsafeMutableRawPointer(at).copyMemory(from: source, byteCount: n)
        close(n)
    }

    /// Room for a value of `n` bytes: write them at the pointer returned, then `close(n)`.
    @inline(__always) mutating func reserve(_ n: Int) -> UnsafeMutablePointer<UInt8> {
        if count == rowCapacity { growRows() }
        if byteCount &+ n > byteCapacity { growBytes(byteCount &+ n) }
        return bytes + byteCount
    }

    /// Ends the value whose `n` bytes were written at `reserve(n)`'s pointer.
    @inline(__always) mutating func close(_ n: Int) {
        byteCount &+= n
        ends[count] = UInt32(truncatingIfNeeded: byteCount)
        nulls[count] = 0
        count &+= 1
    }

    /// Appends a null (read as "" in a column that is not nullable).
    @inline(__always) mutating func appendNull() {
        if count == rowCapacity { growRows() }
        ends[count] = UInt32(truncatingIfNeeded: byteCount)
        nulls[count] = 1
        count &+= 1
    }

    private mutating func growRows() {
        rowCapacity *= 2
        ends = ColumnMemory.reallocate(ends, rowCapacity)
        nulls = ColumnMemory.reallocate(nulls, rowCapacity)
    }

    private mutating func growBytes(_ needed: Int) {
        byteCapacity = max(needed, byteCapacity * 2)
        bytes = ColumnMemory.reallocate(bytes, byteCapacity)
    }

    func flush(into column: inout StringColumn) {
        guard count > 0 else { return }
        let base = UInt32(truncatingIfNeeded: column.bytes.count)
        column.bytes.append(contentsOf: UnsafeBufferPointer(start: bytes, count: byteCount))
        let ends = self.ends
        let oldRows = column.ends.count
        column.ends.append(contentsOf: UnsafeBufferPointer(start: ends, count: count))
        if base != 0 {
            column.ends.withUnsafeMutableBufferPointer { e in
                for i in oldRows..<e.count { e[i] &+= base }
            }
        }
        if let old = column.nulls {
            column.nulls = ColumnMemory.appending(UnsafeBufferPointer(start: nulls, count: count), to: old)
        }
    }
}

/// New values of one Int64 column, with a null flag per row.
struct Int64Buffer {
    private var values: UnsafeMutablePointer<Int64>
    private var nulls: UnsafeMutablePointer<UInt8>
    private(set) var count = 0
    private var capacity: Int

    init(rows: Int) {
        capacity = max(rows, 1)
        values = ColumnMemory.allocate(capacity)
        nulls = ColumnMemory.allocate(capacity)
    }

    func deallocate() {
        free(values)
        free(nulls)
    }

    @inline(__always) mutating func append(_ v: Int64) {
        if count == capacity { grow() }
        values[count] = v
        nulls[count] = 0
        count &+= 1
    }

    @inline(__always) mutating func appendNull() {
        if count == capacity { grow() }
        values[count] = 0
        nulls[count] = 1
        count &+= 1
    }

    private mutating func grow() {
        capacity *= 2
        values = ColumnMemory.reallocate(values, capacity)
        nulls = ColumnMemory.reallocate(nulls, capacity)
    }

    func flush(into column: inout Int64Column) {
        guard count > 0 else { return }
        column.values.append(contentsOf: UnsafeBufferPointer(start: values, count: count))
        if let old = column.nulls {
            column.nulls = ColumnMemory.appending(UnsafeBufferPointer(start: nulls, count: count), to: old)
        }
    }
}

/// malloc/realloc for the buffers above: `realloc` grows in place when it can.
enum ColumnMemory {
    static func allocate<T>(_ n: Int) -> UnsafeMutablePointer<T> {
        guard let p = malloc(n * MemoryLayout<T>.stride) else { fatalError("out of memory") }
        return p.bindMemory(to: T.self, capacity: n)
    }

    static func reallocate<T>(_ p: UnsafeMutablePointer<T>, _ n: Int) -> UnsafeMutablePointer<T> {
        guard let q = realloc(p, n * MemoryLayout<T>.stride) else { fatalError("out of memory") }
        return q.bindMemory(to: T.self, capacity: n)
    }

    /// `old` followed by one bit per flag (non-zero: null).
    static func appending(_ flags: UnsafeBufferPointer<UInt8>, to old: NullBitmap) -> NullBitmap {
        var words = old.words
        var n = old.count
        words.reserveCapacity((n + flags.count + 63) / 64)
        for f in flags {
            if n & 63 == 0 { words.append(0) }
            if f != 0 { words[n >> 6] |= 1 << UInt64(n & 63) }
            n += 1
        }
        return NullBitmap(words: words, count: n)
    }
}
