import Synchronization

/// Token buckets keyed by write key or client address: `perMinute` requests a minute, with
/// bursts up to the same number. 0 disables a limit.
final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: Int64
    }

    let perMinute: Int
    private let buckets = Mutex<[String: Bucket]>([:])
    /// Buckets untouched this long are dropped when the table grows (bounded memory).
    private static let idleMs: Int64 = 10 * 60_000

    init(perMinute: Int) {
        self.perMinute = perMinute
    }

    /// Takes a token for `key` at `now` (ms); when none is left, the seconds until one is.
    func take(_ key: String, now: Int64) -> Int? {
        guard perMinute > 0 else { return nil }
        let capacity = Double(perMinute)
        let perMs = capacity / 60_000
        return buckets.withLock { table in
            if table.count > 100_000 { table = table.filter { now - $0.value.updated < Self.idleMs } }
            var b = table[key] ?? Bucket(tokens: capacity, updated: now)
            b.tokens = min(capacity, b.tokens + Double(max(0, now - b.updated)) * perMs)
            b.updated = now
            defer { table[key] = b }
            if b.tokens >= 1 {
                b.tokens -= 1
                return nil
            }
            return max(1, Int(((1 - b.tokens) / perMs / 1000).rounded(.up)))
        }
    }
}
