import Synchronization

/// The decoded rows of rollup parts kept in memory, up to a byte budget, least recently used
/// going first (`RollupPart.loadRows`). Rows a query or merge is using stay alive while it
/// does, whatever the cache drops: the budget bounds what is kept between uses.
final class RollupRowsCache: Sendable {
    struct Counters: Sendable, Equatable {
        /// Bytes of the rows kept now, and how many parts' rows.
        var bytes = 0
        var parts = 0
        /// Rows read and decoded from a part's file: a part opened with its header only, or
        /// dropped from the cache since, or read by a merge (which keeps none).
        var loads = 0
        var hits = 0
    }

    private struct Entry {
        let rows: RollupRows
        var used: UInt64
    }

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        var tick: UInt64 = 0
        var counters = Counters()
    }

    /// 64 MiB: the every-query set of `tally bench query` on the 10M-event generated store (30
    /// and 92 days of seven rollups) ran at the same p50s as with every part held, at 299
    /// instead of 403 MB peak RSS (BENCHMARKS.md, 2026-12-07, ninth session).
    static let defaultBudget = 64 << 20

    let budget: Int
    private let state = Mutex(State())

    init(budget: Int) { self.budget = max(0, budget) }

    var counters: Counters {
        state.withLock { st in
            var c = st.counters
            c.parts = st.entries.count
            return c
        }
    }

    func get(_ key: ObjectIdentifier) -> RollupRows? {
        state.withLock { st in
            guard var e = st.entries[key] else { return nil }
            st.tick += 1
            e.used = st.tick
            st.entries[key] = e
            st.counters.hits += 1
            return e.rows
        }
    }

    /// Keeps `rows` for the part `key`, then drops the least recently used others while the
    /// cache is over its budget (the newest stays even alone over it: it is about to be used).
    /// With `keep` false, only counts a load.
    func put(_ key: ObjectIdentifier, _ rows: RollupRows, loaded: Bool = false, keep: Bool = true) {
        // Dropped rows are released after the lock (freeing them may take a while).
        var dropped: [RollupRows] = []
        state.withLock { st in
            if loaded { st.counters.loads += 1 }
            guard keep else { return }
            st.tick += 1
            if let old = st.entries[key] { st.counters.bytes -= old.rows.byteCount }
            st.entries[key] = Entry(rows: rows, used: st.tick)
            st.counters.bytes += rows.byteCount
            while st.counters.bytes > budget, st.entries.count > 1 {
                var victim: ObjectIdentifier?
                var oldest = UInt64.max
                for (k, e) in st.entries where k != key && e.used < oldest {
                    oldest = e.used
                    victim = k
                }
                guard let victim, let e = st.entries.removeValue(forKey: victim) else { break }
                st.counters.bytes -= e.rows.byteCount
                dropped.append(e.rows)
            }
        }
        dropped.removeAll()
    }

    /// Drops every entry (their rows are freed after the lock).
    func removeAll() {
        _ = state.withLock { st -> [ObjectIdentifier: Entry] in
            let entries = st.entries
            st.entries = [:]
            st.counters.bytes = 0
            return entries
        }
    }

    func remove(_ key: ObjectIdentifier) {
        // The entry is returned so that its rows are freed after the lock.
        _ = state.withLock { st -> Entry? in
            guard let e = st.entries.removeValue(forKey: key) else { return nil }
            st.counters.bytes -= e.rows.byteCount
            return e
        }
    }
}
