import Foundation

/// A HyperLogLog sketch of the HLL++ family (Heule, Nunkesser, Hall 2013) for distinct counts of
/// visitors and sessions, fed with the engine's fixed 64-bit hash (XXH3, `TallyHash`).
///
/// - Sparse while small: a sorted set of (25-bit index, rank) pairs, estimated by linear
///   counting over 2^25 buckets — exact or within a few hundredths of a percent below a few
///   thousand distinct values.
/// - Dense above `sparseLimit` entries: 2^p registers (p = 14 by default: 16,384 registers,
///   standard error 1.04/√m ≈ 0.81%), estimated with Ertl's improved estimator ("New
///   cardinality estimation algorithms for HyperLogLog sketches", 2017), which needs no
///   empirical bias tables and is unbiased across the whole range.
/// - Merge (union) is exact: the sketch of A ∪ B equals the merge of the sketches of A and B.
///
/// The serialized form is in FORMAT.md ("HyperLogLog sketch").
public struct HyperLogLog: Sendable, Equatable {
    public static let defaultPrecision = 14
    /// Precision of sparse entries (HLL++'s p').
    static let sparsePrecision = 25

    public let precision: Int
    /// Registers (one byte each) once dense; empty while sparse.
    private(set) var registers: [UInt8] = []
    /// Sorted, one entry per index: index25 << 6 | rank25.
    private(set) var sparse: [UInt32] = []
    /// Entries added since the last sort.
    private var pending: [UInt32] = []

    public init(precision: Int = HyperLogLog.defaultPrecision) {
        precondition((4...18).contains(precision), "HyperLogLog precision must be 4–18")
        self.precision = precision
    }

    public var isDense: Bool { !registers.isEmpty }
    var registerCount: Int { 1 << precision }
    /// Sparse entries beyond which the sketch turns dense (4 bytes each vs one byte per register).
    var sparseLimit: Int { registerCount / 4 }

    /// The relative standard error of an estimate of a dense sketch: 1.04 / √(2^p).
    public var standardError: Double { 1.04 / Double(registerCount).squareRoot() }

    public static func == (a: HyperLogLog, b: HyperLogLog) -> Bool {
        var x = a
        var y = b
        x.compact()
        y.compact()
        return x.precision == y.precision && x.registers == y.registers && x.sparse == y.sparse
    }

    // MARK: Adding

    /// Adds a value by its 64-bit hash.
    public mutating func add(hash: UInt64) {
        if isDense {
            addDense(hash)
        } else {
            addSparse(hash)
        }
    }

    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        add(hash: TallyHash.hash(bytes))
    }

    public mutating func add(_ string: String) {
        add(hash: TallyHash.hash(string))
    }

    mutating func addDense(_ hash: UInt64) {
        let index = Int(truncatingIfNeeded: hash >> UInt64(64 - precision))
        let rank = UInt8(min((hash << UInt64(precision)).leadingZeroBitCount + 1, 64 - precision + 1))
        registers.withUnsafeMutableBufferPointer { r in
            if r[index] < rank { r[index] = rank }
        }
    }

    mutating func addSparse(_ hash: UInt64) {
        let p = Self.sparsePrecision
        let index = UInt32(truncatingIfNeeded: hash >> UInt64(64 - p))
        let rank = UInt32(min((hash << UInt64(p)).leadingZeroBitCount + 1, 64 - p + 1))
        pending.append(index << 6 | rank)
        if pending.count >= 512 { compact() }
    }

    /// Folds pending entries into the sorted sparse list; turns dense when it grows too big.
    mutating func compact() {
        guard !pending.isEmpty else { return }
        pending.sort()
        sparse = Self.mergeSorted(sparse, pending)
        pending.removeAll(keepingCapacity: true)
        if sparse.count > sparseLimit { densify() }
    }

    /// Union of two sorted entry lists, keeping the highest rank per index.
    static func mergeSorted(_ a: [UInt32], _ b: [UInt32]) -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(a.count + b.count)
        var i = 0
        var j = 0
        func push(_ e: UInt32) {
            if let last = out.last, last >> 6 == e >> 6 {
                if e > last { out[out.count - 1] = e }
            } else {
                out.append(e)
            }
        }
        while i < a.count || j < b.count {
            if j == b.count || (i < a.count && a[i] <= b[j]) {
                push(a[i])
                i += 1
            } else {
                push(b[j])
                j += 1
            }
        }
        return out
    }

    /// The dense register and rank of a sparse entry (HLL++'s conversion from p' to p).
    func denseSlot(_ entry: UInt32) -> (Int, UInt8) {
        let extra = Self.sparsePrecision - precision
        let index25 = entry >> 6
        let rank25 = entry & 63
        let index = Int(index25 >> UInt32(extra))
        let low = index25 & ((1 << UInt32(extra)) - 1)
        let rank: UInt32
        if low != 0 {
            rank = UInt32(low.leadingZeroBitCount - (32 - extra)) + 1
        } else {
            rank = UInt32(extra) + rank25
        }
        return (index, UInt8(rank))
    }

    mutating func densify() {
        var r = [UInt8](repeating: 0, count: registerCount)
        for e in sparse {
            let (i, rank) = denseSlot(e)
            if r[i] < rank { r[i] = rank }
        }
        registers = r
        sparse = []
    }

    // MARK: Merging

    /// Adds every value of `other` (same precision).
    public mutating func merge(_ other: HyperLogLog) {
        precondition(other.precision == precision, "merging HyperLogLog sketches of different precision")
        var o = other
        o.compact()
        if !isDense && !o.isDense {
            // Queue the entries like adds: merging many small sketches into one (a rollup query
            // over thousands of rows) sorts batches instead of re-merging the whole list each time.
            pending.append(contentsOf: o.sparse)
            if pending.count >= 512 { compact() }
            return
        }
        compact()
        if !isDense { densify() }
        if o.isDense {
            registers.withUnsafeMutableBufferPointer { r in
                o.registers.withUnsafeBufferPointer { s in
                    for i in 0..<r.count where s[i] > r[i] { r[i] = s[i] }
                }
            }
        } else {
            for e in o.sparse {
                let (i, rank) = denseSlot(e)
                if registers[i] < rank { registers[i] = rank }
            }
        }
    }

    // MARK: Estimating

    /// The estimated number of distinct values added.
    public func estimate() -> Double {
        if isDense { return Self.ertl(registers, precision: precision) }
        var s = self
        s.compact()
        if s.isDense { return Self.ertl(s.registers, precision: precision) }
        // Linear counting over the 2^25 sparse buckets.
        let m = Double(1 << Self.sparsePrecision)
        let n = Double(s.sparse.count)
        return n == 0 ? 0 : m * log(m / (m - n))
    }

    /// The estimate rounded to a count.
    public var count: Int { Int(estimate().rounded()) }

    /// Ertl's improved raw estimator (Algorithm 6 of the 2017 paper).
    static func ertl(_ registers: [UInt8], precision p: Int) -> Double {
        let q = 64 - p
        let m = Double(registers.count)
        var histogram = [Double](repeating: 0, count: q + 2)
        for r in registers { histogram[Int(r)] += 1 }
        var z = m * tau(1 - histogram[q + 1] / m)
        for k in stride(from: q, through: 1, by: -1) {
            z = 0.5 * (z + histogram[k])
        }
        z += m * sigma(histogram[0] / m)
        return m * m / (2 * log(2.0)) / z
    }

    static func sigma(_ x0: Double) -> Double {
        if x0 == 1 { return .infinity }
        var x = x0
        var y = 1.0
        var z = x
        while true {
            x *= x
            let previous = z
            z += x * y
            y += y
            if z == previous { return z }
        }
    }

    static func tau(_ x0: Double) -> Double {
        if x0 == 0 || x0 == 1 { return 0 }
        var x = x0
        var y = 1.0
        var z = 1 - x
        while true {
            x = x.squareRoot()
            let previous = z
            y *= 0.5
            z -= (1 - x) * (1 - x) * y
            if z == previous { return z / 3 }
        }
    }

    // MARK: Serialized form

    /// The sketch's bytes (FORMAT.md): kind, precision, then sparse entries or registers.
    public func serialized() -> [UInt8] {
        var s = self
        s.compact()
        var w = ByteWriter(capacity: s.isDense ? registerCount + 2 : s.sparse.count * 3 + 8)
        if s.isDense {
            w.u8(2)
            w.u8(UInt8(precision))
            w.bytes.append(contentsOf: s.registers)
        } else {
            w.u8(1)
            w.u8(UInt8(precision))
            w.varint(UInt64(s.sparse.count))
            var previous: UInt32 = 0
            for e in s.sparse {
                w.varint(UInt64(e - previous))
                previous = e
            }
        }
        return w.bytes
    }

    public init(serialized bytes: UnsafeRawBufferPointer) throws(TallyError) {
        var r = ByteReader(bytes)
        do {
            let kind = try r.u8()
            let p = Int(try r.u8())
            guard (4...18).contains(p) else {
                throw TallyError(.corruption, "HyperLogLog sketch has precision \(p), expected 4–18")
            }
            self.init(precision: p)
            switch kind {
            case 1:
                let n = try r.count(limit: 1 << p)
                var entries: [UInt32] = []
                entries.reserveCapacity(n)
                var previous: UInt64 = 0
                for i in 0..<n {
                    let delta = try r.varint()
                    let e = previous + delta
                    guard e <= UInt64(UInt32.max), i == 0 || delta > 0 else {
                        throw TallyError(.corruption, "HyperLogLog sparse entries are not strictly increasing")
                    }
                    entries.append(UInt32(e))
                    previous = e
                }
                sparse = entries
            case 2:
                guard r.remaining >= 1 << p else {
                    throw TallyError(.corruption, "HyperLogLog dense sketch is truncated")
                }
                registers = Array(UnsafeRawBufferPointer(rebasing: bytes[r.offset..<(r.offset + (1 << p))]))
                r.offset += 1 << p
                guard registers.allSatisfy({ Int($0) <= 64 - p + 1 }) else {
                    throw TallyError(.corruption, "HyperLogLog register out of range")
                }
            default:
                throw TallyError(.unsupportedVersion, "HyperLogLog sketch kind \(kind) is unknown (this build reads 1 and 2)")
            }
            guard r.isAtEnd else { throw TallyError(.corruption, "HyperLogLog sketch has \(r.remaining) trailing bytes") }
        } catch let e as TallyError {
            throw e
        } catch {
            throw TallyError(.corruption, "HyperLogLog sketch is truncated: \(error)")
        }
    }
}
