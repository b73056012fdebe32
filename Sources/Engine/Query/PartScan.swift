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
}
