@_spi(Testing) import Engine
import Foundation
import TallyTestSupport
import Testing

@Suite("Retention: TTL partition drops")
struct RetentionTests {
    static let day: Int64 = 86_400_000
    static let aug10 = QueryRange.date("2026-08-10")! * day
    static let sep10 = QueryRange.date("2026-09-10")! * day
    static let nov10 = QueryRange.date("2026-11-10")! * day

    static func options(_ dir: TemporaryDirectory, clock: ManualClock) -> StoreOptions {
        var o = StoreOptions(directory: dir.path)
        o.backgroundFlush = false
        o.clock = clock
        o.retention = 90 * day
        return o
    }

    static func rows(_ prefix: String, at t: Int64, _ n: Int) -> EventBatch {
        .of((0..<n).map { EventRow(site: "s", at: t + Int64($0) * 1000, id: "\(prefix)\($0)") })
    }

    static func partFiles(_ dir: TemporaryDirectory) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path + "/parts").filter { $0.hasSuffix(".part") }.sorted()
    }

    @Test("a month is dropped once its last day is past the retention; readers holding a snapshot keep reading it")
    func dropsWholeMonths() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock(QueryRange.date("2026-11-20")! * Self.day)
        let store = try EventStore(options: Self.options(dir, clock: clock))
        _ = try await store.ingest(Self.rows("a", at: Self.aug10, 50))
        _ = try await store.ingest(Self.rows("s", at: Self.sep10, 40))
        _ = try await store.ingest(Self.rows("n", at: Self.nov10, 30))
        try store.flush()
        clock.advance(9 * Self.day)  // 2026-11-29: August 31 is not yet 90 days past
        #expect(try store.dropExpiredPartitions().isEmpty)
        #expect(try Self.partFiles(dir).count == 3)
        let before = store.snapshot()

        clock.advance(Self.day)  // 2026-11-30: all of August is more than 90 days old
        #expect(try store.dropExpiredPartitions() == [Partition(yyyymm: 202608)!])
        #expect(try Self.partFiles(dir).allSatisfy { !$0.hasPrefix("202608") })
        #expect(try store.snapshot().count(ScanRequest(site: "s")).count == 70)
        #expect(try before.count(ScanRequest(site: "s")).count == 120)  // an older snapshot still reads August
        try store.close()
    }

    @Test("on open, expired partitions are dropped and the WAL does not bring their events back")
    func dropOnOpen() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock(QueryRange.date("2026-11-20")! * Self.day)
        let first = try EventStore(options: Self.options(dir, clock: clock))
        _ = try await first.ingest(Self.rows("a", at: Self.aug10, 20))
        try first.flush()
        _ = try await first.ingest(Self.rows("b", at: Self.aug10 + Self.day, 20))  // only in the WAL
        _ = try await first.ingest(Self.rows("n", at: Self.nov10, 10))
        try first.abandonForTesting()

        clock.advance(30 * Self.day)
        let second = try EventStore(options: Self.options(dir, clock: clock))
        #expect(second.openReport.partitionsDropped == [Partition(yyyymm: 202608)!])
        #expect(try second.snapshot().count(ScanRequest(site: "s")).count == 10)
        try second.close()
        #expect(try Self.partFiles(dir).allSatisfy { !$0.hasPrefix("202608") })
    }

    @Test("dropPartition removes one month on demand and says how many rows went; no retention keeps everything")
    func dropOnDemand() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock(QueryRange.date("2030-01-01")! * Self.day)
        var options = Self.options(dir, clock: clock)
        options.retention = nil
        let store = try EventStore(options: options)
        _ = try await store.ingest(Self.rows("a", at: Self.aug10, 25))
        _ = try await store.ingest(Self.rows("s", at: Self.sep10, 5))
        try store.flush()
        #expect(try store.dropExpiredPartitions().isEmpty)
        #expect(try store.dropPartition(Partition(yyyymm: 202608)!) == 25)
        #expect(try store.dropPartition(Partition(yyyymm: 202608)!) == 0)
        #expect(try store.snapshot().count(ScanRequest(site: "s")).count == 5)
        try store.close()
    }

    @Test("a month dropped by hand stays dropped after a crash, and in a backup, though its WAL records remain; later rows of it count")
    func dropSurvivesReplay() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock(QueryRange.date("2030-01-01")! * Self.day)
        var options = Self.options(dir, clock: clock)
        options.retention = nil
        let store = try EventStore(options: options)
        var both = Self.rows("a", at: Self.aug10, 25)
        both.append(contentsOf: Self.rows("s", at: Self.sep10, 5))
        _ = try await store.ingest(both)  // one WAL record with both months
        try store.flush()  // the WAL segment is the current one: it stays
        #expect(try store.dropPartition(Partition(yyyymm: 202608)!) == 25)
        _ = try await store.ingest(Self.rows("b", at: Self.aug10, 3))  // August again, after the drop
        let backup = try store.backup(to: dir.path + "/backup")
        #expect(backup.files.contains { $0.path == "DROPPED" })
        try store.abandonForTesting()  // a crash: no flush, the WAL is replayed
        for path in [dir.path, dir.path + "/backup"] {
            var o = options
            o.directory = path
            let reopened = try EventStore(options: o)
            let counts = try reopened.snapshot().count(ScanRequest(site: "s"))
            #expect(counts.count == 8, "\(path): the dropped August rows came back")
            try reopened.close()
        }
    }

    @Test("setRetention takes effect at the next TTL check: a longer retention keeps a month, a shorter one drops it")
    func retentionChangedWhileOpen() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock(QueryRange.date("2026-11-30")! * Self.day)
        let store = try EventStore(options: Self.options(dir, clock: clock))
        _ = try await store.ingest(Self.rows("a", at: Self.aug10, 20))
        _ = try await store.ingest(Self.rows("n", at: Self.nov10, 10))
        try store.flush()
        store.setRetention(raw: 120 * Self.day, rollups: 800 * Self.day)
        #expect(store.rawRetention == 120 * Self.day && store.rollupRetentionOverride == 800 * Self.day)
        #expect(try store.dropExpiredPartitions().isEmpty)  // August is 91 days old, kept for 120
        store.setRetention(raw: 90 * Self.day)
        #expect(store.rollupRetentionOverride == 800 * Self.day)  // unchanged when not given
        #expect(try store.dropExpiredPartitions() == [Partition(yyyymm: 202608)!])
        #expect(try store.snapshot().count(ScanRequest(site: "s")).count == 10)
        try store.close()
    }

    @Test("a query's raw floor (a property's shorter retention) hides older raw and buffered rows; rollup days still count")
    func rawFloor() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock(QueryRange.date("2026-11-20")! * Self.day)
        let store = try EventStore(options: Self.options(dir, clock: clock))
        _ = try await store.ingest(Self.rows("a", at: Self.aug10, 50))
        _ = try await store.ingest(Self.rows("s", at: Self.sep10, 40))
        _ = try await store.ingest(Self.rows("n", at: Self.nov10, 30))
        try store.flush()
        _ = try await store.ingest(Self.rows("b", at: Self.aug10 + Self.day, 7))  // buffered, older than the floor
        _ = try await store.ingest(Self.rows("m", at: Self.nov10 + Self.day, 3))  // buffered, newer
        var q = Query(site: "s", from: QueryRange.date("2026-08-01")! * Self.day,
                      to: QueryRange.date("2026-12-01")! * Self.day, metrics: [.events])
        q.allowRollups = false
        #expect(try QueryExecutor.run(q, on: store.snapshot()).rows == [[.int(130)]])
        q.rawFloor = QueryRange.date("2026-09-01")! * Self.day
        #expect(try QueryExecutor.run(q, on: store.snapshot()).rows == [[.int(73)]])
        // From the rollups, whole days before the floor still count (rollups are kept longer);
        // the buffer is raw and stays behind the floor.
        q.allowRollups = true
        let mixed = try QueryExecutor.run(q, on: store.snapshot())
        #expect(mixed.source == .rollup)
        #expect(mixed.rows == [[.int(123)]])
        try store.close()
    }
}
