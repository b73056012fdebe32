@_spi(Testing) import Engine
import Foundation
import TallyTestSupport
import Testing

@Suite("Event store")
struct StoreTests {
    static let day: Int64 = 86_400_000
    static let t0: Int64 = 1_785_542_400_000  // 2026-08-01T00:00:00Z

    func open(_ dir: TemporaryDirectory, clock: ManualClock = ManualClock(), granule: Int = 4,
              dedupeSealKeys: Int? = nil) throws -> EventStore {
        var o = StoreOptions(directory: dir.path)
        o.backgroundFlush = false
        o.clock = clock
        o.granuleRows = granule
        if let dedupeSealKeys { o.dedupeSealKeys = dedupeSealKeys }
        return try EventStore(options: o)
    }

    /// Ingests `ids` (received now, occurred at `at`) in batches of `chunk`, each accepted whole.
    func ingestNew(_ store: EventStore, _ ids: [String], chunk: Int, at: Int64,
                   sourceLocation: SourceLocation = #_sourceLocation) async throws {
        for start in stride(from: 0, to: ids.count, by: chunk) {
            let r = try await store.ingest(.of(ids[start..<min(ids.count, start + chunk)].map { EventRow(at: at, id: $0) }))
            #expect(r.accepted == min(chunk, ids.count - start) && r.duplicates == 0, sourceLocation: sourceLocation)
        }
    }

    /// Every `step`-th of `old` again, each beside a new id, in one batch: exactly the old ones
    /// are refused. Returns the new ids.
    func expectOldRefused(_ store: EventStore, _ old: [String], step: Int, at: Int64,
                          sourceLocation: SourceLocation = #_sourceLocation) async throws -> [String] {
        let again = stride(from: 0, to: old.count, by: step).map { old[$0] }
        let fresh = (0..<again.count).map { "n\($0)" }
        let mixed = zip(again, fresh).flatMap { [EventRow(at: at, id: $0), EventRow(at: at, id: $1)] }
        let r = try await store.ingest(.of(mixed))
        #expect(r.duplicates == again.count && r.accepted == fresh.count, sourceLocation: sourceLocation)
        #expect(r.duplicateRows == (0..<again.count).map { 2 * $0 }, sourceLocation: sourceLocation)
        return fresh
    }

    @Test("ingested events are visible before and after a flush and after reopening")
    func roundTrip() async throws {
        let dir = TemporaryDirectory()
        let rows = (0..<25).map { i in
            EventRow(site: i % 2 == 0 ? "a.com" : "b.com", at: Self.t0 + Int64(i) * 3_600_000, visitor: "v\(i % 5)",
                     id: "e\(i)", path: "/p/\(i)")
        }
        var store = try open(dir)
        let outcome = try await store.ingest(.of(rows))
        #expect(outcome.accepted == 25)
        #expect(try store.snapshot().count(ScanRequest(site: "a.com")).count == 13)
        try store.flush()
        #expect(store.status.parts == 1)
        #expect(try store.snapshot().count(ScanRequest(site: "a.com")).count == 13)
        try store.close()
        store = try open(dir)
        var paths: [String] = []
        try store.snapshot().scan(ScanRequest(site: "b.com", columns: [.pagePath])) { b in
            for i in 0..<b.count { paths.append(b[string: .pagePath].string(at: i)!) }
        }
        #expect(paths.sorted() == (0..<25).filter { $0 % 2 == 1 }.map { "/p/\($0)" }.sorted())
        try store.close()
    }

    @Test("a read-only open sees parts and the unflushed WAL, refuses writes, and leaves the WAL to the next writer")
    func readOnly() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock(Self.t0)
        var store = try open(dir, clock: clock)
        _ = try await store.ingest(.of([EventRow(at: Self.t0, id: "p1"), EventRow(at: Self.t0 + 1, id: "p2")]))
        try store.flush()
        _ = try await store.ingest(.of([EventRow(at: Self.t0 + 2, id: "w1")]))
        try store.abandonForTesting()  // as a crash: w1 only in the WAL
        var options = StoreOptions(directory: dir.path)
        options.backgroundFlush = false
        options.clock = clock
        options.readOnly = true
        for _ in 0..<2 {
            let reader = try EventStore(options: options)
            #expect(reader.snapshot().rowCount == 3)
            #expect(reader.status.dedupeKeys == 0)
            await #expect(throws: TallyError.self) { try await reader.ingest(.of([EventRow(at: Self.t0, id: "x")])) }
            #expect(throws: TallyError.self) { try reader.flush() }
            #expect(throws: TallyError.self) { try reader.mergeNow() }
            try reader.close()
        }
        #expect(store.status.parts == 1)
        // The writer after it replays w1 and still knows every id as a duplicate.
        store = try open(dir, clock: clock)
        #expect(store.snapshot().rowCount == 3)
        let again = try await store.ingest(.of([EventRow(at: Self.t0 + 2, id: "w1"), EventRow(at: Self.t0, id: "p1")]))
        #expect(again.duplicates == 2)
        try store.close()
    }

    @Test("a buffer over 1¼ flushes is behind: waitForRoom waits until a flush takes it, or gives up at its limit")
    func waitForRoom() async throws {
        let dir = TemporaryDirectory()
        var o = StoreOptions(directory: dir.path)
        o.backgroundFlush = false
        o.flushBytes = 1  // one buffered event is over 1¼ of it
        let store = try EventStore(options: o)
        #expect(!store.isBehind)
        #expect(await store.waitForRoom(upTo: .zero))
        _ = try await store.ingest(.of([EventRow(at: Self.t0, id: "a")]))
        #expect(store.isBehind && store.isOverloaded)
        // Nothing flushes: it gives up.
        #expect(!(await store.waitForRoom(upTo: .milliseconds(20))))
        #expect(store.waitingForRoom == 0)
        // A flush while it waits: it returns true.
        let waiter = Task { await store.waitForRoom(upTo: .seconds(600)) }
        while store.waitingForRoom == 0 { try await Task.sleep(for: .milliseconds(1)) }
        try store.flush()
        #expect(await waiter.value)
        #expect(!store.isBehind && store.waitingForRoom == 0)
        try store.close()
    }

    @Test("background workers: results in order from many callers at once, with calls nested in calls")
    func backgroundWorkers() async throws {
        let results = await withTaskGroup(of: [Int].self) { group in
            for caller in 0..<6 {
                group.addTask {
                    parallelMapForTesting(Array(0..<200)) { i in
                        // Nested: each item maps a small range itself.
                        parallelMapForTesting(Array(0..<(i % 5))) { $0 + 1 }.reduce(caller * 1_000_000 + i * 10, +)
                    }
                }
            }
            var all: [[Int]] = []
            for await r in group { all.append(r) }
            return all.sorted { $0[0] < $1[0] }
        }
        #expect(results.count == 6)
        for (caller, r) in results.enumerated() {
            #expect(r == (0..<200).map { i in caller * 1_000_000 + i * 10 + (0..<(i % 5)).reduce(0) { $0 + $1 + 1 } })
        }
    }

    @Test("a retried event is refused as a duplicate, also after a restart")
    func dedupe() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock(Self.t0)
        var store = try open(dir, clock: clock)
        let first = try await store.ingest(.of([EventRow(at: Self.t0, id: "x1"), EventRow(at: Self.t0, id: "x1")]))
        #expect(first.accepted == 1 && first.duplicates == 1)
        try store.close()
        store = try open(dir, clock: clock)
        let again = try await store.ingest(.of([EventRow(at: Self.t0, id: "x1"), EventRow(at: Self.t0, id: "x2")]))
        #expect(again.accepted == 1 && again.duplicates == 1 && again.duplicateRows == [0])
        try store.flush()
        try store.close()
        store = try open(dir, clock: clock)
        let third = try await store.ingest(.of([EventRow(at: Self.t0, id: "x2")]))
        #expect(third.duplicates == 1)
        #expect(store.snapshot().rowCount == 2)
        try store.close()
    }

    @Test("dedupe holds up past many growths of its tables: 50,000 ids, each refused once more, none lost")
    func dedupeAtVolume() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock(Self.t0)
        let store = try open(dir, clock: clock, granule: 8192)
        let ids = (0..<50_000).map { "e\($0)" }
        try await ingestNew(store, ids, chunk: 5_000, at: Self.t0)
        // Every third id again, beside as many new ones: exactly the old ones are refused.
        let fresh = try await expectOldRefused(store, ids, step: 3, at: Self.t0)
        #expect(store.snapshot().rowCount == ids.count + fresh.count)
        try store.close()
    }

    @Test("dedupe keys of past generations kept sorted: every old id still refused beside new ones accepted, after a restart too, and accepted again past the window")
    func dedupeSealed() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock(Self.t0)
        let day: Int64 = 86_400_000
        var store = try open(dir, clock: clock, granule: 8192)
        let old = (0..<20_000).map { "e\($0)" }
        try await ingestNew(store, old, chunk: 5_000, at: Self.t0)
        // A day later (the window's generations are 21 hours): the first generation's keys can be sealed.
        clock.advance(day)
        _ = try await store.ingest(.of([EventRow(at: Self.t0 + day, id: "d1")]))
        #expect(store.status.dedupeSealedKeys == 0)
        #expect(store.compactDedupe() == 16)
        #expect(store.compactDedupe() == 0)
        #expect(store.status.dedupeSealedKeys == old.count && store.status.dedupeKeys == old.count + 1)
        // Every third old id beside as many new ones: exactly the old ones are refused.
        let fresh = try await expectOldRefused(store, old, step: 3, at: Self.t0 + day)
        // Late keys of the sealed generation (received on the first day) go to its table, are
        // sealed beside the others, and refuse their retries.
        let late = (0..<2_000).map { "l\($0)" }
        _ = try await store.ingest(.of(late.map { EventRow(at: Self.t0, id: $0) }))
        #expect(store.status.dedupeSealedKeys == old.count)
        #expect(store.compactDedupe() > 0)
        #expect(store.status.dedupeSealedKeys == old.count + late.count)
        let lateAgain = try await store.ingest(.of((late + ["m1"]).map { EventRow(at: Self.t0, id: $0) }))
        #expect(lateAgain.duplicates == late.count && lateAgain.accepted == 1)
        try store.flush()
        try store.close()
        // Reopened: the keys come back from the parts into tables, are sealed again, still refuse.
        store = try open(dir, clock: clock, granule: 8192)
        store.compactDedupe()
        #expect(store.status.dedupeSealedKeys == old.count + late.count + 1)
        let retried = try await store.ingest(.of(old.prefix(100).map { EventRow(at: Self.t0 + day, id: $0) }))
        #expect(retried.duplicates == 100 && retried.accepted == 0)
        // Past the window the old ids are new again.
        clock.advance(8 * day)
        let later = try await store.ingest(.of(old.prefix(100).map { EventRow(at: clock.nowMillis(), id: $0) }))
        #expect(later.accepted == 100)
        #expect(store.snapshot().rowCount == old.count + 1 + fresh.count + late.count + 1 + 100)
        try store.close()
    }

    @Test("sealed dedupe keys go to files as they grow: every retry refused across many seals, after a restart (stale files deleted, keys rebuilt), and no file left once the window has passed")
    func dedupeKeysInFiles() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock(Self.t0)
        let day: Int64 = 86_400_000
        func files() -> [String] { (try? FileManager.default.contentsOfDirectory(atPath: dir.path + "/dedupe")) ?? [] }
        var store = try open(dir, clock: clock, granule: 8192, dedupeSealKeys: 64)
        let ids = (0..<30_000).map { "e\($0)" }
        try await ingestNew(store, ids, chunk: 3_000, at: Self.t0)
        #expect(store.status.dedupeFileKeys > 20_000)
        // Tables are sealed at 64 keys, whatever is sealed already: after a batch of a few new
        // keys per shard, each shard's table holds about those (sealing at a quarter of the
        // sealed keys left ~3,000 of the 31,600 in tables here).
        let few = (0..<160).map { "f\($0)" }
        #expect(try await store.ingest(.of(few.map { EventRow(at: Self.t0, id: $0) })).accepted == few.count)
        #expect(store.status.dedupeKeys - store.status.dedupeSealedKeys <= 16 * 64, "\(store.status.dedupeKeys)")
        // Runs merged four of a tier at a time (tiers below 256, 1,024 and 4,096 keys for the
        // ~1,900 keys of each of the 16 shards of the one generation): at most three per tier.
        #expect(files().count > 16 && files().count <= 16 * 3 * 3, "\(files().count) runs")
        // Every fifth id again beside as many new ones: exactly the old ones are refused.
        let fresh = try await expectOldRefused(store, ids, step: 5, at: Self.t0)
        // Ids repeated within one batch after enough new ones to hand tables to seal jobs (run
        // once the batch is through): each repeat is found in a table or in one being sealed.
        let burst = (0..<2_000).map { "b\($0)" }
        let twice = try await store.ingest(.of((burst + burst).map { EventRow(at: Self.t0, id: $0) }))
        #expect(twice.accepted == burst.count && twice.duplicateRows == Array(burst.count..<(2 * burst.count)))
        try store.flush()
        try store.close()
        // A file left by the previous process is deleted on open; the keys come back from the parts.
        #expect(FileManager.default.createFile(atPath: dir.path + "/dedupe/stale.keys", contents: Data(count: 8)))
        store = try open(dir, clock: clock, granule: 8192, dedupeSealKeys: 64)
        #expect(!files().contains("stale.keys"))
        #expect(store.status.dedupeKeys == ids.count + few.count + fresh.count + burst.count)
        #expect(store.status.dedupeFileKeys > 20_000)
        let retried = try await store.ingest(.of((ids.suffix(500) + fresh.prefix(500)).map { EventRow(at: Self.t0, id: $0) }))
        #expect(retried.duplicates == 1_000 && retried.accepted == 0)
        // A day later the generation is no longer the newest: each shard's runs are merged
        // into one (a lookup checks a filter per run).
        clock.advance(day)
        _ = try await store.ingest(.of([EventRow(at: clock.nowMillis(), id: "next-day")]))
        store.compactDedupe()
        #expect(files().count == 16)
        let again = try await store.ingest(.of((ids.prefix(300) + few.prefix(100)).map { EventRow(at: Self.t0, id: $0) }))
        #expect(again.duplicates == 400 && again.accepted == 0)
        // Past the window the generation goes with its files, and the ids are new again.
        clock.advance(8 * day)
        let later = try await store.ingest(.of(ids.prefix(100).map { EventRow(at: clock.nowMillis(), id: $0) }))
        #expect(later.accepted == 100)
        #expect(files().isEmpty)
        try store.close()
    }

    @Test("a dedupe key taken back (a failed WAL write) and accepted again stays found through later seals and run merges")
    func dedupeRemovedThenAccepted() {
        let dir = TemporaryDirectory()
        var shards = DedupeShardsForTesting(directory: dir.path, sealAt: 8)
        var rng = SeededRandom(state: 5)
        // Keys of one shard (top four bits 0): sealed into runs of 8, merged four of a tier at a time.
        func key() -> UInt64 { rng.next() >> 4 }
        var keys = (0..<8).map { _ in key() }
        #expect(keys.allSatisfy { shards.insert($0) })
        #expect(shards.runCount == 1)
        let k = keys[3]
        shards.remove(k)
        #expect(!shards.contains(k))
        let again = shards.insert(k)
        #expect(again)
        var added = 0
        for _ in 0..<200 {
            let n = key()
            keys.append(n)
            if shards.insert(n) { added += 1 }
        }
        #expect(added == 200)
        #expect(shards.runCount > 1)
        // (Still masked after its reinsertion, the key was dropped from the run that merged it.)
        #expect(shards.contains(k))
        #expect(keys.allSatisfy { shards.contains($0) })
        let retried = shards.insert(k)
        #expect(!retried)
    }

    @Test("the Bloom filter in front of a shard's sealed dedupe keys lets about 1 % of absent keys through, in every shard")
    func dedupeFilterRate() {
        var rng = SeededRandom(state: 17)
        for shard: UInt64 in [0, 7, 15] {
            // Keys of one shard share their top four bits.
            let keys = Set((0..<200_000).map { _ in rng.next() >> 4 | shard << 60 })
            let members = Array(keys.prefix(100_000)), absent = Array(keys.dropFirst(100_000))
            let rate = EventStore.dedupeFilterFalsePositivesForTesting(keys: members, absent: absent)
            #expect(rate < 0.03, "shard \(shard): \(rate)")
        }
    }

    @Test("sealed dedupe keys in a file are found page by page: every key, and no absent key the filter lets through")
    func dedupeFilePages() throws {
        let dir = TemporaryDirectory()
        // One run of 5,000 keys of shard 3, in a file: ten pages of 512 keys (the last one short).
        var shards = DedupeShardsForTesting(directory: dir.path, sealAt: 5_000)
        var rng = SeededRandom(state: 23)
        var seen = Set<UInt64>(), all: [UInt64] = []
        while all.count < 105_000 {
            let k = rng.next() >> 4 | 3 << 60
            if seen.insert(k).inserted { all.append(k) }
        }
        let members = Array(all.prefix(5_000)), absent = Array(all.dropFirst(5_000))
        #expect(members.allSatisfy { shards.insert($0) })
        #expect(shards.runCount == 1 && shards.fileCount == 5_000)
        #expect(members.allSatisfy { shards.contains($0) })
        // ~1 % of these pass the filter and are looked up in the file.
        #expect(absent.allSatisfy { !shards.contains($0) })
        #expect(members.allSatisfy { !shards.insert($0) })

        // The page search alone (no filter in front): every key, the first and last of each page,
        // keys between them, below the first and above the last.
        let sorted = members.sorted()
        let between = zip(sorted, sorted.dropFirst()).compactMap { $1 - $0 > 1 ? $0 + 1 : nil }
        var probes = sorted + between + [3 << 60, sorted[0] - 1, sorted[sorted.count - 1] + 1, 3 << 60 | (1 << 60 - 1)]
        probes.removeAll { $0 < 3 << 60 || $0 > 3 << 60 | (1 << 60 - 1) }
        let found = try #require(EventStore.sealedKeysFileSearchForTesting(keys: members, probes: probes, directory: dir.path))
        let memberSet = Set(members)
        #expect(zip(probes, found).allSatisfy { memberSet.contains($0) == $1 })
    }

    @Test("events without an event_id get a ULID from their occurred_at")
    func assignsIDs() async throws {
        let dir = TemporaryDirectory()
        let store = try open(dir)
        _ = try await store.ingest(.of([EventRow(at: Self.t0), EventRow(at: Self.t0 + 1)]))
        var ids: [String] = []
        try store.snapshot().scan(ScanRequest(columns: [.eventID])) { b in
            for i in 0..<b.count { ids.append(b[string: .eventID].string(at: i)!) }
        }
        #expect(ids.count == 2 && Set(ids).count == 2)
        for id in ids {
            #expect(id.count == 26)
            #expect(id.hasPrefix("01K"))  // 2026's ms timestamps start with 01K in Crockford base32
        }
        try store.close()
    }
}
