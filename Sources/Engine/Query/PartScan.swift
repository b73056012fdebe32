/// Reads for the query executor that stay on dictionary codes.
extension Part {
    /// The dictionary codes of `column` in granule `g`, null rows as `UInt32.max`; nil when the
    /// granule is not dictionary-coded (the caller then reads values).
    func codesWithNulls(_ column: EventColumn, granule g: Int) throws(TallyError) -> [UInt32]? {
        guard let meta = footer.column(column), !meta.dictionary.isNone else { return nil }
        let ref = meta.granules[g]
        let rows = footer.granules[g].rows
        let (encoding, raw) = try readBlock(ref, what: "\(column.name) granule \(g)")
        guard encoding == .dictionaryCodes else { return nil }
        do {
            return try raw.withUnsafeBytes { payload in
                var r = ByteReader(payload)
                let nulls = try GranuleCodec.readNulls(&r, rows: rows)
                let width = Int(try r.u8())
                guard width == 1 || width == 2 || width == 4 else {
                    throw GranuleCodec.Malformed(message: "code width \(width)")
                }
                let body = try r.raw(rows * width)
                var codes = [UInt32](repeating: 0, count: rows)
                switch width {
                case 1: for k in 0..<rows { codes[k] = UInt32(body[k]) }
                case 2:
                    for k in 0..<rows {
                        codes[k] = UInt32(UInt16(littleEndian: body.loadUnaligned(fromByteOffset: k * 2, as: UInt16.self)))
                    }
                default:
                    for k in 0..<rows {
                        codes[k] = UInt32(littleEndian: body.loadUnaligned(fromByteOffset: k * 4, as: UInt32.self))
                    }
                }
                let size = UInt32(meta.dictionarySize)
                for k in 0..<rows {
                    if GranuleCodec.bit(nulls, k) {
                        codes[k] = .max
                    } else if codes[k] >= size {
                        throw GranuleCodec.Malformed(message: "code \(codes[k]) outside a dictionary of \(size)")
                    }
                }
                return codes
            }
        } catch {
            throw .corruption("malformed \(column.name) granule \(g) in part \(name) at offset \(ref.offset): \(error)")
        }
    }

    /// The dictionary of a dictionary-encoded column (the key dictionaries are kept open).
    func queryDictionary(_ column: EventColumn) throws(TallyError) -> StringColumn {
        switch column {
        case .siteID: sites
        case .eventType: eventTypes
        default: try dictionary(column)
        }
    }

    /// Granule `g` of the given columns, values decoded.
    func readBatch(_ columns: [EventColumn], granule g: Int, dictionaries: inout [EventColumn: StringColumn])
        throws(TallyError) -> EventBatch
    {
        var b = EventBatch(columns: columns)
        for c in columns { try read(c, granule: g, into: &b, dictionaries: &dictionaries) }
        b.setCount(footer.granules[g].rows)
        return b
    }

    /// `TallyHash` of the text of an identifier column's rows (`selected`, or all) in granule
    /// `g`, 0 for empty values — hashed from the binary forms without materializing strings.
    func identifierHashes(_ column: EventColumn, granule g: Int, selected: [Int32]?, occurred: [Int64]?,
                          dictionaries: inout [EventColumn: StringColumn]) throws(TallyError) -> [UInt64] {
        guard let meta = footer.column(column) else { throw .corruption("part \(name) has no column \(column.name)") }
        let ref = meta.granules[g]
        let rows = footer.granules[g].rows
        let (encoding, raw) = try readBlock(ref, what: "\(column.name) granule \(g)")
        let count = selected?.count ?? rows
        func row(_ k: Int) -> Int { selected.map { Int($0[k]) } ?? k }
        do {
            switch encoding {
            case .identifierBinary:
                return try raw.withUnsafeBytes { payload in
                    var r = ByteReader(payload)
                    guard try GranuleCodec.readNulls(&r, rows: rows) == nil else {
                        throw GranuleCodec.Malformed(message: "null bitmap in a binary identifier block")
                    }
                    guard let form = IdentifierForm(rawValue: try r.u8()) else {
                        throw GranuleCodec.Malformed(message: "unknown identifier form")
                    }
                    let body = try r.raw(rows * 16)
                    return (0..<count).map { k in
                        let i = row(k)
                        return IdentifierCodec.hashOfText(UnsafeRawBufferPointer(rebasing: body[i * 16..<i * 16 + 16]), form: form)
                    }
                }
            case .ulidFromOccurred:
                let times = try occurred ?? readInt64s(.occurredAt, granule: g)
                return try raw.withUnsafeBytes { payload in
                    var r = ByteReader(payload)
                    guard try GranuleCodec.readNulls(&r, rows: rows) == nil, times.count == rows else {
                        throw GranuleCodec.Malformed(message: "a ULID block without its occurred_at")
                    }
                    let deltas = try r.raw(rows * 8)
                    let random = try r.raw(rows * 10)
                    var binary = [UInt8](repeating: 0, count: 16)
                    return try (0..<count).map { k in
                        let i = row(k)
                        let ts = times[i] &+ Int64(littleEndian: deltas.loadUnaligned(fromByteOffset: i * 8, as: Int64.self))
                        guard ts >= 0 && ts < 1 << 48 else { throw GranuleCodec.Malformed(message: "ULID timestamp \(ts) out of range") }
                        for b in 0..<6 { binary[b] = UInt8(truncatingIfNeeded: ts >> (8 * (5 - b))) }
                        for b in 0..<10 { binary[6 + b] = random[i * 10 + b] }
                        return binary.withUnsafeBytes { IdentifierCodec.hashOfText($0, form: .ulid) }
                    }
                }
            default:
                let b = try readBatch([column], granule: g, dictionaries: &dictionaries)
                let col = b[string: column]
                return (0..<count).map { k in col.withValue(row(k)) { $0.isEmpty ? 0 : TallyHash.hash($0) } }
            }
        } catch let e as TallyError {
            throw e
        } catch {
            throw .corruption("malformed \(column.name) granule \(g) in part \(name) at offset \(ref.offset): \(error)")
        }
    }
}

extension Part {
    /// Opens a part file for the admin CLI (`tally inspect PART`, `tally verify PART`).
    public static func openForInspection(path: String, name: String, number: Int) throws(TallyError) -> Part {
        try open(path: path, name: name, number: number, fs: PosixFileSystem())
    }

    /// The columns with bloom filters, in the order of `GranuleMeta.blooms`.
    public static var bloomFilterColumns: [EventColumn] { PartFormat.bloomColumns }

    /// The size in bits of a granule's bloom filter on `column`, or nil if it has none.
    public func bloomFilterBits(_ column: EventColumn, granule g: Int) throws(TallyError) -> Int? {
        try bloom(column, granule: g).map { $0.numBlocks * 256 }
    }
}
