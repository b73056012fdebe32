import Engine
import Foundation
import TallyTestSupport
import Testing
import Workload

#if canImport(Glibc)
    import Glibc
#endif

/// Durability under kill -9: a child `tally ingest` is killed at random moments of ingest and
/// flush, again and again; every event it acknowledged must be present exactly once.
@Suite("Crash safety", .serialized)
struct CrashTests {
    static let events = 120_000

    /// The NDJSON sample and the event_id of each line.
    static func sample(in dir: TemporaryDirectory) throws -> (path: String, ids: [String]) {
        var generator = WorkloadGenerator(WorkloadConfig(seed: 7, events: events))
        var bytes: [UInt8] = []
        _ = generator.nextNDJSON(events, into: &bytes)
        let path = dir.path + "/sample.ndjson"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let ids = bytes.split(separator: UInt8(ascii: "\n")).map { line -> String in
            let text = String(decoding: line, as: UTF8.self)
            let start = text.range(of: "\"event_id\":\"")!.upperBound
            return String(text[start...].prefix { $0 != "\"" })
        }
        return (path, ids)
    }

    /// Line ranges the child acknowledged (complete lines of its ack file only).
    static func acknowledged(_ path: String) -> [Range<Int>] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        let text = String(decoding: data, as: UTF8.self)
        guard let lastNewline = text.lastIndex(of: "\n") else { return [] }
        return text[..<lastNewline].split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ").compactMap { Int($0) }
            return f.count == 2 ? f[0]..<f[1] : nil
        }
    }

    /// Every event_id stored, with how many times.
    static func stored(_ data: String) throws -> [String: Int] {
        var o = StoreOptions(directory: data)
        o.backgroundFlush = false
        let store = try EventStore(options: o)
        defer { try? store.close() }
        var counts: [String: Int] = [:]
        try store.snapshot().scan(ScanRequest(columns: [.eventID])) { b in
            let ids = b[string: .eventID]
            for i in 0..<b.count { counts[ids.string(at: i)!, default: 0] += 1 }
        }
        return counts
    }

    static func runTally(_ arguments: [String], killAfter: Double?) throws -> Int32 {
        let process = Process()
        process.executableURL = TallyBinary.url
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        if let killAfter {
            usleep(useconds_t(killAfter * 1_000_000))
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        return process.terminationStatus
    }

    @Test("kill -9 at random moments of ingest and flush loses and duplicates no acknowledged event")
    func killNine() throws {
        let dir = TemporaryDirectory("tally-crash")
        let (sample, ids) = try Self.sample(in: dir)
        let data = dir.path + "/data"
        var acked = Set<Int>()
        var rng = SystemRandomNumberGenerator()
        for round in 0..<8 {
            let ack = dir.path + "/ack-\(round)"
            // Small batches and frequent flushes so kills land in WAL appends, flushes and renames.
            _ = try Self.runTally(["ingest", sample, "--data", data, "--batch-size", "500", "--flush-rows", "3000",
                                   "--ack-file", ack], killAfter: Double.random(in: 0.1...2.5, using: &rng))
            for r in Self.acknowledged(ack) { acked.formUnion(r) }
            let counts = try Self.stored(data)
            let missing = acked.filter { counts[ids[$0]] == nil }
            #expect(missing.isEmpty, "round \(round): \(missing.count) acknowledged events missing")
            let doubled = counts.filter { $0.value > 1 }
            #expect(doubled.isEmpty, "round \(round): \(doubled.count) events stored twice")
        }
        // The kills landed while events were being acknowledged and parts written.
        #expect(!acked.isEmpty)
        let parts = try FileManager.default.contentsOfDirectory(atPath: data + "/parts").filter { $0.hasSuffix(".part") }
        #expect(!parts.isEmpty)
        // Finishing the load after all the crashes stores every event exactly once.
        #expect(try Self.runTally(["ingest", sample, "--data", data], killAfter: nil) == 0)
        let counts = try Self.stored(data)
        #expect(counts.count == Set(ids).count)
        #expect(counts.values.allSatisfy { $0 == 1 })

        // Merges killed at random moments (reading inputs, writing, publishing, deleting the
        // inputs) leave every event exactly once; a merge run to the end replaces the small parts.
        let before = try Self.partNumbers(data)
        for round in 0..<4 {
            _ = try Self.runTally(["merge", "--data", data], killAfter: Double.random(in: 0.05...1.0, using: &rng))
            let counts = try Self.stored(data)
            #expect(counts.count == Set(ids).count, "merge round \(round): \(Set(ids).count - counts.count) events missing")
            #expect(counts.values.allSatisfy { $0 == 1 }, "merge round \(round): events stored twice")
        }
        #expect(try Self.runTally(["merge", "--data", data], killAfter: nil) == 0)
        let merged = try Self.stored(data)
        #expect(merged.count == Set(ids).count && merged.values.allSatisfy { $0 == 1 })
        let after = try Self.partNumbers(data)
        #expect(after.count <= before.count, "\(before.count) parts before the merges, \(after.count) after")
        #expect(after.contains { $0.sources.count > 1 }, "no merged part")
    }

    /// The parts a store opened on `data` holds: number and, for a merged part, its sources.
    static func partNumbers(_ data: String) throws -> [(number: Int, sources: [Int])] {
        var o = StoreOptions(directory: data)
        o.backgroundFlush = false
        let store = try EventStore(options: o)
        defer { try? store.close() }
        return store.snapshot().parts.map { ($0.number, $0.footer.sources) }
    }
}

/// The `tally` executable built beside the test bundle.
enum TallyBinary {
    static var url: URL {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [bundle.appendingPathComponent("tally"),
                          bundle.deletingLastPathComponent().appendingPathComponent("tally")]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]
    }
}
