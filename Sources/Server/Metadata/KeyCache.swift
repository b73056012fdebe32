import Crypto
import Synchronization

/// Recently authenticated keys, so the ingest path does not read SQLite on every request.
///
/// Uncached, `authenticate` costs about 30 µs (a `DatabasePool` read, release build, this 2-core
/// machine), 9% of a core at 3,000 requests/s; a hit here costs under 1 µs. Only keys that
/// authenticated are kept (a wrong key always reaches SQLite, so a new key works at once), by
/// their SHA-256, never their text.
final class KeyCache: Sendable {
    /// How long an entry is trusted. A revocation in this process clears the cache at once; one
    /// made by another process (`tally key revoke` while `tally serve` runs) counts within this
    /// time. One second keeps that delay below what a person notices, and costs one SQLite read
    /// per key per second.
    static let lifetimeMillis: Int64 = 1000
    /// Keys held at most; past it the cache starts over. A self-hosted install has a few keys
    /// per property; 4096 entries are about 1 MB.
    static let capacity = 4096

    struct Entry {
        var property: Property
        var kind: APIKey.Kind
        var expires: Int64
    }

    /// A SHA-256 digest as a plain value (swift-crypto's digest type is not `Sendable`).
    struct Digest: Hashable, Sendable {
        var words: (UInt64, UInt64, UInt64, UInt64)

        init(_ digest: SHA256Digest) {
            words = digest.withUnsafeBytes { b in
                (b.loadUnaligned(fromByteOffset: 0, as: UInt64.self), b.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                 b.loadUnaligned(fromByteOffset: 16, as: UInt64.self), b.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
            }
        }

        static func == (l: Digest, r: Digest) -> Bool { l.words == r.words }

        func hash(into h: inout Hasher) {
            h.combine(words.0)
            h.combine(words.1)
            h.combine(words.2)
            h.combine(words.3)
        }
    }

    private struct State {
        var entries: [Digest: Entry] = [:]
        /// Counts `removeAll` calls, so a lookup that read SQLite before a revocation cannot
        /// put its stale answer back afterwards.
        var generation = 0
    }

    private let state = Mutex(State())

    var generation: Int { state.withLock { $0.generation } }

    /// The cached property and kind of the key with this digest, if the entry is fresh at `now`.
    func lookup(_ digest: Digest, now: Int64) -> Entry? {
        state.withLock { state in
            guard let e = state.entries[digest] else { return nil }
            guard now < e.expires else {
                state.entries[digest] = nil
                return nil
            }
            return e
        }
    }

    /// Remembers a key that authenticated, unless the cache was cleared since `generation`.
    func insert(_ digest: Digest, property: Property, kind: APIKey.Kind, now: Int64, generation: Int) {
        state.withLock { state in
            guard state.generation == generation else { return }
            if state.entries.count >= Self.capacity { state.entries.removeAll(keepingCapacity: true) }
            state.entries[digest] = Entry(property: property, kind: kind, expires: now + Self.lifetimeMillis)
        }
    }

    func removeAll() {
        state.withLock { state in
            state.entries.removeAll()
            state.generation += 1
        }
    }
}
