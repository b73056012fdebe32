import CXXHash

/// The engine's one persisted hash: XXH3-64 with seed 0 (libxxhash), over the raw bytes.
///
/// Bloom filters, dedupe keys and sketches store values derived from it, so it must never
/// change; `HashTests` pins golden values. Swift's `Hasher` is per-process seeded and is
/// never used for anything persisted.
public enum TallyHash {
    @inlinable public static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        XXH3_64bits(bytes.baseAddress, bytes.count)
    }

    public static func hash(_ string: String) -> UInt64 {
        var s = string
        return s.withUTF8 { hash(UnsafeRawBufferPointer($0)) }
    }

    public static func hash(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { hash($0) }
    }

    /// XXH3-64 of `bytes` with `seed` (used to combine a site with an event id).
    @inlinable public static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        XXH3_64bits_withSeed(bytes.baseAddress, bytes.count, seed)
    }
}
