@_spi(Testing) import Engine
import Foundation
import Testing

@Suite("HyperLogLog")
struct HyperLogLogTests {
    /// Distinct values "v<seed>-<i>" hashed as the engine hashes visitor ids.
    static func sketch(_ n: Int, seed: Int = 0, offset: Int = 0) -> HyperLogLog {
        var h = HyperLogLog()
        for i in offset..<(offset + n) { h.add("v\(seed)-\(i)") }
        return h
    }

    /// Kind 2 (a byte per register, as older builds wrote dense sketches) of the kind-4 `bytes`:
    /// base + nibble, or the listed value; and how many bytes of `bytes` were read.
    static func kind2(of bytes: [UInt8]) -> (bytes: [UInt8], used: Int) {
        let base = bytes[2]
        var registers: [UInt8] = []
        for i in 0..<8192 { registers += [base + bytes[3 + i] & 15, base + bytes[3 + i] >> 4] }
        // Exceptions: varint count, then (varint index delta, u8 value) pairs.
        var at = 3 + 8192
        func varint() -> Int {
            var v = 0, shift = 0
            while true {
                let b = bytes[at]
                at += 1
                v |= Int(b & 0x7F) << shift
                if b < 0x80 { return v }
                shift += 7
            }
        }
        var index = 0
        for _ in 0..<varint() {
            index += varint()
            registers[index] = bytes[at]
            at += 1
        }
        return ([2, 14] + registers, at)
    }

    @Test("relative error stays within 3 standard errors from 1 to 10^7 distinct values",
          arguments: [1, 2, 10, 100, 1000, 3000, 5000, 10_000, 50_000, 100_000, 1_000_000, 10_000_000])
    func accuracy(n: Int) {
        let h = Self.sketch(n, seed: n)
        let error = abs(h.estimate() - Double(n)) / Double(n)
        #expect(error <= 3 * h.standardError, "n=\(n) estimate=\(h.estimate())")
        if n <= 100 {
            // Sparse: linear counting over 2^17 buckets is exact here up to rounding…
            #expect(h.count == n)
        } else if n <= 3000 {
            // …and within a few tenths of a percent up to a few thousand.
            #expect(error <= 0.005, "n=\(n) estimate=\(h.estimate())")
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
            if n == 100_000 { #expect(bytes[0] == 4 && bytes.count <= 3 + 8192 + 64) }
        }
    }

    @Test("sparse sketches serialize Rice-coded (kind 3) in a few bytes per entry; kind 1 (varint deltas) still reads")
    func sparseKinds() throws {
        for n in [1, 3, 30, 300, 3000] {
            let bytes = Self.sketch(n, seed: 7).serialized()
            #expect(bytes[0] == 3)
            // ~log2(2^17 / n) + 2 bits per entry, plus a 3–4 byte header.
            let bound = Double(n) * (log2(131_072 / Double(n)) + 3) / 8 + 5
            #expect(Double(bytes.count) <= bound, "n=\(n): \(bytes.count) bytes")
        }
        // Kind 1: entries index25 << 6 | rank25 (p' = 25) as varint deltas, read as p' = 17. Index 8 (low bits set: the
        // rank does not count and is cleared) and index 4096 (low bits zero: rank 3 kept).
        var legacy: [UInt8] = [1, 14, 2]
        var w = ByteWriter()
        w.varint(UInt64(8 << 6 | 5))
        w.varint(UInt64((4096 << 6 | 3) - (8 << 6 | 5)))
        legacy += w.bytes
        let old = try legacy.withUnsafeBytes { try HyperLogLog(serialized: $0) }
        #expect(old.count == 2)
        let again = try old.serialized().withUnsafeBytes { try HyperLogLog(serialized: $0) }
        #expect(again == old)
        var dense = old
        dense.merge(Self.sketch(20_000))
        var reference = Self.sketch(20_000)
        reference.merge(again)
        #expect(dense == reference)
    }

    @Test("dense sketches serialize as 4-bit differences (kind 4); kind 2 (a byte per register) still reads")
    func denseKinds() throws {
        for n in [5000, 100_000, 3_000_000] {
            let h = Self.sketch(n, seed: 3)
            let bytes = h.serialized()
            #expect(bytes[0] == 4 && bytes[1] == 14)
            let (kind2, used) = Self.kind2(of: bytes)
            #expect(used == bytes.count)
            let old = try kind2.withUnsafeBytes { try HyperLogLog(serialized: $0) }
            #expect(old == h)
            #expect(old.serialized() == bytes)
        }
    }

    @Test("a sparse sketch read back is the sketch written, and any changed byte is refused or read as what it encodes")
    func sparseDecodingIsExact() throws {
        for n in [1, 2, 7, 64, 500, 1000, 2500, 4096] {
            let h = Self.sketch(n, seed: n)
            let bytes = h.serialized()
            #expect(bytes[0] == 3)
            #expect(try bytes.withUnsafeBytes { try HyperLogLog(serialized: $0) } == h, "n=\(n)")
            // The kind-3 form is canonical: bytes that decode at all re-serialize to themselves
            // (no byte is read wrongly or skipped), in the middle of the bits and at their end.
            let header = n < 128 ? 3 : 4
            for at in Set([header, header + 1, bytes.count / 2, bytes.count - 9, bytes.count - 2, bytes.count - 1])
            where at >= header && at < bytes.count {
                for mask: UInt8 in [0x01, 0x10, 0x80, 0xFF] {
                    var changed = bytes
                    changed[at] ^= mask
                    if let read = try? changed.withUnsafeBytes({ try HyperLogLog(serialized: $0) }) {
                        #expect(read.serialized() == changed, "n=\(n), byte \(at) ^ \(mask)")
                    }
                }
            }
        }
    }

    @Test("a query's union of serialized sketches (kinds 1–4, sparse, dense, turning dense midway) equals merging them one by one")
    func unionEqualsMerges() throws {
        let legacy1: [UInt8] = {
            var w = ByteWriter()
            w.varint(UInt64(8 << 6 | 5))
            w.varint(UInt64((4096 << 6 | 3) - (8 << 6 | 5)))
            return [1, 14, 2] + w.bytes
        }()
        let sets: [[HyperLogLog]] = [
            [],
            [Self.sketch(10)],
            (0..<12).map { Self.sketch(400, seed: $0) },  // 4,800 distinct: turns dense midway
            (0..<11).map { Self.sketch(400, seed: 20 + $0) },  // ~4,330 entries: just past the 4,096 limit
            (0..<5).map { Self.sketch(300, seed: 1, offset: $0 * 100) },  // overlapping, stays sparse
            [Self.sketch(50), Self.sketch(20_000, seed: 2), Self.sketch(70, seed: 3)],  // a dense one amid sparse ones
            [Self.sketch(30_000, seed: 4), Self.sketch(5_000, seed: 5)],
        ]
        for (n, sketches) in sets.enumerated() {
            var reference = HyperLogLog()
            var serialized: [[UInt8]] = []
            for (i, h) in sketches.enumerated() {
                reference.merge(h)
                let bytes = h.serialized()
                serialized.append(i % 2 == 1 && bytes[0] == 4 ? Self.kind2(of: bytes).bytes : bytes)
            }
            if n == 2 {
                serialized.append(legacy1)
                reference.merge(try legacy1.withUnsafeBytes { try HyperLogLog(serialized: $0) })
            }
            let union = try HyperLogLog.unionForTesting(serialized)
            #expect(union == reference, "set \(n)")
            #expect(union.count == reference.count, "set \(n)")
            #expect(union.serialized() == reference.serialized(), "set \(n)")
        }
        // Told to expect many entries (registers raised beside the slots from the start), one
        // union reused: the same unions, dense or sparse as before — also when the inputs'
        // entries add up past the limit but overlap so much that the union stays sparse.
        let overlapping = (0..<20).map { Self.sketch(300, seed: 1, offset: $0 * 10) }
        var told: [(sketches: [[UInt8]], expecting: Int?)] = []
        var references: [HyperLogLog] = []
        for sketches in sets + [overlapping] {
            var reference = HyperLogLog()
            for h in sketches { reference.merge(h) }
            references.append(reference)
            told.append((sketches.map { $0.serialized() }, 1 << 20))
            references.append(reference)
            told.append((sketches.map { $0.serialized() }, nil))
        }
        let unions = try HyperLogLog.unionsForTesting(told)
        #expect(unions.last!.serialized().first == 3)  // the overlapping set's union stays sparse (kind 3)
        for (i, (union, reference)) in zip(unions, references).enumerated() {
            #expect(union == reference, "set \(i)")
            #expect(union.serialized() == reference.serialized(), "set \(i)")
        }
        // A sketch of another precision is refused, not merged.
        var p12 = HyperLogLog(precision: 12)
        p12.add("a")
        #expect(throws: TallyError.self) { try HyperLogLog.unionForTesting([Self.sketch(5).serialized(), p12.serialized()]) }
    }

    @Test("sparse entries sort as the standard library sorts them, duplicates and sizes around the radix threshold included")
    func entrySort() {
        var rng = SystemRandomNumberGenerator()
        for n in [0, 1, 2, 47, 48, 49, 50, 200, 513, 4096] {
            for range: UInt32 in [4, 1 << 10, 1 << 23] {
                let entries = (0..<n).map { _ in UInt32.random(in: 0..<range, using: &rng) }
                #expect(HyperLogLog.sortEntriesForTesting(entries) == entries.sorted(), "n=\(n) range=\(range)")
            }
        }
    }

    @Test("corrupt sketches are refused with a message")
    func corrupt() {
        let cases: [[UInt8]] = [[], [1], [9, 14], [1, 30, 0], [2, 14, 1, 2, 3], [1, 14, 2, 5, 0], [1, 14, 1, 5, 7],
                                [3, 14, 1], [3, 14, 1, 30, 0], [3, 14, 1, 0], [3, 14, 1, 24, 0xFF, 0xFF, 0xFF, 0xFF],
                                [3, 14, 1, 0, 0x00, 0x00, 0x00, 0x00], [3, 14, 2, 24, 0x02],
                                [4, 14, 0], [4, 14, 60] + [UInt8](repeating: 0, count: 8193),
                                [4, 14, 0] + [UInt8](repeating: 0xFF, count: 8192) + [0],
                                [4, 14, 0] + [UInt8](repeating: 0, count: 8192) + [1, 5, 20]]
        // Kind 1 entries past index25 < 2^25 or rank25 ≤ 40, a delta that would overflow, sparse
        // kinds above the sparse precision 17.
        let outOfRange: [[UInt8]] = [[1, 14, 1, 0x80, 0x80, 0x80, 0x80, 0x08], [1, 14, 1, 41],
                                     [1, 14, 2, 1] + [UInt8](repeating: 0xFF, count: 9) + [0x01],
                                     [1, 18, 1, 0], [3, 18, 1, 0]]
        for bytes in cases + outOfRange {
            #expect(throws: TallyError.self, "\(bytes)") { try bytes.withUnsafeBytes { try HyperLogLog(serialized: $0) } }
            // A query's union refuses them too (when its precision is the sketch's, else for that).
            #expect(throws: TallyError.self, "\(bytes)") { try HyperLogLog.unionForTesting([bytes]) }
        }
    }
}
