/// How a granule's values are laid out before compression. The raw value is the encoding
/// id byte in each block header: ids are never reused (FORMAT.md, "Column encodings").
public enum ColumnEncoding: UInt8, Sendable, CustomStringConvertible {
    /// n little-endian Int64.
    case int64Plain = 1
    /// The first value as Int64, then n-1 wrapping differences as Int64 (timestamps).
    case int64Delta = 2
    /// n LEB128 lengths, then the n values' bytes back to back.
    case stringPlain = 3
    /// A width byte (1, 2 or 4), then n codes into the part's dictionary for the column.
    case dictionaryCodes = 4
    /// An `IdentifierForm` byte, then n 16-byte binary identifiers.
    case identifierBinary = 5
    /// A part-level dictionary: LEB128 count, then count × (LEB128 length, bytes), sorted.
    case dictionary = 6
    /// n × Int64 `v[i] − occurred_at[i]` (received_at: a few ms to seconds after the event).
    case int64FromOccurred = 7
    /// ULIDs split in two: n × Int64 `timestamp(v[i]) − occurred_at[i]` (0 when the client made
    /// the id when the event occurred), then n × the 10 random bytes (event_id).
    case ulidFromOccurred = 8
    /// The whole payload of a rollup part (FORMAT.md, "Rollup part file").
    case rollupRows = 9
    /// One block of a part's session summaries (FORMAT.md, "Session summaries").
    case sessionSummaries = 10

    /// Encodings whose decoding needs the granule's occurred_at values.
    var needsOccurredAt: Bool { self == .int64FromOccurred || self == .ulidFromOccurred }

    public var description: String {
        switch self {
        case .int64Plain: "int64-plain"
        case .int64Delta: "int64-delta"
        case .stringPlain: "string-plain"
        case .dictionaryCodes: "dictionary-codes"
        case .identifierBinary: "identifier-binary"
        case .dictionary: "dictionary"
        case .int64FromOccurred: "int64-from-occurred"
        case .ulidFromOccurred: "ulid-from-occurred"
        case .rollupRows: "rollup-rows"
        case .sessionSummaries: "session-summaries"
        }
    }
}
