/// A batch of events as columns: the unit of ingest (one per request or file chunk), of
/// the in-memory buffer and of scan output.
///
/// Writers append exactly one value to every column per row, then call `endRow()`.
/// A batch produced by a scan holds only the projected columns (`columns`); the others
/// are empty.
public struct EventBatch: Sendable, Equatable {
    public var ints: [Int64Column]
    public var strings: [StringColumn]
    public private(set) var count: Int = 0
    /// The columns this batch carries (all of them unless it is a projection).
    public let columns: [EventColumn]

    public init(columns: [EventColumn] = EventColumn.allCases) {
        self.columns = columns.sorted()
        ints = EventColumn.int64Columns.map { Int64Column(nullable: $0.isNullable) }
        strings = EventColumn.stringColumns.map { StringColumn(nullable: $0.isNullable) }
    }

    public var isEmpty: Bool { count == 0 }

    @inlinable public subscript(int column: EventColumn) -> Int64Column {
        get { ints[column.slot] }
        _modify { yield &ints[column.slot] }
    }

    @inlinable public subscript(string column: EventColumn) -> StringColumn {
        get { strings[column.slot] }
        _modify { yield &strings[column.slot] }
    }

    /// Closes the row whose values were just appended to every column.
    public mutating func endRow() {
        count += 1
        #if TALLY_INTERNAL_CHECKS
            for c in columns {
                let n = c.kind == .int64 ? self[int: c].count : self[string: c].count
                precondition(n == count, "column \(c.name) has \(n) values in a batch of \(count) rows")
            }
        #endif
    }

    /// Sets the row count after columns were filled directly (decoders, scans).
    public mutating func setCount(_ n: Int) {
        #if TALLY_INTERNAL_CHECKS
            for c in columns {
                let m = c.kind == .int64 ? self[int: c].count : self[string: c].count
                precondition(m == n, "column \(c.name) has \(m) values, batch claims \(n)")
            }
        #endif
        count = n
    }

    /// Appends row `row` of `other` (which must carry at least this batch's columns).
    public mutating func append(from other: EventBatch, row: Int) {
        for c in columns {
            if c.kind == .int64 {
                ints[c.slot].append(from: other.ints[c.slot], row: row)
            } else {
                strings[c.slot].append(from: other.strings[c.slot], row: row)
            }
        }
        count += 1
    }

    /// Appends all rows of `other`.
    public mutating func append(contentsOf other: EventBatch) {
        for c in columns {
            if c.kind == .int64 {
                let src = other.ints[c.slot]
                ints[c.slot].values.append(contentsOf: src.values)
                if ints[c.slot].nulls != nil {
                    for i in 0..<src.count { ints[c.slot].nulls!.append(src.isNull(i)) }
                }
            } else {
                let src = other.strings[c.slot]
                let base = UInt32(strings[c.slot].bytes.count)
                strings[c.slot].bytes.append(contentsOf: src.bytes)
                strings[c.slot].ends.append(contentsOf: src.ends.lazy.map { $0 &+ base })
                if strings[c.slot].nulls != nil {
                    for i in 0..<src.count { strings[c.slot].nulls!.append(src.isNull(i)) }
                }
            }
        }
        count += other.count
    }

    /// All rows of `batches` (whole events) in one batch, each column allocated once.
    public static func joined(_ batches: [EventBatch]) -> EventBatch {
        if batches.count == 1 { return batches[0] }
        var out = EventBatch()
        let rows = batches.reduce(0) { $0 + $1.count }
        for c in EventColumn.allCases {
            if c.kind == .int64 {
                out.ints[c.slot].values.reserveCapacity(rows)
            } else {
                out.strings[c.slot].reserve(rows: rows, bytes: batches.reduce(0) { $0 + $1.strings[c.slot].bytes.count })
            }
        }
        for b in batches { out.append(contentsOf: b) }
        return out
    }

    /// A new batch holding the rows at `indices`, in that order.
    public func gather<C: Collection>(_ indices: C, columns only: [EventColumn]? = nil) -> EventBatch
    where C.Element == Int32 {
        var out = EventBatch(columns: only ?? columns)
        for c in out.columns {
            if c.kind == .int64 {
                let src = ints[c.slot]
                var dst = Int64Column(nullable: c.isNullable)
                dst.values.reserveCapacity(indices.count)
                src.values.withUnsafeBufferPointer { v in
                    for i in indices { dst.values.append(v[Int(i)]) }
                }
                if let nulls = src.nulls { for i in indices { dst.nulls!.append(nulls[Int(i)]) } }
                out.ints[c.slot] = dst
            } else {
                let src = strings[c.slot]
                var dst = StringColumn(nullable: c.isNullable)
                src.ends.withUnsafeBufferPointer { e in
                    var total = 0
                    for i in indices {
                        let i = Int(i)
                        total += Int(e[i]) - (i == 0 ? 0 : Int(e[i - 1]))
                    }
                    dst.reserve(rows: indices.count, bytes: total)
                    src.bytes.withUnsafeBufferPointer { b in
                        for i in indices {
                            let i = Int(i)
                            let s = i == 0 ? 0 : Int(e[i - 1])
                            dst.bytes.append(contentsOf: UnsafeBufferPointer(rebasing: b[s..<Int(e[i])]))
                            dst.ends.append(UInt32(truncatingIfNeeded: dst.bytes.count))
                        }
                    }
                }
                if let nulls = src.nulls { for i in indices { dst.nulls!.append(nulls[Int(i)]) } }
                out.strings[c.slot] = dst
            }
        }
        out.count = indices.count
        return out
    }

    /// Bytes held by the column values (the buffer's flush-by-size measure).
    public var byteSize: Int {
        var n = 0
        for c in columns {
            if c.kind == .int64 { n += self[int: c].values.count * 8 } else {
                n += self[string: c].bytes.count + self[string: c].ends.count * 4
            }
        }
        return n
    }

    public mutating func removeAll(keepingCapacity: Bool = false) {
        for i in ints.indices { ints[i].removeAll(keepingCapacity: keepingCapacity) }
        for i in strings.indices { strings[i].removeAll(keepingCapacity: keepingCapacity) }
        count = 0
    }
}
