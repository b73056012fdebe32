import NIOConcurrencyHelpers

/// Classifications of recently seen user agents, shared by every request of the server. A
/// site's traffic comes from a few hundred distinct user agents; classifying one runs ~100
/// substring rules (~5–10 µs), looking it up is a hash of its bytes. Under
/// `tally bench ingest` a per-request cache still classified ~50 user agents per 100-event POST.
final class UserAgentCache: Sendable {
    /// Entries kept before the cache starts over: ~10k user agents of ~150 bytes is ~2–3 MiB,
    /// and real traffic's long tail of rare user agents would otherwise grow it without bound.
    static let capacity = 10_000

    private let entries = NIOLockedValueBox<[String: UserAgentClassifier.Result]>([:])

    /// The cached classification of `userAgent`, or `classify`'s, remembered (run outside the lock).
    func result(for userAgent: String, classify: (String) -> UserAgentClassifier.Result)
        -> UserAgentClassifier.Result
    {
        if let hit = entries.withLockedValue({ $0[userAgent] }) { return hit }
        let result = classify(userAgent)
        entries.withLockedValue { entries in
            if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[userAgent] = result
        }
        return result
    }
}
