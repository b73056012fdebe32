import Engine
import Testing

/// A deterministic 64-bit generator (SplitMix64) so every run probes the same keys.
private struct SeededHashes: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Split-block Bloom filter")
struct BloomFilterTests {
    /// Large enough that a 2% false-positive ceiling and 0.3% floor are many standard
    /// deviations from the expected ~1.2%, so the bounds never flake.
    static let keyCount = 100_000

    private func keyHash(_ prefix: String, _ i: Int) -> UInt64 {
        TallyHash.hash("\(prefix)-\(i)")
    }

    @Test("a filter never forgets a key it was given")
    func noFalseNegatives() {
        var filter = SplitBlockBloomFilter(distinctKeys: Self.keyCount)
        let hashes = (0..<Self.keyCount).map { keyHash("visitor", $0) }
        for h in hashes { filter.insert(hash: h) }
        let missed = hashes.filter { !filter.mayContain(hash: $0) }.count
        #expect(missed == 0)
    }

    @Test("at 10 bits per key about 1% of absent keys are reported present, as estimated")
    func falsePositiveRateAtTenBitsPerKey() {
        var filter = SplitBlockBloomFilter(distinctKeys: Self.keyCount, bitsPerKey: 10)
        for i in 0..<Self.keyCount { filter.insert(hash: keyHash("visitor", i)) }
        // 1M absent keys: the measured rate's standard error is about 0.01 percentage points.
        let probes = 1_000_000
        var rng = SeededHashes(state: 42)
        var positives = 0
        for _ in 0..<probes where filter.mayContain(hash: rng.next()) { positives += 1 }
        let measured = Double(positives) / Double(probes)
        #expect(measured >= 0.003 && measured <= 0.02, "measured \(measured)")
        let estimated = filter.estimatedFalsePositiveRate(distinctKeys: Self.keyCount)
        #expect(abs(measured - estimated) < 0.2 * estimated, "measured \(measured), estimated \(estimated)")
    }

    @Test("the estimate reproduces the Parquet spec's worked example")
    func estimateMatchesParquetSpec() {
        // BloomFilter.md: 1,024 blocks and 26,214 keys (10 bits/key) give ~1.26%; twice the
        // keys ~18%; half the keys ~0.04%.
        let filter = SplitBlockBloomFilter(numBlocks: 1024)
        #expect(abs(filter.estimatedFalsePositiveRate(distinctKeys: 26_214) - 0.0126) < 0.0002)
        #expect(abs(filter.estimatedFalsePositiveRate(distinctKeys: 52_428) - 0.179) < 0.002)
        #expect(abs(filter.estimatedFalsePositiveRate(distinctKeys: 13_107) - 0.00042) < 0.00002)
        #expect(filter.estimatedFalsePositiveRate(distinctKeys: 0) == 0)
        #expect(filter.estimatedFalsePositiveRate(distinctKeys: 100_000_000) == 1)
    }

    @Test("the filter has max(1, ceil(keys × bits per key / 256)) blocks")
    func sizing() {
        #expect(SplitBlockBloomFilter(distinctKeys: 0).numBlocks == 1)
        #expect(SplitBlockBloomFilter(distinctKeys: 1).numBlocks == 1)
        #expect(SplitBlockBloomFilter(distinctKeys: 25).numBlocks == 1)  // 250 bits
        #expect(SplitBlockBloomFilter(distinctKeys: 26).numBlocks == 2)  // 260 bits
        // The anchors' derived example: 2,000 distinct visitors at 10.5 bits → 83 blocks.
        #expect(SplitBlockBloomFilter(distinctKeys: 2_000, bitsPerKey: 10.5).numBlocks == 83)
        #expect(SplitBlockBloomFilter(distinctKeys: 2_000).serialized.count == 79 * 32)
        #expect(SplitBlockBloomFilter(distinctKeys: Int.max).numBlocks == SplitBlockBloomFilter.maxBlocks)
    }

    /// If this test breaks, the storage format changed: every stored filter would answer
    /// wrongly. Bytes computed independently from the Parquet spec in Python (python-xxhash
    /// 0.8.4 for XXH3-64), not from this implementation.
    @Test("a one-block filter of \"a\", \"b\", \"c\" serializes to pinned bytes")
    func goldenBytes() {
        var filter = SplitBlockBloomFilter(distinctKeys: 3)
        #expect(filter.numBlocks == 1)
        for key in ["a", "b", "c"] { filter.insert(hash: TallyHash.hash(key)) }
        let golden: [UInt8] = [
            0x00, 0x00, 0x30, 0x80, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x18, 0x00, 0x40, 0x40, 0x10,
            0x00, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x42, 0x80, 0x00, 0x10, 0x02, 0x10, 0x01, 0x11, 0x00, 0x00,
        ]
        #expect(filter.serialized == golden)
        #expect(filter.words == [0x8030_0000, 0x0801_0000, 0x1800_0002, 0x1040_4000, 0x0000_c000, 0x8042_0000, 0x1002_1000, 0x0000_1101])
    }

    @Test("the block is chosen by the high 32 bits of the hash with multiply-shift")
    func blockSelection() {
        var filter = SplitBlockBloomFilter(numBlocks: 4)
        // High half 0xFFFFFFFF: ((2^32 - 1) * 4) >> 32 = 3, the last block.
        filter.insert(hash: 0xFFFF_FFFF_1234_5678)
        // High half 0x40000000: (2^30 * 4) >> 32 = 1.
        filter.insert(hash: 0x4000_0000_1234_5678)
        let words = filter.words
        for block in 0..<4 {
            let set = words[block * 8..<block * 8 + 8].map(\.nonzeroBitCount)
            // Each inserted key sets exactly one bit in every word of its block.
            #expect(set == Array(repeating: block == 1 || block == 3 ? 1 : 0, count: 8), "block \(block)")
        }
        // Same low half, so both blocks carry the same 8-bit mask: bit (x * salt[i]) >> 27.
        let x: UInt32 = 0x1234_5678
        let mask = SplitBlockBloomFilter.salts.map { UInt32(1) << ((x &* $0) >> 27) }
        #expect(Array(words[8..<16]) == mask)
        #expect(Array(words[24..<32]) == mask)
    }

    @Test("a filter read back from its bytes answers exactly as the original")
    func roundTrip() throws {
        var filter = SplitBlockBloomFilter(distinctKeys: 5_000)
        var rng = SeededHashes(state: 7)
        for _ in 0..<5_000 { filter.insert(hash: rng.next()) }
        let bytes = filter.serialized
        #expect(bytes.count == filter.numBlocks * 32)
        let back = try bytes.withUnsafeBytes { try SplitBlockBloomFilter(serialized: $0) }
        #expect(back == filter)
        #expect(back.numBlocks == filter.numBlocks)
        #expect(back.serialized == bytes)
        var probe = SeededHashes(state: 8)
        for _ in 0..<10_000 {
            let h = probe.next()
            #expect(back.mayContain(hash: h) == filter.mayContain(hash: h))
        }
    }

    @Test("bytes that are not a positive multiple of 32 are rejected")
    func invalidLengths() {
        for n in [0, 1, 31, 33, 63, 100] {
            let bytes = [UInt8](repeating: 0, count: n)
            #expect(throws: SplitBlockBloomFilter.InvalidLength.self) {
                try bytes.withUnsafeBytes { try SplitBlockBloomFilter(serialized: $0) }
            }
        }
    }

    @Test("the union of two filters contains the keys of both")
    func union() {
        var a = SplitBlockBloomFilter(numBlocks: 16)
        var b = SplitBlockBloomFilter(numBlocks: 16)
        let left = (0..<500).map { keyHash("left", $0) }
        let right = (0..<500).map { keyHash("right", $0) }
        for h in left { a.insert(hash: h) }
        for h in right { b.insert(hash: h) }
        a.formUnion(b)
        #expect((left + right).allSatisfy { a.mayContain(hash: $0) })
    }
}
