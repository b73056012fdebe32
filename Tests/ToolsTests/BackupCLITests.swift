@_spi(Testing) import Engine
import Foundation
import Server
import Synchronization
import TallyTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `tally backup` / `tally restore`, and the maintenance commands against a live `tally serve`.
@Suite("tally backup, restore and maintenance of a live server", .serialized)
struct BackupCLITests {
    /// Posts batch 1, 2, … (20 events each, ids "k<k>-<i>") one after another until stopped,
    /// retrying a batch the rate limit refused; every other answer than 200 or 429 is recorded.
    final class Poster: @unchecked Sendable {
        let acked = Atomic(0)
        let stop = Atomic(false)
        let failures = Mutex<[String]>([])
        private var thread: Thread?

        init(port: Int, key: String) {
            thread = Thread { [unowned self] in
                var k = 1
                while !stop.load(ordering: .relaxed) {
                    let now = ISO8601DateFormatter().string(from: Date())
                    let events = (0..<20).map { i in
                        #"{"event_type":"pageview","occurred_at":"\#(now)","event_id":"k\#(k)-\#(i)","visitor_id":"v\#(i % 7)","#
                            + #""session_id":"s\#(k % 5)","page_url":"https://a.example/b\#(k % 9)","#
                            + #""user_agent":"Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}"#
                    }
                    let body = Data((#"{"events":["# + events.joined(separator: ",") + "]}").utf8)
                    switch ServerCrashTests.request(port, "/v1/events", key: key, body: body) {
                    case (200, _)?:
                        acked.add(1, ordering: .relaxed)
                        k += 1
                    case (429, _)?:
                        usleep(100_000)
                    case let other:
                        let what = other.map { "\($0.0) \(String(decoding: $0.1, as: UTF8.self))" } ?? "no answer"
                        failures.withLock { $0.append("batch \(k): \(what)") }
                        usleep(100_000)
                    }
                }
            }
            thread?.start()
        }

        func finish() {
            stop.store(true, ordering: .relaxed)
            while thread?.isFinished == false { usleep(10_000) }
        }
    }

    /// Batch number → events of it in the store at `data`.
    static func eventsPerBatch(_ data: String) throws -> [Int: Int] {
        var options = StoreOptions(directory: data)
        options.backgroundFlush = false
        options.readOnly = true
        let store = try EventStore(options: options)
        defer { try? store.close() }
        var counts: [Int: Int] = [:]
        try store.snapshot().scan(ScanRequest(site: "default", columns: [.eventID])) { b in
            for i in 0..<b.count {
                counts[Int(b[string: .eventID].string(at: i)!.dropFirst().prefix { $0 != "-" })!, default: 0] += 1
            }
        }
        return counts
    }

    @Test("backup, merge and rollup rebuild of a live server's directory go through its admin API while ingest goes on; the backup restores to exactly the events up to its position, with its properties and keys")
    func liveServer() async throws {
        let dir = TemporaryDirectory("tally-backup")
        // A free port may be taken again before the server binds it (the server then exits): a
        // new one, and directory, then.
        var started: (server: ServerCrashTests.Server, data: String, key: String)?
        for attempt in 0..<3 where started == nil {
            let data = dir.path + "/data\(attempt)"
            let server = try ServerCrashTests.Server(data: data)
            let lines = try await onOwnThread { server.firstLines() }
            let port = server.port
            if let key = lines.split(separator: "\n").first(where: { $0.contains("write key:") })?.split(separator: " ").last,
               try await onOwnThread({ ServerCrashTests.waitForHealth(port, seconds: 30) }) {
                started = (server, data, String(key))
            } else {
                server.kill9()
            }
        }
        let (server, data, key) = try #require(started, "tally serve did not come up on any of 3 ports")
        defer { server.kill9() }
        let port = server.port
        let poster = Poster(port: port, key: key)
        defer { poster.finish() }
        /// Waits (at most a minute) until `n` batches were acknowledged.
        func acknowledged(_ n: Int) async throws -> Bool {
            let deadline = ContinuousClock.now + .seconds(60)
            while poster.acked.load(ordering: .relaxed) < n {
                if ContinuousClock.now > deadline { return false }
                try await Task.sleep(for: .milliseconds(10))
            }
            return true
        }
        try #require(try await acknowledged(20), "the server acknowledged no 20 batches in a minute")

        let ackedBefore = poster.acked.load(ordering: .relaxed)
        let backup = try await CLITests.tallyAsync(["backup", dir.path + "/backup", "--data", data])
        #expect(backup.status == 0, "\(backup.stderr)")
        #expect(backup.stdout.contains("through the admin API of the server holding"), "\(backup.stdout)")
        let merge = try await CLITests.tallyAsync(["merge", "--data", data])
        #expect(merge.status == 0 && merge.stdout.contains("through the admin API"), "\(merge.stdout)\(merge.stderr)")
        let today = String(ISO8601DateFormatter().string(from: Date()).prefix(10))
        let rebuild = try await CLITests.tallyAsync(["rollup", "rebuild", "--from", today, "--to", today, "--data", data])
        #expect(rebuild.status == 0 && rebuild.stdout.contains("through the admin API"), "\(rebuild.stdout)\(rebuild.stderr)")
        // Read-only commands beside it, while its flushes and merges change the parts.
        for args in [["inspect"], ["verify"], ["wal"], ["query", "--property", "default", "--period", "7d", "--metrics", "pageviews"],
                     ["dump", "--site", "default", "--limit", "5"]] {
            let run = try await CLITests.tallyAsync(args + ["--data", data])
            #expect(run.status == 0, "tally \(args.joined(separator: " ")): \(run.stderr)")
        }
        let badMonth = try await CLITests.tallyAsync(["drop-partition", "202001", "--data", data, "--yes"])
        #expect(badMonth.status == 1 && badMonth.stderr.contains("no partition 202001"))

        // The control token of DIR/SERVER opens the maintenance routes only.
        let control = try #require(ServerFile.read(from: data))
        #expect(control.pid == server.process.processIdentifier)
        let token = control.token
        #expect(try await onOwnThread { ServerCrashTests.request(port, "/v1/admin/properties", key: token)?.0 } == 403)
        let refused = try await onOwnThread { ServerCrashTests.request(port, "/v1/admin/merge", key: "wrong", body: Data("{}".utf8)) }
        #expect(refused?.0 == 401)
        let relative = try await onOwnThread {
            ServerCrashTests.request(port, "/v1/admin/backup", key: token, body: Data(#"{"destination":"relative/dir"}"#.utf8))
        }
        #expect(relative?.0 == 400 && String(decoding: relative!.1, as: UTF8.self).contains(#""field":"destination""#))

        try #require(try await acknowledged(ackedBefore + 20), "ingest stopped during the maintenance commands")
        try await onOwnThread { poster.finish() }
        #expect(poster.failures.withLock { $0 }.isEmpty, "ingest was disturbed: \(poster.failures.withLock { $0.prefix(3) })")

        let restored = try await CLITests.tallyAsync(["restore", dir.path + "/backup", "--data", dir.path + "/restored"])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(restored.stdout.contains("every checksum matched"))
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.path + "/backup/MANIFEST.json")))
            as! [String: Any]
        let position = (manifest["wal_lsn"] as! NSNumber).intValue
        #expect(position >= ackedBefore)
        let counts = try await onOwnThread { try Self.eventsPerBatch(dir.path + "/restored") }
        #expect(Set(counts.keys) == Set(1...position), "batches \(counts.keys.sorted().suffix(3)) for position \(position)")
        #expect(counts.values.allSatisfy { $0 == 20 })
        let metadata = try MetadataStore(directory: dir.path + "/restored", createIfMissing: false)
        #expect(try metadata.writeScope(forKey: String(key))?.propertyID == "default")
        try metadata.close()
    }

    @Test("restore refuses a damaged or unfinished backup and a used directory, with one line naming the file; backup refuses a used destination")
    func badInput() throws {
        let dir = TemporaryDirectory()
        let file = dir.path + "/events.ndjson"
        let lines = (0..<200).map { i in
            #"{"event_type":"page_view","occurred_at":"2026-08-\#(10 + i % 9)T10:00:00Z","site_id":"a","event_id":"e\#(i)"}"#
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: false, encoding: .utf8)
        let data = dir.path + "/d"
        #expect(try CLITests.tally(["ingest", file, "--data", data]).status == 0)
        let made = try CLITests.tally(["backup", dir.path + "/b", "--data", data])
        #expect(made.status == 0 && made.stdout.contains("(took the lock of"), "\(made.stdout)\(made.stderr)")
        let again = try CLITests.tally(["backup", dir.path + "/b", "--data", data])
        #expect(again.status == 1 && again.stderr.contains("exists and is not empty"))

        let good = try CLITests.tally(["restore", dir.path + "/b", "--data", dir.path + "/r"])
        #expect(good.status == 0 && good.stdout.contains("200 events in"), "\(good.stdout)\(good.stderr)")
        let used = try CLITests.tally(["restore", dir.path + "/b", "--data", dir.path + "/r"])
        #expect(used.status == 1 && used.stderr.contains("exists and is not empty"))

        // A flipped byte in a part: named, and nothing is left behind.
        let part = try #require(try FileManager.default.contentsOfDirectory(atPath: dir.path + "/b/parts").first { $0.hasSuffix(".part") })
        let path = dir.path + "/b/parts/" + part
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count / 2] ^= 0x40
        try FileManager.default.removeItem(atPath: path)  // a hard link: write a new file, not the source's
        try bytes.write(to: URL(fileURLWithPath: path))
        let flipped = try CLITests.tally(["restore", dir.path + "/b", "--data", dir.path + "/r2"])
        #expect(flipped.status == 1)
        #expect(flipped.stderr.contains("parts/" + part) && flipped.stderr.contains("SHA-256"), "\(flipped.stderr)")
        #expect(flipped.stderr.filter { $0 == "\n" }.count == 1)
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/r2"))
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/r2.restoring"))

        // A staging directory already there (another restore, or an interrupted one) is not taken over.
        try FileManager.default.createDirectory(atPath: dir.path + "/r5.restoring", withIntermediateDirectories: true)
        let staged = try CLITests.tally(["restore", dir.path + "/b", "--data", dir.path + "/r5"])
        #expect(staged.status == 1 && staged.stderr.contains("r5.restoring: exists"), "\(staged.stderr)")

        try FileManager.default.removeItem(atPath: dir.path + "/b/MANIFEST.json")
        let unfinished = try CLITests.tally(["restore", dir.path + "/b", "--data", dir.path + "/r3"])
        #expect(unfinished.status == 1 && unfinished.stderr.contains("MANIFEST.json: missing"), "\(unfinished.stderr)")
        let none = try CLITests.tally(["restore", dir.path + "/nothing", "--data", dir.path + "/r4"])
        #expect(none.status == 1 && none.stderr.contains("no such directory"))
    }

    @Test("commands that open a directory to change it expire nothing: rollup months older than the default retention stay; a rebuild of days before any data is a no-op")
    func nothingExpires() throws {
        let dir = TemporaryDirectory()
        let file = dir.path + "/old.ndjson"
        let lines = (0..<50).map { i in
            #"{"event_type":"page_view","occurred_at":"2020-03-\#(10 + i % 9)T10:00:00Z","site_id":"a","event_id":"o\#(i)","visitor_id":"v\#(i % 4)"}"#
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: false, encoding: .utf8)
        let data = dir.path + "/d"
        #expect(try CLITests.tally(["ingest", file, "--data", data]).status == 0)
        #expect(try CLITests.tally(["merge", "--data", data]).status == 0)
        #expect(try CLITests.tally(["backup", dir.path + "/b", "--data", data]).status == 0)
        let run = try CLITests.tally(["inspect", "--data", data, "--json"])
        let rollups = (try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as! [String: Any])["rollups"] as! [[String: Any]]
        #expect(!rollups.isEmpty && rollups.allSatisfy { ($0["months"] as? [String]) == ["202003"] }, "\(rollups)")
        let early = try CLITests.tally(["rollup", "rebuild", "--from", "1900-01-01", "--to", "1900-01-02", "--data", data])
        #expect(early.status == 0 && early.stdout.contains("nothing rebuilt"), "\(early.stdout)\(early.stderr)")
    }
}
