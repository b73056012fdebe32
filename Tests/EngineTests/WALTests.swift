@_spi(Testing) import Engine
import Foundation
import TallyTestSupport
import Testing

@Suite("Write-ahead log")
struct WALTests {
    static let t0: Int64 = 1_785_542_400_000

    func open(_ dir: TemporaryDirectory) throws -> EventStore {
        var o = StoreOptions(directory: dir.path)
        o.backgroundFlush = false
        o.clock = ManualClock(Self.t0)
        return try EventStore(options: o)
    }

    func walFile(_ dir: TemporaryDirectory) throws -> String {
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/wal").filter { $0.hasSuffix(".wal") }.sorted()
        return dir.path + "/wal/" + names.last!
    }

    /// Simulates a crash: the store is dropped without close, so only the WAL holds the rows.
    func crashAfter(_ batches: [EventBatch], in dir: TemporaryDirectory) async throws {
        let store = try open(dir)
        for b in batches { _ = try await store.ingest(b) }
        // Stop as process death would: no flush, the directory lock released.
        try store.abandonForTesting()
    }

    @Test("unflushed events come back from the WAL after a crash")
    func replay() async throws {
        let dir = TemporaryDirectory()
        try await crashAfter([.of((0..<10).map { EventRow(at: Self.t0 + Int64($0), id: "a\($0)") }),
                              .of((0..<5).map { EventRow(at: Self.t0 + Int64($0), id: "b\($0)") })], in: dir)
        let store = try open(dir)
        #expect(store.openReport.walRecordsReplayed == 2)
        #expect(store.snapshot().rowCount == 15)
        try store.close()
    }

    @Test("a torn tail is cut off on replay and everything before it survives")
    func tornTail() async throws {
        let dir = TemporaryDirectory()
        try await crashAfter([.of((0..<10).map { EventRow(at: Self.t0 + Int64($0), id: "a\($0)") }),
                              .of((0..<5).map { EventRow(at: Self.t0 + Int64($0), id: "b\($0)") })], in: dir)
        let path = try walFile(dir)
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        let handle = FileHandle(forWritingAtPath: path)!
        try handle.truncate(atOffset: UInt64(size - 7))  // the last record loses its end
        try handle.close()
        var store = try open(dir)
        #expect(store.openReport.walRecordsReplayed == 1)
        #expect(store.openReport.walTruncatedBytes > 0)
        #expect(store.snapshot().rowCount == 10)
        // The log is usable after the cut: new records append after the last good one.
        _ = try await store.ingest(.of([EventRow(at: Self.t0, id: "c1")]))
        try store.abandonForTesting()
        store = try open(dir)
        #expect(store.openReport.problems.isEmpty)
        #expect(store.snapshot().rowCount == 11)
        try store.close()
    }

    @Test("a flipped byte in a WAL record is detected by its checksum and reported with the offset")
    func flippedByte() async throws {
        let dir = TemporaryDirectory()
        try await crashAfter([.of((0..<10).map { EventRow(at: Self.t0 + Int64($0), id: "a\($0)") }),
                              .of((0..<5).map { EventRow(at: Self.t0 + Int64($0), id: "b\($0)") })], in: dir)
        let path = try walFile(dir)
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count - 3] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let store = try open(dir)
        #expect(store.openReport.problems.count == 1)
        #expect(store.openReport.problems[0].contains("checksum mismatch"))
        #expect(store.openReport.problems[0].contains("offset"))
        #expect(store.snapshot().rowCount == 10)
        try store.close()
    }

    @Test("a flush makes WAL records redundant and replay does not duplicate them")
    func noDuplicatesAfterFlush() async throws {
        let dir = TemporaryDirectory()
        var store = try open(dir)
        _ = try await store.ingest(.of((0..<10).map { EventRow(at: Self.t0 + Int64($0), id: "a\($0)") }))
        try store.flush()
        _ = try await store.ingest(.of((0..<3).map { EventRow(at: Self.t0 + Int64($0), id: "b\($0)") }))
        try store.abandonForTesting()
        store = try open(dir)
        #expect(store.snapshot().rowCount == 13)
        try store.close()
    }

    @Test("a crash between the parts of a multi-month flush loses and duplicates nothing")
    func partialFlush() async throws {
        let dir = TemporaryDirectory()
        let august = Self.t0
        let september = Self.t0 + 31 * 86_400_000
        try await crashAfter([.of([EventRow(at: august, id: "a1"), EventRow(at: september, id: "b1")])], in: dir)
        // Write only the August part, as a flush killed between its two renames would leave.
        var store = try open(dir)
        try store.flushForTesting(onlyPartitions: [Partition(ms: august)])
        try store.abandonForTesting()
        store = try open(dir)
        #expect(store.snapshot().rowCount == 2)
        #expect(try store.snapshot().count(ScanRequest(from: august, to: august + 1)).count == 1)
        try store.close()
    }
}
