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
