/// Encodes one granule of one column into a block payload (before compression) and back.
///
/// Every payload starts with a null flag byte: 0 = no nulls, 1 = a null bitmap of
/// ceil(n/8) bytes follows (bit i of byte i/8, least significant first, set = null).
/// The body follows, laid out as its `ColumnEncoding` says.
enum GranuleCodec {
    static func writeNulls(_ nulls: NullBitmap?, _ range: Range<Int>, into w: inout ByteWriter) {
        guard let nulls, nulls.nullCount > 0, range.contains(where: { nulls[$0] }) else {
            w.u8(0)
            return
        }
        w.u8(1)
        var byte: UInt8 = 0
        for (k, i) in range.enumerated() {
            if nulls[i] { byte |= 1 << UInt8(k & 7) }
            if k & 7 == 7 {
                w.u8(byte)
                byte = 0
            }
        }
        if range.count & 7 != 0 { w.u8(byte) }
    }

    static func encodeInt64(_ col: Int64Column, _ range: Range<Int>, delta: Bool, into w: inout ByteWriter)
        -> ColumnEncoding
    {
        writeNulls(col.nulls, range, into: &w)
        col.values.withUnsafeBufferPointer { v in
            if delta {
                var prev: Int64 = 0
                w.bytes.reserveCapacity(w.count + range.count * 8)
                for i in range {
                    w.i64(v[i] &- prev)
                    prev = v[i]
                }
            } else {
                w.raw(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: v[range])))
            }
        }
        return delta ? .int64Delta : .int64Plain
    }

    /// Whether differences from occurred_at need fewer significant bits in total than
    /// differences between consecutive values (a proxy for which compresses better).
    static func fromOccurredIsSmaller(_ col: Int64Column, occurred: Int64Column, _ range: Range<Int>) -> Bool {
        func bits(_ v: Int64) -> Int { 64 - UInt64(bitPattern: (v << 1) ^ (v >> 63)).leadingZeroBitCount }
        var fromOccurred = 0
        var delta = 0
        var prev: Int64 = range.isEmpty ? 0 : col.values[range.lowerBound]
        for i in range {
            fromOccurred += bits(col.values[i] &- occurred.values[i])
            delta += bits(col.values[i] &- prev)
            prev = col.values[i]
        }
        return fromOccurred < delta
    }

    /// received_at as differences from occurred_at (no nulls in either column).
    static func encodeFromOccurred(_ col: Int64Column, occurred: Int64Column, _ range: Range<Int>,
                                   into w: inout ByteWriter) -> ColumnEncoding {
        w.u8(0)
        for i in range { w.i64(col.values[i] &- occurred.values[i]) }
        return .int64FromOccurred
    }

    /// event_id as ULID timestamps relative to occurred_at plus random bytes, when every value
    /// in the range is a canonical ULID; otherwise the identifier encoding.
    static func encodeULIDsFromOccurred(_ col: StringColumn, occurred: Int64Column, _ range: Range<Int>,
                                        into w: inout ByteWriter) -> ColumnEncoding {
        var binary = [UInt8](repeating: 0, count: range.count * 16)
        let allULIDs = binary.withUnsafeMutableBytes { out in
            for (k, i) in range.enumerated() {
                if col.isNull(i) { return false }
                let ok = col.withValue(i) { v in IdentifierCodec.encode(v, into: out.baseAddress! + k * 16) == .ulid }
                if !ok { return false }
            }
            return true
        }
        guard allULIDs, !range.isEmpty else { return encodeIdentifiers(col, range, into: &w) }
        w.u8(0)
        for (k, i) in range.enumerated() {
            var ts: Int64 = 0
            for b in 0..<6 { ts = ts << 8 | Int64(binary[k * 16 + b]) }
            w.i64(ts &- occurred.values[i])
        }
        for k in 0..<range.count { w.raw(binary[(k * 16 + 6)..<(k * 16 + 16)]) }
        return .ulidFromOccurred
    }

    static func encodeStrings(_ col: StringColumn, _ range: Range<Int>, into w: inout ByteWriter) -> ColumnEncoding {
        writeNulls(col.nulls, range, into: &w)
        for i in range { w.varint(UInt64(Int(col.ends[i]) - col.start(i))) }
        let s = col.start(range.lowerBound)
        let e = range.isEmpty ? s : Int(col.ends[range.upperBound - 1])
        w.raw(col.bytes[s..<e])
        return .stringPlain
    }

    /// Binary identifiers when every value in the range has the same canonical form and
    /// none is null; otherwise plain strings.
    ///
    /// Each value is parsed once, straight into its place (parsing for the form, then again
    /// for the bytes, was ~2% of a 1M-event `tally ingest`'s CPU time).
    static func encodeIdentifiers(_ col: StringColumn, _ range: Range<Int>, into w: inout ByteWriter) -> ColumnEncoding {
        let hasNull = (col.nulls?.nullCount ?? 0) > 0 && range.contains(where: { col.isNull($0) })
        guard !range.isEmpty, !hasNull else { return encodeStrings(col, range, into: &w) }
        let start = w.count
        w.u8(0)
        w.u8(0)
        let base = w.count
        w.bytes.append(contentsOf: repeatElement(0, count: range.count * 16))
        let form = w.bytes.withUnsafeMutableBytes { out -> IdentifierForm? in
            var form: IdentifierForm?
            for (k, i) in range.enumerated() {
                let f = col.withValue(i) { IdentifierCodec.encode($0, into: out.baseAddress! + base + k * 16) }
                guard let f, form == nil || f == form else { return nil }
                form = f
            }
            return form
        }
        guard let form else {
            w.bytes.removeSubrange(start...)
            return encodeStrings(col, range, into: &w)
        }
        w.bytes[start + 1] = form.rawValue
        return .identifierBinary
    }

    static func encodeCodes(_ codes: ArraySlice<UInt32>, nulls: NullBitmap?, _ range: Range<Int>, dictionarySize: Int,
                            into w: inout ByteWriter) -> ColumnEncoding {
        writeNulls(nulls, range, into: &w)
        let width: UInt8 = dictionarySize <= 256 ? 1 : (dictionarySize <= 65536 ? 2 : 4)
        w.u8(width)
        switch width {
        case 1: w.bytes.append(contentsOf: codes.lazy.map { UInt8(truncatingIfNeeded: $0) })
        case 2: for c in codes { w.u16(UInt16(truncatingIfNeeded: c)) }
        default: for c in codes { w.u32(c) }
        }
        return .dictionaryCodes
    }

    // MARK: Decoding

    struct Malformed: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    /// Reads the null flag and bitmap; returns nil when the granule has no nulls.
    static func readNulls(_ r: inout ByteReader, rows: Int) throws -> UnsafeRawBufferPointer? {
        let flag = try r.u8()
        switch flag {
        case 0: return nil
        case 1: return try r.raw((rows + 7) / 8)
        default: throw Malformed(message: "null flag \(flag) is neither 0 nor 1")
        }
    }

    @inline(__always) static func bit(_ bits: UnsafeRawBufferPointer?, _ k: Int) -> Bool {
        guard let bits else { return false }
        return (bits[k >> 3] >> UInt8(k & 7)) & 1 == 1
    }

    static func decodeInt64(_ payload: UnsafeRawBufferPointer, encoding: ColumnEncoding, rows: Int,
                            occurred: [Int64]? = nil, into col: inout Int64Column) throws {
        var r = ByteReader(payload)
        let nulls = try readNulls(&r, rows: rows)
        let body = try r.raw(rows * 8)
        guard r.isAtEnd else { throw Malformed(message: "\(r.remaining) bytes after \(rows) int64 values") }
        let base = col.values.count
        col.values.reserveCapacity(base + rows)
        switch encoding {
        case .int64Plain:
            for k in 0..<rows { col.values.append(Int64(littleEndian: body.loadUnaligned(fromByteOffset: k * 8, as: Int64.self))) }
        case .int64Delta:
            var prev: Int64 = 0
            for k in 0..<rows {
                prev = prev &+ Int64(littleEndian: body.loadUnaligned(fromByteOffset: k * 8, as: Int64.self))
                col.values.append(prev)
            }
        case .int64FromOccurred:
            guard let occurred, occurred.count == rows else { throw Malformed(message: "no occurred_at to decode against") }
            for k in 0..<rows {
                col.values.append(occurred[k] &+ Int64(littleEndian: body.loadUnaligned(fromByteOffset: k * 8, as: Int64.self)))
            }
        default:
            throw Malformed(message: "encoding \(encoding) is not an int64 encoding")
        }
        if col.nulls != nil {
            for k in 0..<rows { col.nulls!.append(bit(nulls, k)) }
        } else if nulls != nil {
            throw Malformed(message: "null bitmap in a non-nullable column")
        }
    }

    /// Appends the values of a granule's string block to `col`: every row, or only `selected`
    /// (ascending row numbers; the whole block is still read and checked).
    static func decodeStrings(_ payload: UnsafeRawBufferPointer, encoding: ColumnEncoding, rows: Int,
                              dictionary: StringColumn?, occurred: [Int64]? = nil, selected: [Int32]? = nil,
                              into col: inout StringColumn) throws {
        var r = ByteReader(payload)
        let nulls = try readNulls(&r, rows: rows)
        if nulls != nil && col.nulls == nil { throw Malformed(message: "null bitmap in a non-nullable column") }
        col.ends.reserveCapacity(col.ends.count + (selected?.count ?? rows))
        if let selected, let last = selected.last, last >= rows || selected.first! < 0 {
            throw Malformed(message: "row \(last) of a granule of \(rows)")
        }
        switch encoding {
        case .stringPlain:
            var lengths = [Int](repeating: 0, count: rows)
            var total = 0
            for k in 0..<rows {
                lengths[k] = try r.count(limit: r.remaining)
                total += lengths[k]
            }
            let body = try r.raw(total)
            if let selected {
                var starts = [Int](repeating: 0, count: rows + 1)
                for k in 0..<rows { starts[k + 1] = starts[k] + lengths[k] }
                for k in selected.lazy.map(Int.init) {
                    col.bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: body[starts[k]..<starts[k + 1]]))
                    col.ends.append(UInt32(truncatingIfNeeded: col.bytes.count))
                    col.nulls?.append(bit(nulls, k))
                }
                break
            }
            col.bytes.append(contentsOf: body)
            var end = col.bytes.count - total
            for k in 0..<rows {
                end += lengths[k]
                col.ends.append(UInt32(truncatingIfNeeded: end))
                col.nulls?.append(bit(nulls, k))
            }
        case .dictionaryCodes:
            guard let dictionary else { throw Malformed(message: "dictionary codes without a dictionary") }
            let width = Int(try r.u8())
            guard width == 1 || width == 2 || width == 4 else { throw Malformed(message: "code width \(width)") }
            let body = try r.raw(rows * width)
            /// Row k's code, checked against the dictionary (nil for a null row).
            func code(_ k: Int) throws -> Int? {
                if bit(nulls, k) { return nil }
                let code: Int
                switch width {
                case 1: code = Int(body[k])
                case 2: code = Int(UInt16(littleEndian: body.loadUnaligned(fromByteOffset: k * 2, as: UInt16.self)))
                default: code = Int(UInt32(littleEndian: body.loadUnaligned(fromByteOffset: k * 4, as: UInt32.self)))
                }
                guard code < dictionary.count else {
                    throw Malformed(message: "code \(code) outside a dictionary of \(dictionary.count)")
                }
                return code
            }
            func append(_ k: Int) throws {
                if let c = try code(k) { col.append(from: dictionary, row: c) } else { col.appendNull() }
            }
            if let selected {
                // Every row's code is checked, as when all rows are made.
                for k in 0..<rows { _ = try code(k) }
                for k in selected { try append(Int(k)) }
            } else {
                for k in 0..<rows { try append(k) }
            }
        case .identifierBinary, .ulidFromOccurred:
            var wanted: [Bool]?
            if let selected {
                wanted = [Bool](repeating: false, count: rows)
                for k in selected { wanted![Int(k)] = true }
            }
            try forEachIdentifier(&r, encoding: encoding, rows: rows, occurred: occurred) { k, binary, form in
                guard wanted?[k] ?? true else { return }
                IdentifierCodec.decode(binary, form: form, into: &col.bytes)
                col.ends.append(UInt32(truncatingIfNeeded: col.bytes.count))
                col.nulls?.append(false)
            }
        default:
            throw Malformed(message: "encoding \(encoding) is not a string encoding")
        }
        guard r.isAtEnd else { throw Malformed(message: "\(r.remaining) bytes after \(rows) values") }
    }

    /// The codes of a dictionary-codes payload, checked against the dictionary's size. Null
    /// rows keep their stored code (0), or get `nullCode` when one is given.
    static func decodeCodes(_ payload: UnsafeRawBufferPointer, rows: Int, dictionarySize: Int, nullCode: UInt32? = nil)
        throws -> [UInt32]
    {
        var r = ByteReader(payload)
        let nulls = try readNulls(&r, rows: rows)
        let width = Int(try r.u8())
        guard width == 1 || width == 2 || width == 4 else { throw Malformed(message: "code width \(width)") }
        let body = try r.raw(rows * width)
        guard r.isAtEnd else { throw Malformed(message: "\(r.remaining) bytes after \(rows) codes") }
        var codes = [UInt32](repeating: 0, count: rows)
        var maxCode: UInt32 = 0
        switch width {
        case 1: for k in 0..<rows { codes[k] = UInt32(body[k]) }
        case 2: for k in 0..<rows { codes[k] = UInt32(UInt16(littleEndian: body.loadUnaligned(fromByteOffset: k * 2, as: UInt16.self))) }
        default: for k in 0..<rows { codes[k] = UInt32(littleEndian: body.loadUnaligned(fromByteOffset: k * 4, as: UInt32.self)) }
        }
        for c in codes { maxCode = max(maxCode, c) }
        if rows > 0 && Int(maxCode) >= max(dictionarySize, 1) {
            throw Malformed(message: "code \(maxCode) outside a dictionary of \(dictionarySize)")
        }
        if let nullCode, nulls != nil {
            for k in 0..<rows where bit(nulls, k) { codes[k] = nullCode }
        }
        return codes
    }

    /// Calls `body` with each row's 16-byte binary identifier of an `identifierBinary` or
    /// `ulidFromOccurred` payload (after its null flag), and the form to print it in.
    @inline(__always)
    static func forEachIdentifier(_ r: inout ByteReader, encoding: ColumnEncoding, rows: Int, occurred: [Int64]?,
                                  _ body: (Int, UnsafeRawBufferPointer, IdentifierForm) throws -> Void) throws {
        try withUnsafeTemporaryAllocation(byteCount: 16, alignment: 8) { binary in
            try forEachIdentifierWords(&r, encoding: encoding, rows: rows, occurred: occurred, selected: nil) { k, hi, lo, form in
                binary.storeBytes(of: hi.bigEndian, toByteOffset: 0, as: UInt64.self)
                binary.storeBytes(of: lo.bigEndian, toByteOffset: 8, as: UInt64.self)
                try body(k, UnsafeRawBufferPointer(binary), form)
            }
        }
    }

    /// `TallyHash` of the text of each row's identifier (the `selected` rows, ascending, or
    /// all) of an `identifierBinary` or `ulidFromOccurred` payload (after its null flag), made
    /// from the binary forms, a run of one id (rows are sorted by visitor within a day and
    /// event type) hashed once.
    static func identifierTextHashes(_ r: inout ByteReader, encoding: ColumnEncoding, rows: Int, occurred: [Int64]?,
                                     selected: [Int32]?) throws -> [UInt64] {
        var hashes = [UInt64](repeating: 0, count: selected?.count ?? rows)
        try hashes.withUnsafeMutableBufferPointer { out in
            var i = 0
            var previous: (hi: UInt64, lo: UInt64, hash: UInt64) = (0, 0, 0)
            try forEachIdentifierWords(&r, encoding: encoding, rows: rows, occurred: occurred, selected: selected) { _, hi, lo, form in
                if i == 0 || previous.hi != hi || previous.lo != lo {
                    previous = (hi, lo, IdentifierCodec.textHash(hi: hi, lo: lo, form: form))
                }
                out[i] = previous.hash
                i += 1
            }
        }
        return hashes
    }

    /// Calls `body` with the row, the 128 bits (`hi`: the first 8 bytes, big-endian; `lo`: the
    /// rest) and the form of each identifier of an `identifierBinary` or `ulidFromOccurred`
    /// payload (after its null flag): every row, or only `selected` (ascending rows). Nothing
    /// is copied per row.
    @inline(__always)
    static func forEachIdentifierWords(_ r: inout ByteReader, encoding: ColumnEncoding, rows: Int, occurred: [Int64]?,
                                       selected: [Int32]?, _ body: (Int, UInt64, UInt64, IdentifierForm) throws -> Void) throws {
        func visit(_ row: (Int) throws -> Void) throws {
            guard let selected else {
                for k in 0..<rows { try row(k) }
                return
            }
            for k in selected {
                guard k >= 0 && Int(k) < rows else { throw Malformed(message: "row \(k) outside a granule of \(rows)") }
                try row(Int(k))
            }
        }
        switch encoding {
        case .identifierBinary:
            guard let form = IdentifierForm(rawValue: try r.u8()) else { throw Malformed(message: "unknown identifier form") }
            let ids = try r.raw(rows * 16)
            try visit { k in
                try body(k, UInt64(bigEndian: ids.loadUnaligned(fromByteOffset: k &* 16, as: UInt64.self)),
                         UInt64(bigEndian: ids.loadUnaligned(fromByteOffset: k &* 16 &+ 8, as: UInt64.self)), form)
            }
        case .ulidFromOccurred:
            guard let occurred, occurred.count == rows else { throw Malformed(message: "no occurred_at to decode against") }
            let deltas = try r.raw(rows * 8)
            let random = try r.raw(rows * 10)
            try visit { k in
                let ts = occurred[k] &+ Int64(littleEndian: deltas.loadUnaligned(fromByteOffset: k &* 8, as: Int64.self))
                guard ts >= 0 && ts < 1 << 48 else { throw Malformed(message: "ULID timestamp \(ts) out of range") }
                // Bytes 0–5: the timestamp, big-endian; 6–15: the random part as stored.
                let r0 = UInt64(random[k &* 10]), r1 = UInt64(random[k &* 10 &+ 1])
                let lo = UInt64(bigEndian: random.loadUnaligned(fromByteOffset: k &* 10 &+ 2, as: UInt64.self))
                try body(k, UInt64(ts) &<< 16 | r0 &<< 8 | r1, lo, .ulid)
            }
        default:
            throw Malformed(message: "encoding \(encoding) does not hold binary identifiers")
        }
    }

    // MARK: Dictionaries

    static func encodeDictionary(_ values: StringColumn, order: [Int32], into w: inout ByteWriter) {
        w.varint(UInt64(order.count))
        for code in order {
            values.withValue(Int(code)) { v in
                w.varint(UInt64(v.count))
                w.raw(v)
            }
        }
    }

    static func decodeDictionary(_ payload: UnsafeRawBufferPointer) throws -> StringColumn {
        var r = ByteReader(payload)
        let n = try r.count(limit: payload.count)
        var col = StringColumn()
        col.ends.reserveCapacity(n)
        for _ in 0..<n { col.append(try r.raw(try r.count(limit: r.remaining))) }
        guard r.isAtEnd else { throw Malformed(message: "\(r.remaining) bytes after a dictionary of \(n)") }
        return col
    }
}
