#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Parquet's split-block Bloom filter (SBBF), bit for bit as `parquet-format/BloomFilter.md`
/// specifies it: the skip index over high-cardinality id columns.
///
/// ```swift
/// var filter = SplitBlockBloomFilter(distinctKeys: 2_000)
/// filter.insert(hash: TallyHash.hash("visitor-42"))
/// filter.mayContain(hash: TallyHash.hash("visitor-42"))  // true
/// ```
///
/// The filter is an array of 256-bit blocks, each made of 8 little-endian `UInt32` words.
/// A key's 64-bit hash picks one block with its high 32 bits (multiply-shift, no modulo) and
/// sets exactly one bit in each of the block's 8 words from its low 32 bits, so every insert
/// or lookup touches one 32-byte block (one cache line) and k = 8.
///
/// Parquet hashes keys with XXH64; Tally feeds `TallyHash` (XXH3-64, seed 0) instead, so the
/// block layout is Parquet's but the hash id recorded next to a Tally filter is XXH3-64.
///
/// Format: `serialized` is the words in order, each little-endian (FORMAT.md, "Bloom filter").
/// Complexity: `insert` and `mayContain` are O(1): one block, 8 multiplies, no branches.
public struct SplitBlockBloomFilter: Sendable, Equatable {
    /// Bytes in one block: 8 words of 4 bytes (256 bits), per the Parquet spec.
    public static let bytesPerBlock = 32

    /// Words in one block; each word receives exactly one bit per key.
    public static let wordsPerBlock = 8

    /// The largest filter accepted, in blocks: 128 MiB, parquet-mr's `UPPER_BOUND_BYTES`
    /// (`BlockSplitBloomFilter.java`). It also keeps `numBlocks` below 2^32, which the
    /// multiply-shift block selection requires, and bounds what a corrupt length can allocate.
    public static let maxBlocks = (128 * 1024 * 1024) / bytesPerBlock

    /// The eight odd multipliers of Parquet's SBBF (`BloomFilter.md`, `SALT`). Word `i` of a
    /// block gets bit `(x &* salts[i]) >> 27` for the low 32 bits `x` of the hash. They are
    /// part of the storage format: changing one changes which bits every stored filter means.
    public static let salts: [UInt32] = [
        0x47b6_137b, 0x4497_4d91, 0x8824_ad5b, 0xa2b7_289d,
        0x7054_95c7, 0x2df1_424b, 0x9efc_4947, 0x5c6b_fb31,
    ]

    /// The serialized bytes have a length that is not a positive multiple of 32 or exceed
    /// `maxBlocks`.
    public struct InvalidLength: Error, CustomStringConvertible {
        public let length: Int
        public var description: String {
            "bloom filter: \(length) bytes is not a positive multiple of \(SplitBlockBloomFilter.bytesPerBlock) up to \(SplitBlockBloomFilter.maxBlocks) blocks"
        }
    }

    @usableFromInline var storage: [UInt32]

    /// The blocks' words in order: word `w` of block `b` is `words[b * 8 + w]`.
    public var words: [UInt32] { storage }

    /// The number of 256-bit blocks (at least 1).
    @inlinable public var numBlocks: Int { storage.count &>> 3 }

    /// An empty filter sized for `distinctKeys` keys at `bitsPerKey` bits each:
    /// `max(1, ceil(distinctKeys * bitsPerKey / 256))` blocks, capped at `maxBlocks`.
    ///
    /// - Parameters:
    ///   - distinctKeys: the number of distinct keys that will be inserted (not rows).
    ///   - bitsPerKey: 10 gives about 1.2% false positives (Parquet's table: 10.5 bits for
    ///     1%); DESIGN.md targets ~1% for the id skip indexes.
    public init(distinctKeys: Int, bitsPerKey: Double = 10) {
        precondition(distinctKeys >= 0, "distinctKeys must not be negative")
        precondition(bitsPerKey > 0 && bitsPerKey.isFinite, "bitsPerKey must be positive")
        let bits = (Double(distinctKeys) * bitsPerKey).rounded(.up)
        let blocks = (bits / 256).rounded(.up)
        let n = blocks >= Double(Self.maxBlocks) ? Self.maxBlocks : max(1, Int(blocks))
        self.init(numBlocks: n)
    }

    /// An empty filter of exactly `numBlocks` blocks (1...`maxBlocks`).
    public init(numBlocks: Int) {
        precondition(numBlocks >= 1 && numBlocks <= Self.maxBlocks, "numBlocks out of range")
        storage = [UInt32](repeating: 0, count: numBlocks &* Self.wordsPerBlock)
    }

    /// Reads a filter written by `serialized`.
    ///
    /// - Parameter serialized: the filter's bytes, exactly (no header).
    /// - Throws: `InvalidLength` unless the length is a positive multiple of 32 bytes and at
    ///   most `maxBlocks` blocks.
    public init(serialized: UnsafeRawBufferPointer) throws {
        let n = serialized.count
        guard n > 0, n % Self.bytesPerBlock == 0, n / Self.bytesPerBlock <= Self.maxBlocks else {
            throw InvalidLength(length: n)
        }
        let count = n / 4
        storage = [UInt32](unsafeUninitializedCapacity: count) { buf, initialized in
            let dst = UnsafeMutableRawPointer(buf.baseAddress!)
            dst.copyMemory(from: serialized.baseAddress!, byteCount: n)
            if UInt32(1).littleEndian != 1 {
                for i in 0..<count { buf[i] = UInt32(littleEndian: buf[i]) }
            }
            initialized = count
        }
    }

    /// The filter's bytes: every word, block by block, little-endian. `numBlocks * 32` bytes.
    public var serialized: [UInt8] {
        let n = storage.count &* 4
        return [UInt8](unsafeUninitializedCapacity: n) { buf, initialized in
            storage.withUnsafeBufferPointer { src in
                let dst = UnsafeMutableRawPointer(buf.baseAddress!)
                if UInt32(1).littleEndian == 1 {
                    dst.copyMemory(from: src.baseAddress!, byteCount: n)
                } else {
                    for i in 0..<src.count {
                        dst.storeBytes(of: src[i].littleEndian, toByteOffset: i &* 4, as: UInt32.self)
                    }
                }
            }
            initialized = n
        }
    }

    /// The block a hash belongs to: `((hash >> 32) * numBlocks) >> 32` (Lemire's multiply-shift
    /// range reduction, as Parquet specifies). Cannot overflow: both factors are below 2^32.
    @inlinable @inline(__always)
    static func blockIndex(_ hash: UInt64, _ numBlocks: Int) -> Int {
        Int(truncatingIfNeeded: ((hash &>> 32) &* UInt64(truncatingIfNeeded: numBlocks)) &>> 32)
    }

    /// The one bit word `i` gets: `1 << ((x * salt[i]) >> 27)`, the top 5 bits of a 32-bit
    /// product choosing one of 32 bit positions.
    @inlinable @inline(__always)
    static func bit(_ x: UInt32, _ salt: UInt32) -> UInt32 {
        1 &<< ((x &* salt) &>> 27)
    }

    /// Adds a key by its 64-bit hash (`TallyHash.hash` of the key's bytes).
    @inlinable public mutating func insert(hash: UInt64) {
        let base = Self.blockIndex(hash, numBlocks) &<< 3  // 8 words per block
        let x = UInt32(truncatingIfNeeded: hash)
        storage.withUnsafeMutableBufferPointer { w in
            let p = w.baseAddress! + base
            // Salts inlined (same values as `salts`) so the hot path loads no array.
            p[0] |= Self.bit(x, 0x47b6_137b)
            p[1] |= Self.bit(x, 0x4497_4d91)
            p[2] |= Self.bit(x, 0x8824_ad5b)
            p[3] |= Self.bit(x, 0xa2b7_289d)
            p[4] |= Self.bit(x, 0x7054_95c7)
            p[5] |= Self.bit(x, 0x2df1_424b)
            p[6] |= Self.bit(x, 0x9efc_4947)
            p[7] |= Self.bit(x, 0x5c6b_fb31)
        }
    }

    /// False if the key with this hash was certainly never inserted; true if it may have
    /// been (false positives at about `estimatedFalsePositiveRate`, never false negatives).
    @inlinable public func mayContain(hash: UInt64) -> Bool {
        let base = Self.blockIndex(hash, numBlocks) &<< 3  // 8 words per block
        let x = UInt32(truncatingIfNeeded: hash)
        return storage.withUnsafeBufferPointer { w in
            let p = w.baseAddress! + base
            // Branch-free: collect every required bit that is missing, test once.
            var missing: UInt32 = 0
            missing |= ~p[0] & Self.bit(x, 0x47b6_137b)
            missing |= ~p[1] & Self.bit(x, 0x4497_4d91)
            missing |= ~p[2] & Self.bit(x, 0x8824_ad5b)
            missing |= ~p[3] & Self.bit(x, 0xa2b7_289d)
            missing |= ~p[4] & Self.bit(x, 0x7054_95c7)
            missing |= ~p[5] & Self.bit(x, 0x2df1_424b)
            missing |= ~p[6] & Self.bit(x, 0x9efc_4947)
            missing |= ~p[7] & Self.bit(x, 0x5c6b_fb31)
            return missing == 0
        }
    }

    /// Adds every key of `other` (same `numBlocks`): the filter of the union of both key sets.
    public mutating func formUnion(_ other: SplitBlockBloomFilter) {
        precondition(other.storage.count == storage.count, "bloom filters of different sizes")
        storage.withUnsafeMutableBufferPointer { dst in
            other.storage.withUnsafeBufferPointer { src in
                for i in 0..<dst.count { dst[i] |= src[i] }
            }
        }
    }

    /// The expected false-positive rate once `distinctKeys` keys are inserted.
    ///
    /// Keys land in blocks as a Poisson process with mean `λ = distinctKeys / numBlocks`; a
    /// block holding `j` keys answers a foreign key "maybe" with probability
    /// `(1 - (31/32)^j)^8` (each of its 8 words must have the probed bit set). The rate is
    /// the sum over `j`, which reproduces the Parquet spec's worked example (1,024 blocks,
    /// 26,214 keys: about 1.26%).
    public func estimatedFalsePositiveRate(distinctKeys: Int) -> Double {
        precondition(distinctKeys >= 0, "distinctKeys must not be negative")
        if distinctKeys == 0 { return 0 }
        let lambda = Double(distinctKeys) / Double(numBlocks)
        // Past ~6,000 keys per block, (31/32)^j < 1e-80: every block is saturated.
        if lambda > 6_000 { return 1 }
        // Poisson terms beyond 12 standard deviations (+30 for small λ) are below 1e-30.
        let upper = Int(lambda + 12 * lambda.squareRoot() + 30)
        let logLambda = log(lambda)
        var logP = -lambda  // log P(j = 0)
        var miss = 1.0  // (31/32)^j: a given word's probed bit is still clear
        var sum = 0.0
        for j in 0...upper {
            if j > 0 {
                logP += logLambda - log(Double(j))
                miss *= 31.0 / 32.0
            }
            let oneWord = 1 - miss
            let hit = oneWord * oneWord * oneWord * oneWord * oneWord * oneWord * oneWord * oneWord
            sum += exp(logP) * hit
        }
        return min(1, sum)
    }
}
