/// Every file name, magic number and format version of a part, in one place (FORMAT.md).
public enum PartFormat {
    /// "TLYPART1" at offset 0 of every part file.
    static let magic: [UInt8] = Array("TLYPART1".utf8)
    /// "TLYPEND1" as the last 8 bytes of every part file.
    static let endMagic: [UInt8] = Array("TLYPEND1".utf8)
    /// Bumped on any change of the bytes of a part; readers refuse other versions with a clear error.
    /// Version 2 added the merge sources list to the footer; version 1 parts (no list) still open.
    public static let version: UInt32 = 2
    public static let readableVersions: ClosedRange<UInt32> = 1...2
    /// magic (8) + version (4) + reserved (4).
    static let headerSize = 16
    /// footer offset (8) + footer length (4) + footer CRC32C (4) + end magic (8).
    static let trailerSize = 24
    /// codec (1) + encoding (1) + reserved (2) + raw length (4) + stored length (4) + CRC32C (4).
    static let blockHeaderSize = 16
    /// Rows per granule: ClickHouse's index_granularity default. Small enough that pruning
    /// by time and site skips most of a part, large enough that a block compresses well.
    public static let defaultGranuleRows = 8192
    /// Columns with a bloom filter per granule, in this order.
    public static let bloomColumns: [EventColumn] = [.eventID, .sessionID, .visitorID]
    /// Bits per distinct key: ~1% false positives for a split-block bloom filter (Parquet's figure).
    static let bloomBitsPerKey = 10.0
    static let fileExtension = ".part"
    static let temporarySuffix = ".tmp"

    /// "202607_00000012_0.part": partition, part number (unique in the store), level.
    static func fileName(partition: Partition, number: Int, level: Int) -> String {
        let n = String(number)
        return "\(partition.yyyymm)_\(String(repeating: "0", count: max(0, 8 - n.count)))\(n)_\(level)\(fileExtension)"
    }

    static func parseFileName(_ name: String) -> (partition: Partition, number: Int, level: Int)? {
        guard name.hasSuffix(fileExtension) else { return nil }
        let parts = name.dropLast(fileExtension.count).split(separator: "_")
        guard parts.count == 3, let p = Int(parts[0]).flatMap(Partition.init(yyyymm:)), let n = Int(parts[1]),
              let l = Int(parts[2]) else { return nil }
        return (p, n, l)
    }

    /// The compression codec of each column's blocks. zstd-3 everywhere: bytes on disk are the
    /// target (≤ 48 B/event) and zstd-3 beat lz4 by 1.5–3.4x on every column type measured
    /// (swift-limits.md §3); decompression at 1–1.7 GB/s is not what bounds a scan.
    static func codec(for column: EventColumn) -> Codec { .zstd }

    /// occurred_at is delta-encoded: rows are sorted by visitor and time inside a day.
    /// (received_at and event_id are stored relative to occurred_at instead.)
    static func usesDelta(_ column: EventColumn) -> Bool {
        column == .occurredAt
    }
}

/// The frame part files and session summary files share (FORMAT.md): a 16-byte header (8-byte
/// magic, u32 version, u32 reserved), blocks, a footer, and a 24-byte trailer (u64 footer
/// offset, u32 footer length, u32 CRC32C of the footer, 8-byte end magic).
struct FileFrame {
    /// What the file is called in errors: "part", "session summary file".
    let kind: String
    let magic: [UInt8]
    let endMagic: [UInt8]
    let versions: ClosedRange<UInt32>

    static let part = FileFrame(kind: "part", magic: PartFormat.magic, endMagic: PartFormat.endMagic,
                                versions: PartFormat.readableVersions)

    struct Opened {
        let version: UInt32
        let size: Int
        let footerOffset: Int
        let footer: [UInt8]
        let footerCRC: UInt32
    }

    /// Checks the header, trailer and footer checksum of `file` and returns its footer bytes.
    func open(_ file: any StoredFile, name: String) throws(TallyError) -> Opened {
        let size = try file.size()
        guard size >= PartFormat.headerSize + PartFormat.trailerSize else {
            throw .corruption("\(kind) \(name) is \(size) bytes, shorter than a header and trailer")
        }
        let header = try file.read(at: 0, count: PartFormat.headerSize)
        guard Array(header[0..<8]) == magic else {
            throw .corruption("\(kind) \(name) does not start with the \(kind) magic at offset 0")
        }
        let version = header.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) }
        guard versions.contains(version) else {
            let readable = versions.count == 1 ? "version \(versions.upperBound)" : "versions \(versions.lowerBound)–\(versions.upperBound)"
            throw TallyError(.unsupportedVersion, "\(kind) \(name) has format version \(version); this build reads \(readable)")
        }
        let trailer = try file.read(at: size - PartFormat.trailerSize, count: PartFormat.trailerSize)
        guard Array(trailer[16..<24]) == endMagic else {
            throw .corruption("\(kind) \(name) has no end magic at offset \(size - 8) (truncated or not a \(kind))")
        }
        let (footerOffset, footerLength, footerCRC) = trailer.withUnsafeBytes {
            (Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))),
             Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self))),
             UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 12, as: UInt32.self)))
        }
        guard footerOffset >= PartFormat.headerSize, footerOffset + footerLength == size - PartFormat.trailerSize else {
            throw .corruption("\(kind) \(name) trailer at offset \(size - PartFormat.trailerSize) points outside the file")
        }
        let footer = try file.read(at: footerOffset, count: footerLength)
        guard CRC32C.checksum(footer) == footerCRC else {
            throw .corruption("checksum mismatch in \(kind) \(name) footer at offset \(footerOffset)")
        }
        return Opened(version: version, size: size, footerOffset: footerOffset, footer: footer, footerCRC: footerCRC)
    }

    /// Appends the header of a file of format `version`.
    func appendHeader(version: UInt32, to out: inout ByteWriter) {
        out.raw(magic)
        out.u32(version)
        out.u32(0)
    }

    /// Appends `footer`, which starts at file offset `footerOffset`, and the trailer.
    func appendFooter(_ footer: [UInt8], at footerOffset: Int, to out: inout ByteWriter) {
        out.raw(footer)
        out.u64(UInt64(footerOffset))
        out.u32(UInt32(footer.count))
        out.u32(CRC32C.checksum(footer))
        out.raw(endMagic)
    }
}
