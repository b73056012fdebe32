import Engine

/// Part files rewritten as older builds or damage would leave them (FORMAT.md, "Part file").
public enum PartFileBytes {
    /// `part` with its footer replaced by `edit` of it: the trailer (footer offset and length,
    /// CRC32C of the footer, end magic) written to match, so the checksum still holds.
    public static func rewritingFooter(_ part: [UInt8], _ edit: (inout [UInt8]) -> Void) -> [UInt8] {
        func le(_ bytes: ArraySlice<UInt8>) -> Int { bytes.enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) } }
        let trailer = part.count - 24
        let footerOffset = le(part[trailer..<trailer + 8]), footerLength = le(part[trailer + 8..<trailer + 12])
        var footer = Array(part[footerOffset..<footerOffset + footerLength])
        edit(&footer)
        var out = Array(part[0..<footerOffset]) + footer
        func append(_ v: UInt64, _ n: Int) { for k in 0..<n { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(k)))) } }
        append(UInt64(footerOffset), 8)
        append(UInt64(footer.count), 4)
        append(UInt64(CRC32C.checksum(footer)), 4)
        return out + Array(part[(trailer + 16)...])
    }
}
