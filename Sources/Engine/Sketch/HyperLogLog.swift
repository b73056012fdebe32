import Foundation

/// A HyperLogLog sketch of the HLL++ family (Heule, Nunkesser, Hall 2013) for distinct counts of
/// visitors and sessions, fed with the engine's fixed 64-bit hash (XXH3, `TallyHash`).
///
/// - Sparse while small: a sorted set of (17-bit index, rank) pairs, estimated by linear
///   counting over 2^17 buckets — exact or within a few tenths of a percent below a few
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
    /// 17 rather than HLL++'s 25: linear counting over 2^17 buckets is still within 0.2% (one
    /// standard error) at the 4,096 entries where a p = 14 sketch turns dense, and exact far
    /// below, while an entry costs 8 bits less in a rollup row (FORMAT.md, "HyperLogLog sketch";
    /// sketches written with 25 are converted).
    static let sparsePrecision = 17

    public let precision: Int
    /// Registers (one byte each) once dense; empty while sparse.
    private(set) var registers: [UInt8] = []
    /// Sorted, one entry per index: index << 6 | rank at the sparse precision p'.
    private(set) var sparse: [UInt32] = []
    /// Entries added since the last sort.
    private var pending: [UInt32] = []

    public init(precision: Int = HyperLogLog.defaultPrecision) {
        precondition((4...18).contains(precision), "HyperLogLog precision must be 4–18")
        self.precision = precision
    }

    public var isDense: Bool { !registers.isEmpty }
    /// Sparse entries held, counting those not yet compacted (so at least the distinct ones).
    var entryCount: Int { sparse.count + pending.count }
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
        pending.append(Self.sparseEntry(hash: hash, precision: precision))
        if pending.count >= pendingLimit { compact() }
    }

    /// The sparse entry (index17 << 6 | rank, normalized) a hash adds to a sketch of `precision`.
    @inline(__always)
    static func sparseEntry(hash: UInt64, precision: Int) -> UInt32 {
        let p = Self.sparsePrecision
        let index = UInt32(truncatingIfNeeded: hash >> UInt64(64 - p))
        let rank = UInt32(min((hash << UInt64(p)).leadingZeroBitCount + 1, 64 - p + 1))
        return normalized(index << 6 | rank, precision: precision)
    }

    /// A sketch of `precision` holding sparse entries already sorted and one per index (as
    /// `uniqueEntries` leaves them): sparse up to the sparse limit, dense above, as adding the
    /// same hashes one by one would leave it.
    init(sortedUniqueEntries entries: [UInt32], precision: Int = HyperLogLog.defaultPrecision) {
        self.init(precision: precision)
        sparse = entries
        if sparse.count > sparseLimit { densify() }
    }

    /// Sorts `run` and keeps one entry per index, the highest (as `compact` does); returns how
    /// many it kept, at the front of `run`.
    static func uniqueEntries(_ run: UnsafeMutableBufferPointer<UInt32>) -> Int {
        let n = run.count
        guard n > 1 else { return n }
        if n <= 32 {
            // Insertion sort: a rollup row's sketch mostly has a few entries.
            for i in 1..<n {
                let v = run[i]
                var j = i
                while j > 0 && run[j - 1] > v {
                    run[j] = run[j - 1]
                    j -= 1
                }
                run[j] = v
            }
        } else {
            var a = Array(run)
            sortEntries(&a)
            for i in 0..<n { run[i] = a[i] }
        }
        var kept = 1
        for i in 1..<n {
            let e = run[i]
            if run[kept - 1] >> 6 == e >> 6 {
                if e > run[kept - 1] { run[kept - 1] = e }
            } else {
                run[kept] = e
                kept += 1
            }
        }
        return kept
    }

    /// Pending entries are folded in once they are as many as the sorted ones (at least 512):
    /// each fold re-merges the whole list, so a fixed batch made adds cost O(sparse list).
    var pendingLimit: Int { max(512, sparse.count) }

    /// An entry with its p' rank cleared (0) when its low p' − p index bits are not all zero:
    /// the dense rank then comes from those bits alone (`denseSlot`) and linear counting uses
    /// indexes only, so the rank carries nothing and is not stored (FORMAT.md, kind 3).
    @inline(__always)
    func normalized(_ entry: UInt32) -> UInt32 { Self.normalized(entry, precision: precision) }

    @inline(__always)
    static func normalized(_ entry: UInt32, precision: Int) -> UInt32 {
        let lowMask = (UInt32(1) << UInt32(Self.sparsePrecision - precision)) - 1
        return (entry >> 6) & lowMask != 0 ? entry & ~63 : entry
    }

    /// Folds pending entries into the sorted sparse list; turns dense when it grows too big.
    mutating func compact() {
        guard !pending.isEmpty else { return }
        Self.sortEntries(&pending)
        sparse = Self.mergeSorted(sparse, pending)
        pending.removeAll(keepingCapacity: true)
        if sparse.count > sparseLimit { densify() }
    }

    /// Sorts sparse entries (23 bits: index17 << 6 | rank): least significant digit first, three
    /// 8-bit digits, for more than a few dozen entries — the standard library's sort was 4–8 %
    /// of the raw queries with unique visitors and of building rollups.
    static func sortEntries(_ a: inout [UInt32]) {
        let n = a.count
        guard n > 48, a.reduce(0, |) < 1 << 24 else {
            a.sort()
            return
        }
        var scratch = [UInt32](repeating: 0, count: n)
        a.withUnsafeMutableBufferPointer { a in
            scratch.withUnsafeMutableBufferPointer { b in
                var src = a, dst = b
                for shift: UInt32 in [0, 8, 16] {
                    var counts = (0..<256).map { _ in 0 }
                    counts.withUnsafeMutableBufferPointer { c in
                        for v in src { c[Int((v >> shift) & 255)] += 1 }
                        var total = 0
                        for i in 0..<256 {
                            let k = c[i]
                            c[i] = total
                            total += k
                        }
                        for v in src {
                            let d = Int((v >> shift) & 255)
                            dst[c[d]] = v
                            c[d] += 1
                        }
                    }
                    swap(&src, &dst)
                }
                // Three passes: the sorted entries are in `b`.
                for i in 0..<n { a[i] = b[i] }
            }
        }
    }

    /// Union of two sorted entry lists, keeping the highest rank per index.
    static func mergeSorted(_ a: [UInt32], _ b: [UInt32]) -> [UInt32] {
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                [UInt32](unsafeUninitializedCapacity: a.count + b.count) { out, count in
                    count = mergeSorted(a, b, into: out)
                }
            }
        }
    }

    /// The same into `out` (emptied first), whose capacity a caller merging many lists reuses
    /// (a rollup merge's unions of sketches).
    static func mergeSorted(_ a: [UInt32], _ b: [UInt32], into out: inout [UInt32]) {
        out.removeAll(keepingCapacity: true)
        out.append(contentsOf: repeatElement(0, count: a.count + b.count))
        let n = a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in out.withUnsafeMutableBufferPointer { mergeSorted(a, b, into: $0) } }
        }
        out.removeLast(out.count - n)
    }

    /// Writes the union of sorted `a` and `b` (highest rank per index) to `out`, which has room
    /// for both; returns how many entries it wrote.
    private static func mergeSorted(_ a: UnsafeBufferPointer<UInt32>, _ b: UnsafeBufferPointer<UInt32>,
                                    into out: UnsafeMutableBufferPointer<UInt32>) -> Int {
        let (na, nb) = (a.count, b.count)
        var n = 0
        var i = 0
        var j = 0
        @inline(__always) func push(_ e: UInt32) {
            if n > 0 && out[n - 1] >> 6 == e >> 6 {
                if e > out[n - 1] { out[n - 1] = e }
            } else {
                out[n] = e
                n += 1
            }
        }
        while i < na && j < nb {
            if a[i] <= b[j] {
                push(a[i])
                i += 1
            } else {
                push(b[j])
                j += 1
            }
        }
        while i < na {
            push(a[i])
            i += 1
        }
        while j < nb {
            push(b[j])
            j += 1
        }
        return n
    }

    /// The dense register and rank of a sparse entry (HLL++'s conversion from p' to p).
    @inline(__always)
    func denseSlot(_ entry: UInt32) -> (Int, UInt8) { Self.denseSlot(entry, precision: precision) }

    /// The dense register and rank of a sparse entry at `precision`. Inlined into the loops
    /// that convert many (a call per entry was 5 % of `top_pages_30d` at 30M events).
    @inline(__always)
    static func denseSlot(_ entry: UInt32, precision: Int) -> (Int, UInt8) {
        let extra = Self.sparsePrecision - precision
        let sparseIndex = entry >> 6
        let sparseRank = entry & 63
        let index = Int(sparseIndex >> UInt32(extra))
        let low = sparseIndex & ((1 << UInt32(extra)) - 1)
        let rank: UInt32
        if low != 0 {
            rank = UInt32(low.leadingZeroBitCount - (32 - extra)) + 1
        } else {
            rank = UInt32(extra) + sparseRank
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
            if pending.count >= pendingLimit { compact() }
            return
        }
        compact()
        if !isDense { densify() }
        if o.isDense {
            registers.withUnsafeMutableBufferPointer { r in
                o.registers.withUnsafeBufferPointer { s in
                    for i in 0..<r.count { r[i] = max(r[i], s[i]) }
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
        // Linear counting over the 2^17 sparse buckets.
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
        // Registers hold at most q + 1 (checked when read), so counts index 64-slot tables; four
        // of them, for consecutive registers, so that increments of one slot do not wait on each
        // other through memory (one table: ~25 µs per estimate, 21 % of `daily_92d`).
        var counts = [Int](repeating: 0, count: 256)
        counts.withUnsafeMutableBufferPointer { c in
            registers.withUnsafeBufferPointer { r in
                var i = 0
                while i + 4 <= r.count {
                    c[Int(r[i]) & 63] += 1
                    c[64 + (Int(r[i + 1]) & 63)] += 1
                    c[128 + (Int(r[i + 2]) & 63)] += 1
                    c[192 + (Int(r[i + 3]) & 63)] += 1
                    i += 4
                }
                while i < r.count {
                    c[Int(r[i]) & 63] += 1
                    i += 1
                }
            }
        }
        var histogram = [Double](repeating: 0, count: 64)
        for k in 0..<64 {
            let n: Int = counts[k] + counts[64 + k] + counts[128 + k] + counts[192 + k]
            histogram[k] = Double(n)
        }
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

    /// The sketch's bytes (FORMAT.md): kind, precision, then sparse entries (kind 3: the gaps
    /// between indexes Rice-coded, ranks only where they count) or registers (kind 4: 4-bit
    /// differences from the smallest; kind 2, one byte each, is still read).
    ///
    /// Kind 3 replaced kind 1 (varint deltas of whole entries at p' = 25) with rollup format 2:
    /// rollup rows are mostly small sparse sketches (BENCHMARKS.md, "Rollup storage"). Kind 1
    /// is still read.
    public func serialized() -> [UInt8] {
        var s = self
        s.compact()
        var w = ByteWriter(capacity: s.isDense ? registerCount + 2 : s.sparse.count * 3 + 8)
        if s.isDense {
            // Kind 4: registers as 4-bit differences from the smallest, two per byte, those 15
            // or more above it listed apart. Registers cluster within a few values of each
            // other, so this is half of kind 2's bytes and compresses further (BENCHMARKS.md,
            // "Rollup storage").
            let base = s.registers.min() ?? 0
            w.u8(4)
            w.u8(UInt8(precision))
            w.u8(base)
            var exceptions: [(index: Int, value: UInt8)] = []
            s.registers.withUnsafeBufferPointer { r in
                for i in stride(from: 0, to: r.count, by: 2) {
                    let lo = r[i] - base, hi = r[i + 1] - base
                    if lo >= 15 { exceptions.append((i, r[i])) }
                    if hi >= 15 { exceptions.append((i + 1, r[i + 1])) }
                    w.u8(min(lo, 15) | min(hi, 15) << 4)
                }
            }
            w.varint(UInt64(exceptions.count))
            var previous = 0
            for e in exceptions {
                w.varint(UInt64(e.index - previous))
                w.u8(e.value)
                previous = e.index
            }
            return w.bytes
        }
        Self.appendSparseHeader(entries: s.sparse.count, precision: precision, to: &w.bytes)
        s.sparse.withUnsafeBufferPointer { Self.appendSparseBits($0, precision: precision, to: &w.bytes) }
        return w.bytes
    }

    /// Appends the header of a kind-3 (sparse) serialized sketch to `out`: kind, precision,
    /// entry count (no array of its own: a rollup part writes one per sketch).
    static func appendSparseHeader(entries: Int, precision: Int, to out: inout [UInt8]) {
        out.append(3)
        out.append(UInt8(precision))
        ByteWriter.appendVarint(UInt64(entries), to: &out)
    }

    /// The sketch's sparse entries, sorted and one per index as serializing writes them (pending
    /// ones folded into a copy); nil when dense.
    var compactedSparse: [UInt32]? {
        var s = self
        s.compact()
        return s.isDense ? nil : s.sparse
    }

    /// Appends the kind-3 bits of sorted, unique sparse entries to `out` (a rollup part writes
    /// its rows' sketches straight into its buffers: an array per sketch, and one more for its
    /// bits, were a third of writing the rollup parts of a flush).
    static func appendSparseBits(_ entries: UnsafeBufferPointer<UInt32>, precision: Int, to out: inout [UInt8]) {
        guard !entries.isEmpty else { return }
        let k = UInt64(Self.riceParameter(entries: entries.count))
        let lowMask = (UInt32(1) << UInt32(Self.sparsePrecision - precision)) - 1
        var buffer: UInt64 = 0
        var used: UInt64 = 0
        @inline(__always) func write(_ value: UInt64, _ count: UInt64) {
            buffer |= value << used
            used += count
            while used >= 8 {
                out.append(UInt8(truncatingIfNeeded: buffer))
                buffer >>= 8
                used -= 8
            }
        }
        @inline(__always) func unary(_ q: UInt64) {
            var left = q
            while left >= 32 {
                write(0xFFFF_FFFF, 32)
                left -= 32
            }
            write((1 << left) - 1, left + 1)
        }
        var next: UInt32 = 0  // the smallest index the entry can have
        for e in entries {
            let index = e >> 6
            let gap = UInt64(index - next)
            unary(gap >> k)
            if k > 0 { write(gap & ((1 << k) - 1), k) }
            if index & lowMask == 0 { unary(UInt64(e & 63) - 1) }
            next = index + 1
        }
        if used > 0 { out.append(UInt8(truncatingIfNeeded: buffer)) }
    }

    /// The entries of the bits of a kind-3 sketch of `n` entries at precision `p`, and how many
    /// bytes they took (a rollup part stores only n and these bits for most sketches).
    static func decodeSparseBits(_ bytes: UnsafeRawBufferPointer, entries n: Int, precision p: Int)
        throws(TallyError) -> (entries: [UInt32], bytes: Int)
    {
        var entries: [UInt32] = []
        entries.reserveCapacity(n)
        let used = try forEachSparseEntry(bytes, entries: n, precision: p) { entries.append($0) }
        return (entries, used)
    }

    /// Calls `body` with each entry (in index order) of the bits of a kind-3 sketch of `n`
    /// entries at precision `p`; returns how many bytes they took. A union takes the entries
    /// as they are decoded (an array of them first was an extra pass and allocation per sketch).
    @inline(__always)
    static func forEachSparseEntry(_ bytes: UnsafeRawBufferPointer, entries n: Int, precision p: Int,
                                   _ body: (UInt32) -> Void) throws(TallyError) -> Int {
        guard n > 0 else { return 0 }
        let k = riceParameter(entries: n)
        let kMask: UInt64 = (1 << UInt64(k)) - 1
        let lowMask = (UInt32(1) << UInt32(sparsePrecision - p)) - 1
        let rankLimit = 64 - sparsePrecision
        var next: UInt64 = 0
        var position = 0  // bits consumed
        for _ in 0..<n {
            var index: UInt64 = 0
            var rank: UInt64 = 0
            // Fast path: the entry lies within the 57+ bits of one 8-byte load (nearly always:
            // gaps and ranks take a few bits each). Decoding bit run by bit run through
            // `BitReader` was most of a rollup query's time (daily_92d: 35 %).
            var decoded = false
            if (position >> 3) + 8 <= bytes.count {
                let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: position >> 3, as: UInt64.self))
                    >> UInt64(position & 7)
                let q = (~word).trailingZeroBitCount
                var used = q + 1 + k
                if used <= 57 {
                    index = next + (UInt64(q) << UInt64(k)) + ((word >> UInt64(q + 1)) & kMask)
                    guard index < 1 << UInt64(sparsePrecision) else {
                        throw TallyError(.corruption, "HyperLogLog sparse index \(index) is out of range")
                    }
                    if UInt32(index) & lowMask == 0 {
                        let ones = (~(word >> UInt64(used))).trailingZeroBitCount
                        if ones <= rankLimit && used + ones + 1 <= 57 {
                            rank = UInt64(ones) + 1
                            used += ones + 1
                            decoded = true
                        }
                    } else {
                        decoded = true
                    }
                    if decoded { position += used }
                }
            }
            if !decoded {
                // Near the end of the bytes, or a long run: bit run by bit run, with every check.
                var bits = BitReader(bytes, bitPosition: position)
                let q = try bits.unary(limit: 1 << sparsePrecision)
                index = next + (UInt64(q) << UInt64(k)) + (try bits.read(k))
                guard index < 1 << UInt64(sparsePrecision) else {
                    throw TallyError(.corruption, "HyperLogLog sparse index \(index) is out of range")
                }
                if UInt32(index) & lowMask == 0 {
                    // Unary: rank − 1 one bits, then a zero bit (ranks are geometric).
                    rank = UInt64(try bits.unary(limit: rankLimit)) + 1
                }
                position = bits.bitPosition
            }
            body(UInt32(index) << 6 | UInt32(rank))
            next = index + 1
        }
        let rest = position % 8
        guard rest == 0 || bytes[position / 8] >> UInt8(rest) == 0 else {
            throw TallyError(.corruption, "HyperLogLog sparse sketch has bits after its last entry")
        }
        return (position + 7) / 8
    }

    /// The Rice parameter of a kind-3 sketch of n entries: about log2 of the mean gap between
    /// n indexes spread over 2^p' (derived, not stored).
    static func riceParameter(entries n: Int) -> Int {
        let meanGap = (1 << sparsePrecision) / (n + 1)
        return meanGap <= 1 ? 0 : Int.bitWidth - 1 - meanGap.leadingZeroBitCount
    }

    /// Reads a kind-4 (dense) body — base, packed 4-bit registers, exceptions — from `r` and
    /// raises each register of `out` (2^p of them) to it: into zeros it decodes the sketch,
    /// into a union's registers it merges without building the sketch. Every rule of FORMAT.md
    /// is checked; a broken sketch throws (what `out` holds then is unspecified).
    static func mergeDense(_ r: inout ByteReader, precision p: Int, into out: UnsafeMutableBufferPointer<UInt8>)
        throws(TallyError)
    {
        do {
            let base = try r.u8()
            let maxRank = UInt8(64 - p + 1)
            guard base <= maxRank else { throw TallyError(.corruption, "HyperLogLog dense base \(base) is out of range") }
            let half = (1 << p) / 2
            let packed = try r.raw(half)
            // Simple loops the compiler vectorizes: raise, count saturated nibbles, and check
            // the others' range only when the base is within 14 of the highest rank.
            let bytes = packed.assumingMemoryBound(to: UInt8.self)
            for i in 0..<half {
                let v = bytes[i]
                out[2 * i] = max(out[2 * i], base &+ (v & 15))
                out[2 * i + 1] = max(out[2 * i + 1], base &+ (v >> 4))
            }
            var saturated = 0
            for v in bytes { saturated &+= Int((v & 15) == 15 ? 1 : 0) &+ Int((v >> 4) == 15 ? 1 : 0) }
            if Int(base) + 14 > Int(maxRank) {
                for v in bytes where ((v & 15) != 15 && base &+ (v & 15) > maxRank) || ((v >> 4) != 15 && base &+ (v >> 4) > maxRank) {
                    throw TallyError(.corruption, "HyperLogLog register out of range")
                }
            }
            let count = try r.count(limit: 1 << p)
            // Exceptions list exactly the saturated registers, in order, once each.
            guard count == saturated else {
                throw TallyError(.corruption, "HyperLogLog dense sketch lists \(count) exceptions for \(saturated) saturated registers")
            }
            var index = 0
            for e in 0..<count {
                let delta = try r.count(limit: 1 << p)
                index += delta
                guard index < 1 << p, e == 0 || delta > 0, (packed[index / 2] >> (index % 2 == 0 ? 0 : 4)) & 15 == 15 else {
                    throw TallyError(.corruption, "HyperLogLog dense exception \(e) is out of order or not a saturated register")
                }
                let value = try r.u8()
                guard value >= base + 15 else {
                    throw TallyError(.corruption, "HyperLogLog dense exception \(e) is below base + 15")
                }
                guard value <= maxRank else { throw TallyError(.corruption, "HyperLogLog register out of range") }
                out[index] = max(out[index], value)
            }
        } catch let e as TallyError {
            throw e
        } catch {
            throw TallyError(.corruption, "HyperLogLog sketch is truncated: \(error)")
        }
    }

    /// The sketch of `n` sparse entries of `precision` from their Rice-coded bits (what a kind-3
    /// serialized sketch holds after its header), which must be all of `bits`.
    init(sparseRiceCoded bits: UnsafeRawBufferPointer, entries n: Int, precision: Int = HyperLogLog.defaultPrecision)
        throws(TallyError)
    {
        self.init(precision: precision)
        let (entries, used) = try Self.decodeSparseBits(bits, entries: n, precision: precision)
        guard used == bits.count else { throw TallyError(.corruption, "HyperLogLog sketch has \(bits.count - used) trailing bytes") }
        sparse = entries
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
            if (kind == 1 || kind == 3) && p > Self.sparsePrecision {
                throw TallyError(.corruption, "HyperLogLog sparse sketch has precision \(p), above the sparse precision \(Self.sparsePrecision)")
            }
            switch kind {
            case 1:
                // p' = 25 entries, converted to p' = 17 as if their hashes were added now.
                let n = try r.count(limit: 1 << p)
                var entries: [UInt32] = []
                entries.reserveCapacity(n)
                var previous: UInt64 = 0
                for i in 0..<n {
                    let delta = try r.varint()
                    guard delta < 1 << 31, i == 0 || delta > 0 else {
                        throw TallyError(.corruption, "HyperLogLog sparse entries are not strictly increasing")
                    }
                    let e = previous + delta
                    // index25 < 2^25 and rank25 ≤ 64 − 25 + 1: anything else would land outside
                    // the 2^17 sparse slots or the registers once converted.
                    guard e < 1 << 31, e & 63 <= 40 else {
                        throw TallyError(.corruption, "HyperLogLog sparse entry \(e) is out of range")
                    }
                    previous = e
                    let index25 = UInt32(e >> 6), rank25 = UInt32(e & 63)
                    let dropped = UInt32(25 - Self.sparsePrecision)
                    let low = index25 & ((1 << dropped) - 1)
                    let rank = low != 0 ? UInt32(low.leadingZeroBitCount - (32 - Int(dropped))) + 1 : dropped + rank25
                    let entry = normalized((index25 >> dropped) << 6 | rank)
                    if let last = entries.last, last >> 6 == entry >> 6 {
                        entries[entries.count - 1] = max(last, entry)
                    } else {
                        entries.append(entry)
                    }
                }
                sparse = entries
            case 3:
                let n = try r.count(limit: 1 << p)
                let (entries, used) = try Self.decodeSparseBits(UnsafeRawBufferPointer(rebasing: bytes[r.offset...]),
                                                                entries: n, precision: p)
                r.offset += used
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
            case 4:
                var regs = [UInt8](repeating: 0, count: 1 << p)
                try regs.withUnsafeMutableBufferPointer { (out) throws(TallyError) in
                    try Self.mergeDense(&r, precision: p, into: out)
                }
                registers = regs
            default:
                throw TallyError(.unsupportedVersion, "HyperLogLog sketch kind \(kind) is unknown (this build reads 1 to 4)")
            }
            guard r.isAtEnd else { throw TallyError(.corruption, "HyperLogLog sketch has \(r.remaining) trailing bytes") }
        } catch let e as TallyError {
            throw e
        } catch {
            throw TallyError(.corruption, "HyperLogLog sketch is truncated: \(error)")
        }
    }
}

/// Reads bits written least significant first (`appendSparseBits`), through a 64-bit cache.
struct BitReader {
    let bytes: UnsafeRawBufferPointer
    /// Bits consumed.
    private var position = 0
    /// The next bits, least significant first; `cached` of them are valid.
    private var cache: UInt64 = 0
    private var cached = 0
    /// The next byte to load into the cache.
    private var loaded = 0

    /// A reader starting `bitPosition` bits in.
    init(_ bytes: UnsafeRawBufferPointer, bitPosition: Int) {
        self.bytes = bytes
        position = bitPosition
        loaded = bitPosition / 8
        if bitPosition % 8 != 0 {
            cache = UInt64(bytes[loaded]) >> UInt64(bitPosition % 8)
            cached = 8 - bitPosition % 8
            loaded += 1
        }
    }

    /// Bits consumed.
    var bitPosition: Int { position }

    @inline(__always)
    private mutating func refill() {
        while cached <= 56 && loaded < bytes.count {
            cache |= UInt64(bytes[loaded]) << UInt64(cached)
            cached += 8
            loaded += 1
        }
    }

    /// The next `count` bits (≤ 32) as a number.
    mutating func read(_ count: Int) throws(TallyError) -> UInt64 {
        guard count > 0 else { return 0 }
        refill()
        guard cached >= count else { throw TallyError(.corruption, "HyperLogLog sparse sketch is truncated") }
        let v = cache & ((1 << UInt64(count)) - 1)
        cache >>= UInt64(count)
        cached -= count
        position += count
        return v
    }

    /// The number of one bits before the next zero bit (at most `limit`).
    mutating func unary(limit: Int) throws(TallyError) -> Int {
        var q = 0
        while true {
            refill()
            guard cached > 0 else { throw TallyError(.corruption, "HyperLogLog sparse sketch is truncated") }
            let ones = min((~cache).trailingZeroBitCount, cached)
            q += ones
            guard q <= limit else { throw TallyError(.corruption, "HyperLogLog sparse gap is out of range") }
            if ones < cached {
                // The zero bit ends the run.
                cache >>= UInt64(ones + 1)
                cached -= ones + 1
                position += ones + 1
                return q
            }
            cache = 0
            position += ones
            cached = 0
        }
    }
}

extension HyperLogLog {
    /// A sketch made of a sorted, normalized sparse list (at most `sparseLimit` entries).
    fileprivate init(precision: Int, sparse: [UInt32]) {
        self.init(precision: precision)
        self.sparse = sparse
    }

    /// A dense sketch made of its registers.
    fileprivate init(precision: Int, registers: [UInt8]) {
        self.init(precision: precision)
        self.registers = registers
    }
}

/// Many sketches merged into one without sorting: sparse entries go into a table with a slot
/// per p' index, and into registers once the union is dense. The result equals merging them
/// one by one with `HyperLogLog.merge` (the same entries, dense under the same rule: an input
/// is dense or the union has more than `sparseLimit` entries), which queues the entries, sorts
/// each batch and re-merges the sorted list — a quarter of `top_pages_30d`, whose 50 pages
/// merge 1,500 daily sketches. Reusable: `take()` leaves it empty.
struct SketchUnion {
    let precision: Int
    /// Per p' index, its highest rank + 1 (0: no entry).
    private var slots: [UInt8]
    /// One bit per slot in use, to list the entries in index order.
    private var occupied: [UInt64]
    private var entries = 0
    /// The union's registers once dense; while sparse, empty, or kept beside the slots when
    /// `expect(entries:)` was told the union will likely turn dense (`shadowing`).
    private var registers: [UInt8] = []
    private var isDense = false
    /// Sparse entries also raise `registers`: turning dense then only clears the slots.
    /// Converting the slots once past the limit (`densify`) was a quarter of the merging in
    /// `top_pages_30d` at 30M events (50 unions of 30 daily sketches, nearly all turning dense).
    private var shadowing = false
    private let shape: HyperLogLog

    init(precision: Int = HyperLogLog.defaultPrecision) {
        self.precision = precision
        shape = HyperLogLog(precision: precision)
        slots = [UInt8](repeating: 0, count: 1 << HyperLogLog.sparsePrecision)
        occupied = [UInt64](repeating: 0, count: (1 << HyperLogLog.sparsePrecision) / 64)
    }

    mutating func merge(_ sketch: HyperLogLog) {
        precondition(sketch.precision == precision, "merging HyperLogLog sketches of different precision")
        var s = sketch
        s.compact()
        guard s.isDense else {
            merge(sparse: s.sparse)
            return
        }
        if !isDense { densify() }
        registers.withUnsafeMutableBufferPointer { r in
            s.registers.withUnsafeBufferPointer { o in
                for i in 0..<r.count { r[i] = max(r[i], o[i]) }
            }
        }
    }

    /// Merges sorted, normalized sparse entries.
    private mutating func merge(sparse: [UInt32]) {
        mergeEntries { add in for e in sparse { add(e) } }
    }

    /// Merges the `n` Rice-coded entries of a kind-3 sketch as they are decoded (no array of
    /// them first); returns the bytes they took.
    private mutating func merge(riceCoded bytes: UnsafeRawBufferPointer, entries n: Int) throws(TallyError) -> Int {
        let p = precision
        return try mergeEntries { (add) throws(TallyError) -> Int in
            try HyperLogLog.forEachSparseEntry(bytes, entries: n, precision: p, add)
        }
    }

    /// Merges the sparse entries `feed` passes to its argument: into the registers once dense,
    /// else into the slot table (turning dense past the sparse limit). Entries fed before a
    /// throw are merged and counted.
    @inline(__always)
    private mutating func mergeEntries<R, E: Error>(_ feed: ((UInt32) -> Void) throws(E) -> R) throws(E) -> R {
        let p = precision
        if isDense {
            return try registers.withUnsafeMutableBufferPointer { (r) throws(E) -> R in
                try feed { e in
                    let (i, rank) = HyperLogLog.denseSlot(e, precision: p)
                    if r[i] < rank { r[i] = rank }
                }
            }
        }
        var added = 0
        defer {
            entries += added
            if entries > shape.sparseLimit { densify() }
        }
        if shadowing {
            return try slots.withUnsafeMutableBufferPointer { (slots) throws(E) -> R in
                try occupied.withUnsafeMutableBufferPointer { (occupied) throws(E) -> R in
                    try registers.withUnsafeMutableBufferPointer { (r) throws(E) -> R in
                        try feed { e in
                            let i = Int(e >> 6), v = UInt8(truncatingIfNeeded: e & 63) &+ 1
                            if slots[i] == 0 {
                                occupied[i >> 6] |= 1 << UInt64(i & 63)
                                added += 1
                            }
                            if slots[i] < v { slots[i] = v }
                            let (j, rank) = HyperLogLog.denseSlot(e, precision: p)
                            if r[j] < rank { r[j] = rank }
                        }
                    }
                }
            }
        }
        return try slots.withUnsafeMutableBufferPointer { (slots) throws(E) -> R in
            try occupied.withUnsafeMutableBufferPointer { (occupied) throws(E) -> R in
                try feed { e in
                    let i = Int(e >> 6), v = UInt8(truncatingIfNeeded: e & 63) &+ 1
                    if slots[i] == 0 {
                        occupied[i >> 6] |= 1 << UInt64(i & 63)
                        added += 1
                    }
                    if slots[i] < v { slots[i] = v }
                }
            }
        }
    }

    /// Merges `n` sparse entries of this precision from their Rice-coded bits, which must be
    /// all of `bits` (a rollup part's sparse sketch as held in memory).
    mutating func merge(sparseRiceCoded bits: UnsafeRawBufferPointer, entries n: Int) throws(TallyError) {
        guard precision == HyperLogLog.defaultPrecision else {
            throw TallyError(.corruption, "HyperLogLog union of precision \(precision) given a rollup part's sparse sketch (precision \(HyperLogLog.defaultPrecision))")
        }
        let used = try merge(riceCoded: bits, entries: n)
        guard used == bits.count else { throw TallyError(.corruption, "HyperLogLog sketch has \(bits.count - used) trailing bytes") }
    }

    /// Merges a serialized sketch without building it: dense ones (kind 4) straight into the
    /// registers, Rice-coded sparse ones (kind 3) entry by entry; older kinds through
    /// `HyperLogLog(serialized:)`. Checked as strictly as that initializer.
    mutating func merge(serialized bytes: UnsafeRawBufferPointer) throws(TallyError) {
        guard bytes.count >= 2, bytes[0] == 3 || bytes[0] == 4 else {
            let sketch = try HyperLogLog(serialized: bytes)
            guard sketch.precision == precision else {
                throw TallyError(.corruption, "HyperLogLog sketch has precision \(sketch.precision), the others \(precision)")
            }
            merge(sketch)
            return
        }
        guard Int(bytes[1]) == precision else {
            throw TallyError(.corruption, "HyperLogLog sketch has precision \(bytes[1]), the others \(precision)")
        }
        if bytes[0] == 3 && precision > HyperLogLog.sparsePrecision {
            throw TallyError(.corruption, "HyperLogLog sparse sketch has precision \(precision), above the sparse precision \(HyperLogLog.sparsePrecision)")
        }
        var r = ByteReader(bytes)
        r.offset = 2
        if bytes[0] == 4 {
            if !isDense { densify() }
            try registers.withUnsafeMutableBufferPointer { (out) throws(TallyError) in
                try HyperLogLog.mergeDense(&r, precision: precision, into: out)
            }
        } else {
            let n: Int
            do { n = try r.count(limit: 1 << precision) } catch {
                throw TallyError(.corruption, "HyperLogLog sketch is truncated: \(error)")
            }
            let used = try merge(riceCoded: UnsafeRawBufferPointer(rebasing: bytes[r.offset...]), entries: n)
            r.offset += used
            guard r.isAtEnd else { throw TallyError(.corruption, "HyperLogLog sketch has \(r.remaining) trailing bytes") }
            return
        }
        guard r.isAtEnd else { throw TallyError(.corruption, "HyperLogLog sketch has \(r.remaining) trailing bytes") }
    }

    /// The sparse entries in index order, each slot emptied.
    private mutating func drain(_ body: (UInt32) -> Void) {
        slots.withUnsafeMutableBufferPointer { slots in
            occupied.withUnsafeMutableBufferPointer { occupied in
                for w in 0..<occupied.count where occupied[w] != 0 {
                    var bits = occupied[w]
                    while bits != 0 {
                        let i = w &* 64 &+ bits.trailingZeroBitCount
                        body(UInt32(i) << 6 | UInt32(slots[i] &- 1))
                        slots[i] = 0
                        bits &= bits &- 1
                    }
                    occupied[w] = 0
                }
            }
        }
        entries = 0
    }

    private mutating func densify() {
        defer { isDense = true }
        if shadowing {
            // The registers hold every entry already: the slots are only emptied.
            shadowing = false
            slots.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
            occupied.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
            entries = 0
            return
        }
        var r = [UInt8](repeating: 0, count: 1 << precision)
        let p = precision
        r.withUnsafeMutableBufferPointer { r in
            drain { e in
                let (i, rank) = HyperLogLog.denseSlot(e, precision: p)
                if r[i] < rank { r[i] = rank }
            }
        }
        registers = r
    }

    /// Tells an empty union about how many entries its inputs hold together (an upper bound of
    /// its own): past `sparseLimit`, sparse entries also raise registers from the start, so
    /// turning dense costs no conversion. The result is the same either way.
    mutating func expect(entries bound: Int) {
        guard !isDense, !shadowing, entries == 0, bound > shape.sparseLimit else { return }
        registers = [UInt8](repeating: 0, count: 1 << precision)
        shadowing = true
    }

    /// The union of everything merged since the last `take()`.
    mutating func take() -> HyperLogLog {
        if isDense {
            defer {
                registers = []
                isDense = false
            }
            return HyperLogLog(precision: precision, registers: registers)
        }
        if shadowing {
            registers = []
            shadowing = false
        }
        var sparse: [UInt32] = []
        sparse.reserveCapacity(entries)
        drain { sparse.append($0) }
        return HyperLogLog(precision: precision, sparse: sparse)
    }
}

extension HyperLogLog {
    /// The union of serialized sketches as a query makes it (`SketchUnion`), for tests that
    /// compare it with merging them one by one.
    @_spi(Testing) public static func unionForTesting(_ sketches: [[UInt8]], precision: Int = defaultPrecision)
        throws(TallyError) -> HyperLogLog
    {
        try unionsForTesting([(sketches, nil)], precision: precision)[0]
    }

    /// Unions of several sets of serialized sketches made by one reused `SketchUnion`, each
    /// told `expecting` entries first (`SketchUnion.expect`; nil: not told).
    @_spi(Testing) public static func unionsForTesting(_ sets: [(sketches: [[UInt8]], expecting: Int?)],
                                                       precision: Int = defaultPrecision) throws(TallyError) -> [HyperLogLog]
    {
        var union = SketchUnion(precision: precision)
        var out: [HyperLogLog] = []
        for set in sets {
            if let bound = set.expecting { union.expect(entries: bound) }
            for bytes in set.sketches {
                do {
                    try bytes.withUnsafeBytes { try union.merge(serialized: $0) }
                } catch let e as TallyError {
                    throw e
                } catch {
                    throw TallyError(.corruption, "\(error)")
                }
            }
            out.append(union.take())
        }
        return out
    }

    /// `sortEntries`, for tests.
    @_spi(Testing) public static func sortEntriesForTesting(_ entries: [UInt32]) -> [UInt32] {
        var a = entries
        sortEntries(&a)
        return a
    }
}
