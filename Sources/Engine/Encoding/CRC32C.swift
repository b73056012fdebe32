import CTallyCRC

/// CRC-32C (Castagnoli), the checksum of WAL records, part blocks and footers.
public enum CRC32C {
    @inlinable public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        tally_crc32c(crc, bytes.baseAddress, bytes.count)
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }

    public static func checksum<S: Sequence>(_ bytes: S) -> UInt32 where S.Element == UInt8 {
        checksum(Array(bytes))
    }
}
