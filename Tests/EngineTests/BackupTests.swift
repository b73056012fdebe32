@_spi(Testing) import Engine
import Foundation
import Synchronization
import TallyTestSupport
import Testing

/// `EventStore.backup(to:)`: one consistent snapshot of a store that keeps changing.
@Suite("Backups")
struct BackupTests {
    static func options(_ path: String, fileSystem: any FileSystem = PosixFileSystem()) -> StoreOptions {
        var o = StoreOptions(directory: path)
        o.backgroundFlush = false
        o.clock = ManualClock(RollupTests.t0 + 70 * RollupTests.day)
        o.granuleRows = 128
        o.fileSystem = fileSystem
        return o
    }

    /// A file system on which hard links fail; with `removeFirst` the file is deleted first, as
    /// a merge or partition drop deletes a part between a backup's snapshot and its link.
    static func noLinks(removeFirst: Bool) -> FaultInjectingFileSystem {
        FaultInjectingFileSystem { op in
            guard case .hardLink(let existing, _) = op else { return false }
            if removeFirst && existing.hasSuffix(".part") { try? FileManager.default.removeItem(atPath: existing) }
            return true
        }
    }

    /// Batch k (1-based) is WAL record k: its event ids are "k<k>-<i>".
    static func batches(_ count: Int, rows: Int) -> [EventBatch] {
        var rng = SeededRandom(state: 31)
        return (1...count).map { RollupTests.batch(&rng, rows, tag: "k\($0)") }
    }

    /// Batch number → events of it in `snapshot`.
    static func eventsPerBatch(_ snapshot: Snapshot) throws -> [Int: Int] {
        var counts: [Int: Int] = [:]
        for site in ["a.com", "ny.com"] {
            try snapshot.scan(ScanRequest(site: site, columns: [.eventID])) { b in
                for i in 0..<b.count {
                    let id = b[string: .eventID].string(at: i)!
                    counts[Int(id.dropFirst().prefix { $0 != "-" })!, default: 0] += 1
                }
            }
        }
        return counts
    }

    @Test("a backup taken while ingest, flushes and merges run holds exactly the events up to its WAL position, and reports like the source did there")
    func liveBackup() async throws {
        let dir = TemporaryDirectory()
        let rows = 40
        let all = Self.batches(120, rows: rows)
        let store = try EventStore(options: Self.options(dir.path))
        let stop = Atomic(false)
        let ingested = Atomic(0)
        // Flushes, merges (raw and rollup) and session summaries, as the background does, all along.
        let maintenance = Thread {
            while !stop.load(ordering: .relaxed) {
                do {
                    try store.flush()
                    _ = try store.mergeNow()
                    _ = try store.mergeRollups()
                    _ = try store.buildSessionSummaries()
                } catch {
                    Issue.record("maintenance: \(error)")
                }
                usleep(1_000)
            }
        }
        maintenance.start()
        let ingest = Task {
            for b in all {
                _ = try await store.ingest(b)
                ingested.add(1, ordering: .relaxed)
                await Task.yield()
            }
        }
        while ingested.load(ordering: .relaxed) < 40 { try await Task.sleep(for: .milliseconds(1)) }
        let target = dir.path + "/backup"
        let backup = try await onOwnThread { try store.backup(to: target) }
        try await ingest.value
        stop.store(true, ordering: .relaxed)
        while !maintenance.isFinished { try await Task.sleep(for: .milliseconds(5)) }
        try store.close()

        // Exactly batches 1…N, each whole, where N is the recorded position.
        let n = Int(backup.walLSN)
        #expect(n >= 40 && n <= all.count)
        #expect(backup.files.contains { $0.path.hasPrefix("wal/") } || backup.files.contains { $0.path.hasPrefix("parts/") })
        let restored = try EventStore(options: Self.options(target))
        #expect(restored.openReport.problems.isEmpty, "\(restored.openReport.problems)")
        let counts = try Self.eventsPerBatch(restored.snapshot())
        #expect(Set(counts.keys) == Set(1...n), "batches \(counts.keys.sorted().prefix(5))… of \(n)")
        #expect(counts.values.allSatisfy { $0 == rows })
        try restored.flush()

        // A store given only batches 1…N answers every report the same, from rollups and raw.
        let reference = TemporaryDirectory()
        let expected = try EventStore(options: Self.options(reference.path))
        for b in all.prefix(n) { _ = try await expected.ingest(b) }
        try expected.flush()
        let from = RollupTests.t0, to = RollupTests.t0 + 45 * RollupTests.day
        for site in ["a.com", "ny.com"] {
            try RollupTests.expectRollupsEqualRaw(restored.snapshot(), site: site, zone: .utc, from: from, to: to)
            for query in try RollupTests.queries(site: site, zone: .utc, from: from, to: to) {
                #expect(try QueryExecutor.run(query, on: restored.snapshot()).rows
                    == QueryExecutor.run(query, on: expected.snapshot()).rows)
            }
        }
        try expected.close()
        try restored.close()
    }

    @Test("a backup goes into a new or empty directory only; parts that cannot be linked, or were deleted since the snapshot, are copied from its open files")
    func copies() async throws {
        for removeFirst in [false, true] {
            let dir = TemporaryDirectory()
            let store = try EventStore(options: Self.options(dir.path, fileSystem: Self.noLinks(removeFirst: removeFirst)))
            let all = Self.batches(4, rows: 30)
            for b in all.prefix(3) {
                _ = try await store.ingest(b)
                try store.flush()
            }
            _ = try await store.ingest(all[3])  // in the WAL only
            let busy = dir.path + "/busy"
            try FileManager.default.createDirectory(atPath: busy, withIntermediateDirectories: true)
            try Data("x".utf8).write(to: URL(fileURLWithPath: busy + "/file"))
            #expect(throws: TallyError.self) { try store.backup(to: busy) }
            let empty = dir.path + "/empty"
            try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
            let copy = try store.backup(to: empty)
            #expect(copy.linked == 0)
            #expect(copy.files.filter { $0.path.hasSuffix(".part") }.count == store.snapshot().parts.count)
            #expect(copy.copied == copy.files.count)
            #expect(copy.walLSN == 4)
            try store.abandonForTesting()
            let restored = try EventStore(options: Self.options(empty))
            let counts = try Self.eventsPerBatch(restored.snapshot())
            #expect(counts == [1: 30, 2: 30, 3: 30, 4: 30], "removeFirst: \(removeFirst)")
            try restored.close()
        }
    }
}
