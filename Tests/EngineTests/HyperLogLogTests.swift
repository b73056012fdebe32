import Engine
import Testing

@Suite("HyperLogLog")
struct HyperLogLogTests {
    /// Distinct values "v<seed>-<i>" hashed as the engine hashes visitor ids.
    static func sketch(_ n: Int, seed: Int = 0, offset: Int = 0) -> HyperLogLog {
        var h = HyperLogLog()
        for i in offset..<(offset + n) { h.add("v\(seed)-\(i)") }
        return h
    }

    @Test("relative error stays within 3 standard errors from 1 to 10^7 distinct values",
          arguments: [1, 2, 10, 100, 1000, 3000, 5000, 10_000, 50_000, 100_000, 1_000_000, 10_000_000])
    func accuracy(n: Int) {
        let h = Self.sketch(n, seed: n)
        let error = abs(h.estimate() - Double(n)) / Double(n)
        #expect(error <= 3 * h.standardError, "n=\(n) estimate=\(h.estimate())")
        if n <= 1000 {
            // Sparse: linear counting over 2^25 buckets is exact here up to rounding.
            #expect(h.count == n)
        }
    }

    @Test("adding a value again changes nothing")
    func idempotent() {
        var h = Self.sketch(20_000)
        let before = h.serialized()
        for i in 0..<20_000 { h.add("v0-\(i)") }
        #expect(h.serialized() == before)
    }

    @Test("merging sketches equals sketching the union, sparse, dense and mixed")
    func mergeIsUnion() {
        for (a, b, overlap) in [(100, 200, 50), (100, 30_000, 60), (40_000, 25_000, 10_000), (3000, 3000, 0)] {
            var left = Self.sketch(a)
            let right = Self.sketch(b, offset: a - overlap)
            let union = Self.sketch(a + b - overlap)
            left.merge(right)
            #expect(left == union, "a=\(a) b=\(b)")
            #expect(left.serialized() == union.serialized())
            var other = Self.sketch(b, offset: a - overlap)
            other.merge(Self.sketch(a))
            #expect(other == union)
        }
    }

    @Test("the serialized form round-trips, sparse and dense, and is compact while sparse")
    func serialization() throws {
        for n in [0, 1, 500, 4000, 100_000] {
            let h = Self.sketch(n)
            let bytes = h.serialized()
            let back = try bytes.withUnsafeBytes { try HyperLogLog(serialized: $0) }
            #expect(back == h)
            #expect(back.estimate() == h.estimate())
            if n == 500 { #expect(bytes.count < 500 * 4) }
            if n == 100_000 { #expect(bytes.count == 2 + 16_384) }
        }
    }

    @Test("corrupt sketches are refused with a message")
    func corrupt() {
        let cases: [[UInt8]] = [[], [1], [9, 14], [1, 30, 0], [2, 14, 1, 2, 3], [1, 14, 2, 5, 0], [1, 14, 1, 5, 7]]
        for bytes in cases {
            #expect(throws: TallyError.self, "\(bytes)") { try bytes.withUnsafeBytes { try HyperLogLog(serialized: $0) } }
        }
    }
}
