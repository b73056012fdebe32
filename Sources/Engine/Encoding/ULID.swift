/// Generates canonical ULIDs: a 48-bit millisecond timestamp then 80 random bits, written as
/// 26 uppercase Crockford base32 characters (github.com/ulid/spec), for ids the server assigns
/// (event_id when the client sent none). They sort by time as text and as `IdentifierForm.ulid`
/// binary, and `IdentifierCodec.detect` recognizes every one.
///
/// ```swift
/// var ids = ULIDGenerator()
/// let id = ids.next(ms: clock.nowMs)  // "01J9Z3K8Q4W5E6R7T8Y9V0A1B2"-shaped
/// ```
///
/// Monotonic, as the spec's monotonic factory: a ULID for the same millisecond as the previous
/// one reuses its random part plus one, so ids from one generator are strictly increasing.
/// Like the spec's reference implementation, a time earlier than the previous one (a clock
/// stepping back) is treated as the previous time, keeping the order. The spec lets the
/// increment fail after 2^80 ids in one millisecond; this generator instead moves to the
/// next millisecond with fresh randomness, which keeps the order and never fails.
///
/// Time is passed in (DESIGN.md: time is injected) and randomness comes from `RNG`, so tests
/// can use a seeded generator. Not thread-safe: a value, one per writer. The methods are
/// `@inlinable` so they are specialized for the caller's `RNG` (unspecialized, every call
/// paid for a generic metadata lookup).
public struct ULIDGenerator<RNG: RandomNumberGenerator> {
    /// The largest timestamp a ULID holds: 2^48 - 1 ms, in the year 10889 (ULID spec).
    @inlinable public static var maxTimestamp: Int64 { (1 << 48) - 1 }

    @usableFromInline var rng: RNG
    /// Timestamp of the previous ULID, -1 before the first.
    @usableFromInline var lastMs: Int64 = -1
    /// The previous ULID's 80 random bits: the top 16 and the low 64.
    @usableFromInline var randomHi: UInt16 = 0
    @usableFromInline var randomLo: UInt64 = 0

    /// A generator drawing its random bits from `rng`.
    public init(using rng: RNG) {
        self.rng = rng
    }

    /// Appends the next ULID's 26 characters for time `ms` to `text`.
    ///
    /// - Parameter ms: milliseconds since the Unix epoch, 0...`maxTimestamp`.
    @inlinable public mutating func next(ms: Int64, into text: inout [UInt8]) {
        withUnsafeTemporaryAllocation(byteCount: IdentifierCodec.binaryLength, alignment: 8) { binary in
            next(ms: ms, binaryInto: binary.baseAddress!)
            IdentifierCodec.decode(UnsafeRawBufferPointer(binary), form: .ulid, into: &text)
        }
    }

    /// The next ULID for time `ms`, as a String.
    @inlinable public mutating func next(ms: Int64) -> String {
        var text: [UInt8] = []
        text.reserveCapacity(26)
        next(ms: ms, into: &text)
        return String(decoding: text, as: UTF8.self)
    }

    /// Writes the next ULID for time `ms` in its 16-byte binary form
    /// (`IdentifierForm.ulid`: big-endian timestamp, then the random bits) to `out`.
    @inlinable public mutating func next(ms: Int64, binaryInto out: UnsafeMutableRawPointer) {
        precondition(ms >= 0 && ms <= Self.maxTimestamp, "ULID timestamp out of range")
        if ms > lastMs {
            fresh(ms)
        } else {
            // Same millisecond (or the clock stepped back): previous random part + 1.
            let (lo, carry) = randomLo.addingReportingOverflow(1)
            randomLo = lo
            if carry {
                let (hi, overflow) = randomHi.addingReportingOverflow(1)
                randomHi = hi
                if overflow {
                    // All 80 bits were ones: move to the next millisecond instead of failing.
                    precondition(lastMs < Self.maxTimestamp, "ULID space exhausted")
                    fresh(lastMs + 1)
                }
            }
        }
        // 48-bit timestamp and the top 16 random bits fill the first 8 bytes.
        let hi = (UInt64(lastMs) &<< 16) | UInt64(randomHi)
        out.storeBytes(of: hi.bigEndian, toByteOffset: 0, as: UInt64.self)
        out.storeBytes(of: randomLo.bigEndian, toByteOffset: 8, as: UInt64.self)
    }

    @inlinable mutating func fresh(_ ms: Int64) {
        lastMs = ms
        randomHi = UInt16(truncatingIfNeeded: rng.next() as UInt64)
        randomLo = rng.next()
    }
}

extension ULIDGenerator where RNG == SystemRandomNumberGenerator {
    /// A generator drawing from the system's cryptographically secure random source.
    public init() {
        self.init(using: SystemRandomNumberGenerator())
    }
}

extension ULIDGenerator: Sendable where RNG: Sendable {}
