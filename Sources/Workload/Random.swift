// Deterministic randomness for the workload generator.
//
// Everything here uses only integer arithmetic and IEEE-754 basic operations (+ - * / and
// sqrt), never the platform's libm, so a seed produces the same bytes on every platform.

/// SplitMix64 (Steele, Lea, Flood 2014). Used to seed xoshiro and as a stateless hash.
@usableFromInline struct SplitMix64 {
    @usableFromInline var state: UInt64

    @inlinable init(seed: UInt64) { state = seed }

    @inlinable mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return SplitMix64.mix(state)
    }

    /// The SplitMix64 output function: a bijective 64-bit mixer.
    @inlinable static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A hash of a seed and up to three values (independent streams for catalogue parts).
    @inlinable static func hash(_ a: UInt64, _ b: UInt64 = 0, _ c: UInt64 = 0, _ d: UInt64 = 0) -> UInt64 {
        var h = mix(a &+ 0x9E37_79B9_7F4A_7C15)
        h = mix(h ^ (b &* 0xD6E8_FEB8_6659_FD93) &+ 0x2545_F491_4F6C_DD1D)
        h = mix(h ^ (c &* 0xA076_1D64_78BD_642F) &+ 0x1D8E_4E27_C47D_124F)
        h = mix(h ^ (d &* 0xE703_7ED1_A0B4_28DB) &+ 0x8EBC_6AF0_9C88_C6E3)
        return h
    }
}

/// xoshiro256** 1.0 (Blackman, Vigna 2018): the generator's data stream.
public struct Xoshiro256: Sendable {
    @usableFromInline var s0: UInt64
    @usableFromInline var s1: UInt64
    @usableFromInline var s2: UInt64
    @usableFromInline var s3: UInt64

    public init(seed: UInt64) {
        var sm = SplitMix64(seed: seed)
        s0 = sm.next()
        s1 = sm.next()
        s2 = sm.next()
        s3 = sm.next()
    }

    @inlinable @inline(__always) static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 {
        (x << k) | (x >> (64 &- k))
    }

    @inlinable @inline(__always) public mutating func next() -> UInt64 {
        let result = Xoshiro256.rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = Xoshiro256.rotl(s3, 45)
        return result
    }

    /// Uniform in [0, 1) with 53 random bits.
    @inlinable @inline(__always) public mutating func uniform() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Uniform integer in 0..<n (n > 0), by multiply-high (bias below 2^-32 for our n).
    @inlinable @inline(__always) public mutating func below(_ n: Int) -> Int {
        Int(truncatingIfNeeded: UInt64(truncatingIfNeeded: n).multipliedFullWidth(by: next()).high)
    }

    /// Uniform integer in lo...hi.
    @inlinable @inline(__always) public mutating func range(_ lo: Int, _ hi: Int) -> Int {
        lo + below(hi - lo + 1)
    }

    /// True with probability p.
    @inlinable @inline(__always) public mutating func chance(_ p: Double) -> Bool {
        uniform() < p
    }

    /// A standard normal variate (Marsaglia's polar method).
    @inlinable public mutating func normal() -> Double {
        while true {
            let u = uniform() * 2 - 1
            let v = uniform() * 2 - 1
            let s = u * u + v * v
            if s > 0 && s < 1 {
                return u * (-2 * DetMath.log(s) / s).squareRoot()
            }
        }
    }

    /// A log-normal variate with the given median and shape.
    @inlinable public mutating func logNormal(median: Double, sigma: Double) -> Double {
        median * DetMath.exp(sigma * normal())
    }
}

/// `exp`, `log` and `pow` from basic IEEE operations only, so results do not depend on the
/// platform's libm. Accurate to about 1e-15 relative, which is all a data generator needs.
public enum DetMath {
    @usableFromInline static var ln2Hi: Double { 6.93147180369123816490e-01 }
    @usableFromInline static var ln2Lo: Double { 1.90821492927058770002e-10 }
    @usableFromInline static var ln2: Double { 0.6931471805599453 }

    /// Natural logarithm of a positive finite number.
    @inlinable public static func log(_ x: Double) -> Double {
        precondition(x > 0 && x.isFinite, "DetMath.log of \(x)")
        var e = Int(x.exponent)
        var m = x.significand  // [1, 2)
        if m > 1.4142135623730951 {
            m *= 0.5
            e += 1
        }
        // log(m) = 2 atanh(s), s = (m-1)/(m+1), |s| <= 0.1716.
        let s = (m - 1) / (m + 1)
        let s2 = s * s
        var p = 1.0 / 25
        p = p * s2 + 1.0 / 23
        p = p * s2 + 1.0 / 21
        p = p * s2 + 1.0 / 19
        p = p * s2 + 1.0 / 17
        p = p * s2 + 1.0 / 15
        p = p * s2 + 1.0 / 13
        p = p * s2 + 1.0 / 11
        p = p * s2 + 1.0 / 9
        p = p * s2 + 1.0 / 7
        p = p * s2 + 1.0 / 5
        p = p * s2 + 1.0 / 3
        p = p * s2 + 1
        let lm = 2 * s * p
        let de = Double(e)
        return de * ln2Hi + (lm + de * ln2Lo)
    }

    /// e^x for finite x (underflows to 0 below about -745, saturates above 709).
    @inlinable public static func exp(_ x: Double) -> Double {
        if x > 709 { return .infinity }
        if x < -745 { return 0 }
        let k = (x / ln2 + (x < 0 ? -0.5 : 0.5)).rounded(.towardZero)
        let r = (x - k * ln2Hi) - k * ln2Lo  // |r| <= ~0.347
        // Taylor series to r^16 (error < 1e-17 for |r| < 0.35).
        var p = 1.0 / 20_922_789_888_000  // 1/16!
        p = p * r + 1.0 / 1_307_674_368_000
        p = p * r + 1.0 / 87_178_291_200
        p = p * r + 1.0 / 6_227_020_800
        p = p * r + 1.0 / 479_001_600
        p = p * r + 1.0 / 39_916_800
        p = p * r + 1.0 / 3_628_800
        p = p * r + 1.0 / 362_880
        p = p * r + 1.0 / 40320
        p = p * r + 1.0 / 5040
        p = p * r + 1.0 / 720
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        let ki = Int(k)
        if ki < -1000 {
            return p * Double(sign: .plus, exponent: -1000, significand: 1)
                * Double(sign: .plus, exponent: ki + 1000, significand: 1)
        }
        return p * Double(sign: .plus, exponent: ki, significand: 1)
    }

    /// x^y for x > 0.
    @inlinable public static func pow(_ x: Double, _ y: Double) -> Double {
        if y == 0 { return 1 }
        if y == 1 { return x }
        return exp(y * log(x))
    }
}

/// Walker/Vose alias table: O(1) sampling from a fixed discrete distribution with one
/// 64-bit random draw and integer comparisons only.
public struct AliasTable: Sendable {
    @usableFromInline var threshold: [UInt32]
    @usableFromInline var alias: [Int32]
    public let probabilities: [Double]

    public var count: Int { threshold.count }

    public init(weights: [Double]) {
        let n = weights.count
        precondition(n > 0 && n < Int(Int32.max), "alias table needs at least one weight")
        let total = weights.reduce(0, +)
        precondition(total > 0, "alias table weights sum to zero")
        probabilities = weights.map { $0 / total }
        var scaled = probabilities.map { $0 * Double(n) }
        var thr = [UInt32](repeating: UInt32.max, count: n)
        var al = [Int32](repeating: 0, count: n)
        for i in 0..<n { al[i] = Int32(i) }
        var small: [Int] = []
        var large: [Int] = []
        for i in 0..<n { if scaled[i] < 1 { small.append(i) } else { large.append(i) } }
        while !small.isEmpty && !large.isEmpty {
            let s = small.removeLast()
            let l = large.removeLast()
            thr[s] = UInt32(min(4_294_967_295.0, (scaled[s] * 4_294_967_296.0).rounded(.down)))
            al[s] = Int32(l)
            scaled[l] = (scaled[l] + scaled[s]) - 1
            if scaled[l] < 1 { small.append(l) } else { large.append(l) }
        }
        // Leftovers are 1 up to rounding: always take themselves.
        for i in small {
            thr[i] = UInt32.max
            al[i] = Int32(i)
        }
        for i in large {
            thr[i] = UInt32.max
            al[i] = Int32(i)
        }
        threshold = thr
        alias = al
    }

    /// Zipf(-Mandelbrot) weights 1/(k+1+q)^s over n ranks.
    public init(zipf n: Int, exponent s: Double, offset q: Double = 0) {
        self.init(weights: AliasTable.zipfWeights(n, exponent: s, offset: q))
    }

    public static func zipfWeights(_ n: Int, exponent s: Double, offset q: Double = 0) -> [Double] {
        (0..<n).map { 1 / DetMath.pow(Double($0) + 1 + q, s) }
    }

    @inlinable @inline(__always) public func sample(_ rng: inout Xoshiro256) -> Int {
        let r = rng.next()
        let n = UInt64(threshold.count)
        let i = Int(truncatingIfNeeded: ((r >> 32) &* n) >> 32)
        let frac = UInt32(truncatingIfNeeded: r)
        return threshold.withUnsafeBufferPointer { t in
            frac < t[i] ? i : Int(alias.withUnsafeBufferPointer { $0[i] })
        }
    }
}

/// A power-law ("Zipf-Mandelbrot") sampler over 0..<n without a table: the inverse CDF of the
/// continuous density (x+q)^-s on [0, n), floored. For very large populations (visitors).
public struct PowerLawSampler: Sendable {
    public let n: Int
    let s: Double
    let q: Double
    let a: Double
    let b: Double

    public init(count n: Int, exponent s: Double, offset q: Double) {
        precondition(n > 0 && s != 1 && q > 0)
        self.n = n
        self.s = s
        self.q = q
        a = DetMath.pow(q, 1 - s)
        b = DetMath.pow(Double(n) + q, 1 - s)
    }

    public func sample(_ rng: inout Xoshiro256) -> Int {
        let u = rng.uniform()
        let x = DetMath.pow(a + u * (b - a), 1 / (1 - s)) - q
        return min(n - 1, max(0, Int(x)))
    }
}

/// A continuous distribution sampled by its quantile function, tabulated at 1,025 knots and
/// interpolated linearly: one random draw and no transcendental function per sample.
public struct QuantileTable: Sendable {
    @usableFromInline let knots: [Double]

    /// Tabulates `quantile(p)` for p in (0, 1); the extreme knots use p = 1e-6 and 1 - 1e-6.
    public init(_ quantile: (Double) -> Double) {
        knots = (0...1024).map { i in quantile(min(max(Double(i) / 1024, 1e-6), 1 - 1e-6)) }
    }

    /// A log-normal distribution with the given median and shape.
    public init(logNormalMedian median: Double, sigma: Double) {
        self.init { p in median * DetMath.exp(sigma * QuantileTable.normalQuantile(p)) }
    }

    @inlinable @inline(__always) public func sample(_ rng: inout Xoshiro256) -> Double {
        let r = rng.next()
        let i = Int(truncatingIfNeeded: r >> 54)
        let frac = Double((r >> 22) & 0xFFFF_FFFF) * 0x1.0p-32
        return knots.withUnsafeBufferPointer { k in k[i] + (k[i &+ 1] - k[i]) * frac }
    }

    /// The standard normal quantile function (P. J. Acklam's rational approximation,
    /// relative error below 1.2e-9).
    public static func normalQuantile(_ p: Double) -> Double {
        let a = [
            -3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
            -3.066479806614716e+01, 2.506628277459239e+00,
        ]
        let b = [
            -5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
            -1.328068155288572e+01,
        ]
        let c = [
            -7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
            4.374664141464968e+00, 2.938163982698783e+00,
        ]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        let low = 0.02425
        if p < low {
            let q = (-2 * DetMath.log(p)).squareRoot()
            return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        if p > 1 - low {
            let q = (-2 * DetMath.log(1 - p)).squareRoot()
            return -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        let q = p - 0.5
        let r = q * q
        return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    }
}
