import Engine
import Testing

/// Pins the engine's persisted hashes. Bloom filters, dedupe keys and sketches on disk store
/// values derived from them: if one of these tests breaks, every stored file reads wrongly.
///
/// The XXH3 values were not taken from `TallyHash`: each was computed with two independent
/// tools and both agreed: the `xxhsum -H3` CLI (Debian xxhash 0.8.1) and python-xxhash
/// (bundling xxHash 0.8.4). The CRC-32C values are the published RFC 3720 (iSCSI) §B.4 test
/// vectors and the standard "123456789" check value.
@Suite("Persisted hashes")
struct HashTests {
    @Test("XXH3-64 of known strings matches the reference implementation", arguments: [
        ("", 0x2D06_8005_38D3_94C2 as UInt64),  // XXH3's documented empty-input value
        ("a", 0xE6C6_32B6_1E96_4E1F),
        ("hello world", 0xD447_B1EA_40E6_988B),
        ("0190a5b2-7c3d-4e8f-9a1b-2c3d4e5f6a7b", 0xCB12_72E5_9228_D586),  // a 36-byte UUID id
    ])
    func xxh3Golden(text: String, expected: UInt64) {
        #expect(TallyHash.hash(text) == expected)
        #expect(TallyHash.hash(Array(text.utf8)) == expected)
        #expect(Array(text.utf8).withUnsafeBytes { TallyHash.hash($0) } == expected)
    }

    @Test("XXH3-64 of inputs longer than 240 bytes matches the reference implementation")
    func xxh3LongInput() {
        // 1,024 bytes 0x00...0xFF repeated: XXH3 switches to its striped loop above 240 bytes.
        let bytes = (0..<1024).map { UInt8(truncatingIfNeeded: $0) }
        #expect(TallyHash.hash(bytes) == 0xA870_F929_8439_8D22)
    }

    @Test("seeded XXH3-64 matches the reference implementation")
    func xxh3Seeded() {
        // python-xxhash: xxh3_64_intdigest(b"hello world", seed=42).
        let v = Array("hello world".utf8).withUnsafeBytes { TallyHash.hash($0, seed: 42) }
        #expect(v == 0x972A_5725_E93D_338E)
        // Seed 0 is the unseeded hash.
        let zero = Array("hello world".utf8).withUnsafeBytes { TallyHash.hash($0, seed: 0) }
        #expect(zero == TallyHash.hash("hello world"))
    }

    @Test("CRC-32C of the standard check string is 0xE3069283")
    func crc32cCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test("CRC-32C matches the RFC 3720 test vectors")
    func crc32cRFC3720() {
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum([UInt8]()) == 0)
    }

    @Test("CRC-32C continued over pieces equals the one-shot checksum")
    func crc32cIncremental() {
        // Lengths past 8 bytes exercise the word-at-a-time loop and the byte tail.
        let bytes = (0..<1_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let whole = CRC32C.checksum(bytes)
        bytes.withUnsafeBytes { all in
            for split in [0, 1, 7, 8, 9, 100, 999, 1_000] {
                let first = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: all[..<split]))
                let both = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: all[split...]), continuing: first)
                #expect(both == whole, "split at \(split)")
            }
            // Three pieces, including the check string split mid-way.
            var crc: UInt32 = 0
            for range in [0..<3, 3..<500, 500..<1_000] {
                crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: all[range]), continuing: crc)
            }
            #expect(crc == whole)
        }
        let check = Array("123456789".utf8)
        let part = CRC32C.checksum(Array(check[..<4]))
        #expect(check[4...].withUnsafeBytes { CRC32C.checksum($0, continuing: part) } == 0xE306_9283)
    }
}
