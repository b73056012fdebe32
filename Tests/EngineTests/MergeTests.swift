@_spi(Testing) import Engine
import Foundation
import TallyTestSupport
import Testing

@Suite("Merges")
struct MergeTests {
    static let day: Int64 = 86_400_000
    static let t0: Int64 = 1_785_542_400_000  // 2026-08-01T00:00:00Z

    static func options(_ dir: TemporaryDirectory, clock: ManualClock = ManualClock(t0), granule: Int = 64) -> StoreOptions {
        var o = StoreOptions(directory: dir.path)
        o.backgroundFlush = false
        o.clock = clock
        o.granuleRows = granule
        return o
    }

    /// Varied events over two months: several sites and types, visitors recurring across
    /// batches, nullable columns null or not, unique URLs (a column too diverse for a dictionary).
    static func batch(_ rng: inout SeededRandom, _ n: Int, tag: String) -> EventBatch {
        let types = ["page_view", "widget_impression", "widget_click", "signup"]
        let rows = (0..<n).map { i -> EventRow in
            var r = EventRow(site: "site\(rng.next() % 3).com", type: types[Int(rng.next() % 4)],
                             at: t0 + 20 * day + Int64(rng.next() % UInt64(25 * day)),
                             visitor: "v\(rng.next() % 200)", session: "s\(rng.next() % 400)", id: "\(tag)-\(i)",
                             path: "/p/\(rng.next() % 40)")
            r.values[.pageURL] = "https://x.test/\(tag)/\(i)"
            r.values[.countryCode] = rng.next() % 5 == 0 ? nil : ["DE", "US", "FR"][Int(rng.next() % 3)]
            r.values[.utmCampaign] = rng.next() % 3 == 0 ? "camp\(rng.next() % 7)" : nil
            r.values[.propMappingID] = rng.next() % 2 == 0 ? "m\(rng.next() % 9)" : nil
            r.ints[.receivedAt] = r.ints[.occurredAt]!! + 150
            return r
        }
        return .of(rows)
    }

    /// Every stored row as text, sorted: what a merge must preserve exactly.
    static func rows(_ snapshot: Snapshot) throws -> [String] {
        var out: [String] = []
        try snapshot.scan(ScanRequest()) { b in
            for i in 0..<b.count {
                out.append(EventColumn.allCases.map { c in
                    c.kind == .int64 ? (b[int: c].value(at: i).map(String.init) ?? "∅") : (b[string: c].string(at: i) ?? "∅")
                }.joined(separator: "|"))
            }
        }
        return out.sorted()
    }

    static func partFiles(_ dir: TemporaryDirectory) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path + "/parts").filter { $0.hasSuffix(".part") }.sorted()
    }

    /// A store with `flushes` parts per month written by separate flushes.
    static func filled(_ dir: TemporaryDirectory, flushes: Int, rows: Int = 300, seed: UInt64 = 1,
                       policy: MergePolicy = MergePolicy()) async throws -> EventStore {
        var o = options(dir)
        o.mergePolicy = policy
        let store = try EventStore(options: o)
        var rng = SeededRandom(state: seed)
        for f in 0..<flushes {
            _ = try await store.ingest(batch(&rng, rows, tag: "f\(f)"))
            try store.flush()
        }
        return store
    }

    @Test("a forced merge leaves one valid part per month with exactly the same rows")
    func forcedMerge() async throws {
        let dir = TemporaryDirectory()
        let store = try await Self.filled(dir, flushes: 7)
        let before = try Self.rows(store.snapshot())
        #expect(store.snapshot().parts.count == 14)
        let reports = try store.mergeNow(force: true)
        #expect(!reports.isEmpty)
        let parts = store.snapshot().parts
        #expect(parts.count == 2)
        #expect(Set(parts.map(\.partition)).count == 2)
        for p in parts {
            #expect(p.footer.level >= 1)
            #expect(!p.footer.sources.isEmpty)
            #expect(PartVerifier.verify(p).isEmpty, "\(PartVerifier.verify(p))")
        }
        #expect(try Self.rows(store.snapshot()) == before)
        #expect(try Self.partFiles(dir).count == 2)
        try store.close()
        // And after reopening.
        let reopened = try EventStore(options: Self.options(dir))
        #expect(try Self.rows(reopened.snapshot()) == before)
        try reopened.close()
    }

    @Test("the size-tiered policy bounds the parts of a month at (fanIn - 1) per tier")
    func tieredPolicy() async throws {
        let dir = TemporaryDirectory()
        var policy = MergePolicy()
        policy.baseRows = 400
        policy.fanIn = 3
        let store = try await Self.filled(dir, flushes: 30, rows: 200, policy: policy)
        let before = try Self.rows(store.snapshot())
        let reports = try store.mergeNow()
        #expect(!reports.isEmpty)
        for (_, parts) in Dictionary(grouping: store.snapshot().parts, by: \.partition) {
            let tiers = Dictionary(grouping: parts) { policy.tier($0.rows) }
            #expect(tiers.values.allSatisfy { $0.count < policy.fanIn }, "\(parts.map(\.rows))")
            #expect(parts.contains { $0.footer.level >= 2 })  // merged parts were merged again
        }
        #expect(try Self.rows(store.snapshot()) == before)
        #expect(try store.mergeNow().isEmpty)  // nothing left to do
        try store.close()
    }

    @Test("small flushes merged as they come are rewritten a few times, not once per merge of their month")
    func smallFlushesWriteAmplification() async throws {
        // A quiet server: 120 flushes of 100 rows (two months, ~50 rows each), merges run after
        // every flush. With tier 0 reaching 2^18 rows, the month's growing part was merged with
        // the next three flushes over and over (19.8 writes per row here); with geometric tiers
        // from 2^10 rows, fewer than 7.
        let dir = TemporaryDirectory()
        var o = Self.options(dir)
        o.backgroundMerge = false
        let store = try EventStore(options: o)
        var rng = SeededRandom(state: 7)
        var merged = 0
        for f in 0..<120 {
            _ = try await store.ingest(Self.batch(&rng, 100, tag: "f\(f)"))
            try store.flush()
            merged += try store.mergeNow().reduce(0) { $0 + $1.rows }
        }
        let rows = store.snapshot().rowCount
        #expect(rows == 12_000)
        #expect(Double(merged) / Double(rows) < 7, "\(merged) rows written by merges for \(rows) ingested")
        for (_, parts) in Dictionary(grouping: store.snapshot().parts, by: \.partition) {
            let tiers = Dictionary(grouping: parts) { o.mergePolicy.tier($0.rows) }
            #expect(tiers.values.allSatisfy { $0.count < o.mergePolicy.fanIn }, "\(parts.map(\.rows))")
        }
        try store.close()
    }

    @Test("a merge drops a retried event that slipped past the dedupe window")
    func dropsDuplicates() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock(Self.t0)
        let store = try EventStore(options: Self.options(dir, clock: clock))
        let event = EventBatch.of([EventRow(site: "a.com", at: Self.t0, visitor: "v", id: "retried"),
                                   EventRow(site: "a.com", at: Self.t0 + 1, visitor: "v", id: "other")])
        #expect(try await store.ingest(event).accepted == 2)
        try store.flush()
        clock.advance(8 * Self.day)  // past the 7-day dedupe window: the retry is accepted
        #expect(try await store.ingest(.of([EventRow(site: "a.com", at: Self.t0, visitor: "v", id: "retried"),
                                            EventRow(site: "b.com", at: Self.t0, visitor: "v", id: "retried"),
                                            EventRow(site: "a.com", at: Self.t0, visitor: "v", id: "sibling")])).accepted == 3)
        try store.flush()
        #expect(store.snapshot().rowCount == 5)
        _ = try store.mergeNow(force: true)
        // The retry went; the same event_id on another site is another event and stays, and so
        // does another event of the same visitor at the same millisecond.
        #expect(store.snapshot().rowCount == 4)
        for p in store.snapshot().parts { #expect(PartVerifier.verify(p).isEmpty, "\(PartVerifier.verify(p))") }
        #expect(store.status.merges.duplicatesDropped == 1)
        try store.close()
    }

    @Test("a snapshot taken before a merge keeps reading the replaced parts; their files are gone")
    func snapshotsSurviveMerges() async throws {
        let dir = TemporaryDirectory()
        let store = try await Self.filled(dir, flushes: 5)
        let old = store.snapshot()
        let expected = try Self.rows(old)
        let oldFiles = Set(try Self.partFiles(dir))
        _ = try store.mergeNow(force: true)
        #expect(Set(try Self.partFiles(dir)).isDisjoint(with: oldFiles))
        #expect(try Self.rows(old) == expected)
        #expect(try Self.rows(store.snapshot()) == expected)
        try store.close()
    }

    @Test("a merge that died after publishing its part and before deleting its inputs neither loses nor doubles rows")
    func crashBetweenPublishAndDelete() async throws {
        let dir = TemporaryDirectory()
        let store = try await Self.filled(dir, flushes: 4)
        let expected = try Self.rows(store.snapshot())
        let saved = dir.path + "/saved"
        try FileManager.default.createDirectory(atPath: saved, withIntermediateDirectories: true)
        let inputs = try Self.partFiles(dir)
        for f in inputs { try FileManager.default.copyItem(atPath: dir.path + "/parts/" + f, toPath: saved + "/" + f) }
        _ = try store.mergeNow(force: true)
        try store.close()
        // Put the inputs back, as if the process died right after the merged parts were renamed.
        for f in inputs { try FileManager.default.copyItem(atPath: saved + "/" + f, toPath: dir.path + "/parts/" + f) }
        // A reader beside the (dead) writer already hides them…
        let inventory = try Inventory(directory: dir.path)
        #expect(inventory.parts.count == 2)
        // …and opening deletes them.
        let reopened = try EventStore(options: Self.options(dir))
        #expect(reopened.openReport.supersededRemoved == inputs.count)
        #expect(try Self.rows(reopened.snapshot()) == expected)
        #expect(try Self.partFiles(dir).count == 2)
        try reopened.close()
    }

    @Test("merges keep running beside ingest, and dropping a partition wins over merging it")
    func mergesBesideIngestAndDrops() async throws {
        let dir = TemporaryDirectory()
        var policy = MergePolicy()
        policy.fanIn = 2
        let store = try await Self.filled(dir, flushes: 6, policy: policy)
        var rng = SeededRandom(state: 99)
        _ = try await store.ingest(Self.batch(&rng, 100, tag: "late"))  // buffered, not merged
        _ = try store.mergeNow()
        #expect(store.snapshot().rowCount == 6 * 300 + 100)
        let august = Partition(yyyymm: 202608)!
        let augustRows = store.snapshot().parts.filter { $0.partition == august }.reduce(0) { $0 + $1.rows }
        #expect(try store.dropPartition(august) == augustRows)
        #expect(try store.mergeNow(force: true).allSatisfy { $0.partition != august })
        #expect(store.snapshot().parts.allSatisfy { $0.partition != august })
        try store.close()
    }

    @Test("a version 1 part (no merge sources in its footer) still opens and reads")
    func readsVersion1Parts() async throws {
        let dir = TemporaryDirectory()
        let store = try await Self.filled(dir, flushes: 1, rows: 50)
        let expected = try Self.rows(store.snapshot())
        try store.close()
        for name in try Self.partFiles(dir) {
            let path = dir.path + "/parts/" + name
            try Data(Self.downgradeToVersion1([UInt8](Data(contentsOf: URL(fileURLWithPath: path))))).write(
                to: URL(fileURLWithPath: path))
        }
        let reopened = try EventStore(options: Self.options(dir))
        #expect(reopened.openReport.problems.isEmpty)
        #expect(reopened.snapshot().parts.allSatisfy { $0.footer.sources.isEmpty })
        #expect(try Self.rows(reopened.snapshot()) == expected)
        try reopened.close()
    }

    /// Rewrites a version 2 part with no sources as version 1 wrote it: version 1 in the header
    /// and footer, no sources count after the level, trailer and CRC to match.
    static func downgradeToVersion1(_ part: [UInt8]) -> [UInt8] {
        var out = PartFileBytes.rewritingFooter(part) { footer in
            var p = 8
            func skipVarint() { while footer[p] & 0x80 != 0 { p += 1 }; p += 1 }
            skipVarint()  // rows
            skipVarint()  // granule rows
            p += 40  // min/max time, min/max received, WAL LSN
            skipVarint()  // level
            precondition(footer[p] == 0, "sources count")
            footer.remove(at: p)
            footer[0] = 1
        }
        out[8] = 1
        return out
    }
}
