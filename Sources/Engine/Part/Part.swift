import Synchronization
/// An open, immutable part file: its footer in memory and its blocks read on demand.
///
/// Reference counted: snapshots hold parts, and a part's file stays open (and, once a
/// merge replaces it, undeleted) while any snapshot holds it.
public final class Part: Sendable {
    public let name: String
    public let path: String
    public let number: Int
    public let footer: PartFooter
    public let fileSize: Int
    /// The part's site_id and event_type dictionaries (the primary index refers to their codes).
    public let sites: StringColumn
    public let eventTypes: StringColumn
    /// CRC32C of the footer (from the trailer): session summaries name the part they were built from by it.
    let footerCRC: UInt32
    let file: any StoredFile
    private let summaries = Mutex<SessionSummaryFile?>(nil)

    /// The part's per-session summaries (`NAME.sessions`), once built; nil until then.
    public var sessionSummaries: SessionSummaryFile? { summaries.withLock { $0 } }

    func attach(_ s: SessionSummaryFile?) { summaries.withLock { $0 = s } }

    public var partition: Partition { footer.partition }
    public var rows: Int { footer.rows }

    /// Opens and validates the trailer, footer and key dictionaries of a part file.
    static func open(path: String, name: String, number: Int, fs: any FileSystem) throws(TallyError) -> Part {
        let file = try fs.openForReading(path)
        let frame = try FileFrame.part.open(file, name: name)
        let (size, footerOffset, footerBytes, footerCRC) = (frame.size, frame.footerOffset, frame.footer, frame.footerCRC)
        let footer: PartFooter
        do {
            footer = try footerBytes.withUnsafeBytes { try PartFooter.parse($0, fileSize: footerOffset) }
        } catch let e as TallyError {
            throw TallyError(e.code, "part \(name) footer: \(e.message)")
        } catch {
            throw .corruption("malformed footer in part \(name) at offset \(footerOffset): \(error)")
        }
        let sites = try readDictionary(.siteID, footer: footer, file: file, name: name)
        let types = try readDictionary(.eventType, footer: footer, file: file, name: name)
        let part = Part(name: name, path: path, number: number, footer: footer, fileSize: size, sites: sites,
                        eventTypes: types, footerCRC: footerCRC, file: file)
        // Summaries that are missing, damaged or of another part are left out (the part is read
        // raw) until the store builds them again.
        let summaryPath = SessionSummaryFile.path(forPart: path)
        if fs.exists(summaryPath) {
            part.attach(try? SessionSummaryFile.open(path: summaryPath, partFileSize: size, partFooterCRC: footerCRC, fs: fs))
        }
        return part
    }

    private init(name: String, path: String, number: Int, footer: PartFooter, fileSize: Int, sites: StringColumn,
                 eventTypes: StringColumn, footerCRC: UInt32, file: any StoredFile) {
        self.footerCRC = footerCRC
        self.name = name
        self.path = path
        self.number = number
        self.footer = footer
        self.fileSize = fileSize
        self.sites = sites
        self.eventTypes = eventTypes
        self.file = file
    }

    func readBlock(_ ref: BlockRef, what: String) throws(TallyError) -> (ColumnEncoding, [UInt8]) {
        try Self.readBlock(ref, what: what, file: file, name: name)
    }

    /// Reads, checks and decompresses one block; returns its encoding and raw payload.
    static func readBlock(_ ref: BlockRef, what: String, file: any StoredFile, name: String)
        throws(TallyError) -> (ColumnEncoding, [UInt8])
    {
        try decodeBlock(try readStoredBlock(ref, what: what, file: file, name: name), offset: ref.offset, what: what, name: name)
    }

    /// A block's stored bytes, header included, read whole (not yet checked).
    static func readStoredBlock(_ ref: BlockRef, what: String, file: any StoredFile, name: String) throws(TallyError) -> [UInt8] {
        guard ref.length >= PartFormat.blockHeaderSize else {
            throw .corruption("block of \(what) in part \(name) at offset \(ref.offset) is \(ref.length) bytes")
        }
        let bytes = try file.read(at: ref.offset, count: ref.length)
        guard bytes.count == ref.length else {
            throw .corruption("part \(name) is truncated: \(what) block at offset \(ref.offset) needs \(ref.length) bytes")
        }
        return bytes
    }

    /// Checks and decompresses a block read whole (header included) from `offset` of file `name`;
    /// with `checksumChecked` (`checkBlock` passed on these bytes already) the checksum is not
    /// computed again.
    static func decodeBlock(_ bytes: [UInt8], offset: Int, what: String, name: String, checksumChecked: Bool = false)
        throws(TallyError) -> (ColumnEncoding, [UInt8])
    {
        let ref = BlockRef(offset: offset, length: bytes.count)
        return try bytes.withBytes { (b) throws(TallyError) -> (ColumnEncoding, [UInt8]) in
            let (codec, encoding, rawLength, body) = try checkBlock(b, offset: offset, what: what, name: name,
                                                                  verifyChecksum: !checksumChecked)
            var raw: [UInt8] = []
            do {
                try Codec.decompress(body, codec: codec, rawLength: rawLength, into: &raw)
            } catch {
                throw .corruption("part \(name) \(what) block at offset \(ref.offset): \(error)")
            }
            return (encoding, raw)
        }
    }

    /// Checks a whole block's header and (unless `verifyChecksum` is false) checksum: its codec,
    /// encoding, raw length and stored bytes.
    static func checkBlock(_ b: UnsafeRawBufferPointer, offset: Int, what: String, name: String, verifyChecksum: Bool = true)
        throws(TallyError) -> (Codec, ColumnEncoding, rawLength: Int, body: UnsafeRawBufferPointer)
    {
        guard b.count >= PartFormat.blockHeaderSize else {
            throw .corruption("part \(name) \(what) block at offset \(offset) is shorter than a block header")
        }
        let stored = Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 8, as: UInt32.self)))
        let rawLength = Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
        let crc = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        let body = UnsafeRawBufferPointer(rebasing: b[PartFormat.blockHeaderSize...])
        var actual = crc
        if verifyChecksum {
            actual = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<12]))
            actual = CRC32C.checksum(body, continuing: actual)
        }
        guard actual == crc, stored == body.count else {
            throw .corruption("checksum mismatch in part \(name) \(what) block at offset \(offset)")
        }
        guard let codec = Codec(rawValue: b[0]), let encoding = ColumnEncoding(rawValue: b[1]) else {
            throw .corruption("unknown codec \(b[0]) or encoding \(b[1]) in part \(name) \(what) block at offset \(offset)")
        }
        return (codec, encoding, rawLength, body)
    }

    func dictionary(_ column: EventColumn) throws(TallyError) -> StringColumn {
        try Self.readDictionary(column, footer: footer, file: file, name: name)
    }

    static func readDictionary(_ column: EventColumn, footer: PartFooter, file: any StoredFile, name: String)
        throws(TallyError) -> StringColumn
    {
        guard let meta = footer.column(column), !meta.dictionary.isNone else {
            throw .corruption("part \(name) has no dictionary for \(column.name)")
        }
        let (_, raw) = try readBlock(meta.dictionary, what: "\(column.name) dictionary", file: file, name: name)
        do {
            let d = try raw.withUnsafeBytes { try GranuleCodec.decodeDictionary($0) }
            guard d.count == meta.dictionarySize else {
                throw GranuleCodec.Malformed(message: "\(d.count) values, footer says \(meta.dictionarySize)")
            }
            return d
        } catch {
            throw .corruption("malformed \(column.name) dictionary in part \(name) at offset \(meta.dictionary.offset): \(error)")
        }
    }

    /// Decodes granule `g` of `column`, appending its values to `batch`'s column.
    /// `dictionaries` caches dictionaries read for this part.
    func read(_ column: EventColumn, granule g: Int, into batch: inout EventBatch,
              dictionaries: inout [EventColumn: StringColumn], selected: [Int32]? = nil) throws(TallyError) {
        // Int64 columns are read whole (`readBatch(_:granule:rows:dictionaries:)` picks the rows).
        precondition(selected == nil || column.kind != .int64, "rows are picked from int64 columns after reading")
        guard let meta = footer.column(column) else { throw .corruption("part \(name) has no column \(column.name)") }
        let ref = meta.granules[g]
        let rows = footer.granules[g].rows
        let (encoding, raw) = try readBlock(ref, what: "\(column.name) granule \(g)")
        do {
            try raw.withUnsafeBytes { (b) throws in
                let occurred = encoding.needsOccurredAt ? try readInt64s(.occurredAt, granule: g) : nil
                if column.kind == .int64 {
                    try GranuleCodec.decodeInt64(b, encoding: encoding, rows: rows, occurred: occurred,
                                                 into: &batch[int: column])
                } else {
                    var dict: StringColumn?
                    if !meta.dictionary.isNone {
                        if let d = dictionaries[column] { dict = d } else {
                            let d = column == .siteID ? sites : (column == .eventType ? eventTypes : try dictionary(column))
                            dictionaries[column] = d
                            dict = d
                        }
                    }
                    try GranuleCodec.decodeStrings(b, encoding: encoding, rows: rows, dictionary: dict, occurred: occurred,
                                                   selected: selected, into: &batch[string: column])
                }
            }
        } catch let e as TallyError {
            throw e
        } catch {
            throw .corruption("malformed \(column.name) granule \(g) in part \(name) at offset \(ref.offset): \(error)")
        }
    }

    /// The values of an int64 column in granule `g`.
    func readInt64s(_ column: EventColumn, granule g: Int) throws(TallyError) -> [Int64] {
        var b = EventBatch(columns: [column])
        var none: [EventColumn: StringColumn] = [:]
        try read(column, granule: g, into: &b, dictionaries: &none)
        return b[int: column].values
    }

    /// The dictionary codes of a dictionary-encoded column in granule `g` (null rows: 0).
    func readCodes(_ column: EventColumn, granule g: Int) throws(TallyError) -> [UInt32] {
        guard let codes = try dictionaryCodes(column, granule: g, nullCode: nil) else {
            throw .corruption("part \(name) has no dictionary codes for \(column.name) in granule \(g)")
        }
        return codes
    }

    /// The bloom filter of `column` (one of `PartFormat.bloomColumns`) for granule `g`.
    func bloom(_ column: EventColumn, granule g: Int) throws(TallyError) -> SplitBlockBloomFilter? {
        guard let k = PartFormat.bloomColumns.firstIndex(of: column), k < footer.granules[g].blooms.count else { return nil }
        let ref = footer.granules[g].blooms[k]
        let (_, raw) = try readBlock(ref, what: "\(column.name) bloom filter of granule \(g)")
        do {
            return try raw.withUnsafeBytes { try SplitBlockBloomFilter(serialized: $0) }
        } catch {
            throw .corruption("malformed \(column.name) bloom filter in part \(name) at offset \(ref.offset): \(error)")
        }
    }

    /// The code of `value` in one of the part's key dictionaries, or where it would be inserted.
    static func lookup(_ value: String, in dict: StringColumn) -> (code: UInt32, found: Bool) {
        var v = value
        return v.withUTF8 { u in
            let key = UnsafeRawBufferPointer(u)
            var lo = 0
            var hi = dict.count
            while lo < hi {
                let mid = (lo + hi) / 2
                let c = dict.withValue(mid) { ByteOrder.compare($0, key) }
                if c == 0 { return (UInt32(mid), true) }
                if c < 0 { lo = mid + 1 } else { hi = mid }
            }
            return (UInt32(lo), false)
        }
    }

    deinit { file.close() }
}
