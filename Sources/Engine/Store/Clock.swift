#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Wall-clock time, injected so flush-by-age, dedupe windows and TTL are testable
/// without sleeping.
public protocol TallyClock: Sendable {
    /// Milliseconds since the Unix epoch, UTC.
    func nowMillis() -> Int64
}

public struct SystemClock: TallyClock {
    public init() {}
    public func nowMillis() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
