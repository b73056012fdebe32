@_spi(Testing) import Engine
import Foundation
import Server
import TallyTestSupport
import Testing

/// The `tally` executable as a user runs it: output, exit status, errors.
@Suite("tally command line")
struct CLITests {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// `tally` run from a thread of its own, for async tests that must not hold one of Swift
    /// concurrency's threads while the child runs (see `onOwnThread`).
    static func tallyAsync(_ arguments: [String]) async throws -> Run {
        try await onOwnThread { try tally(arguments) }
    }

    static func tally(_ arguments: [String]) throws -> Run {
        let process = Process()
        process.executableURL = TallyBinary.url
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                   stderr: String(decoding: e, as: UTF8.self))
    }

    @Test("ingest stores valid lines, rejects bad ones with line and reason, and counts duplicates")
    func ingestReport() throws {
        let dir = TemporaryDirectory()
        let file = dir.path + "/events.ndjson"
        let lines = [
            #"{"event_type":"page_view","occurred_at":"2026-08-01T10:00:00Z","site_id":"a","event_id":"x1"}"#,
            #"{"occurred_at":"2026-08-01T10:00:00Z","site_id":"a"}"#,
            "not json",
            #"{"event_type":"page_view","occurred_at":"2026-13-01T10:00:00Z"}"#,
            #"{"event_type":"page_view","occurred_at":"2026-08-01T10:00:00Z","site_id":"a","event_id":"x1"}"#,
        ]
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: false, encoding: .utf8)
        let run = try Self.tally(["ingest", file, "--data", dir.path + "/data", "--json"])
        #expect(run.status == 0)
        let summary = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as! [String: Any]
        #expect(summary["accepted"] as? Int == 1)
        #expect(summary["rejected"] as? Int == 3)
        #expect(summary["duplicates"] as? Int == 1)
        let examples = summary["examples"] as! [String]
        #expect(examples.contains("line 2: event_type: missing"))
        #expect(examples.contains("line 4: occurred_at: month out of range"))
        #expect(examples.contains { $0.hasPrefix("line 3: json: invalid JSON at column") })

        let inspect = try Self.tally(["inspect", "--data", dir.path + "/data", "--json"])
        #expect(inspect.status == 0)
        let report = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as! [String: Any]
        #expect(report["total_rows"] as? Int == 1)
        // August's last day plus the default 90-day raw retention.
        #expect((report["partitions"] as? [[String: Any]])?.first?["ttl_expiry"] as? String == "2026-11-30")
        // The one stored event was received just now: inside the dedupe window, outside a zero-hour one.
        #expect((report["dedupe_window"] as? [String: Any])?["event_ids"] as? Int == 1)
        // One key: in a shard's hash table (~16 bytes), nothing sealed to disk yet.
        #expect((report["dedupe_window"] as? [String: Any])?["approx_bytes"] as? Int == 16)
        #expect((report["dedupe_window"] as? [String: Any])?["approx_disk_bytes"] as? Int == 0)
        let text = try Self.tally(["inspect", "--data", dir.path + "/data"])
        #expect(text.stdout.contains("dedupe window: 168 h, up to 1 event ids a writer keeps"), "\(text.stdout)")
        let zero = try Self.tally(["inspect", "--data", dir.path + "/data", "--dedupe-window-hours", "0"])
        #expect(zero.status == 1 && zero.stderr.contains("--dedupe-window-hours 0"))
        #expect((report["total_bytes"] as? Int ?? 0) > 0)
    }

    @Test("a missing input file or data directory is one line naming it, with exit status 1")
    func missingFiles() throws {
        let dir = TemporaryDirectory()
        let ingest = try Self.tally(["ingest", dir.path + "/nope.ndjson", "--data", dir.path + "/data"])
        #expect(ingest.status == 1)
        #expect(ingest.stderr == "tally: \(dir.path)/nope.ndjson: cannot open for reading\n")
        let inspect = try Self.tally(["inspect", "--data", dir.path + "/missing"])
        #expect(inspect.status == 1)
        #expect(inspect.stderr == "tally: \(dir.path)/missing: no data directory at \(dir.path)/missing\n")
    }

    @Test("a second writer on the same data directory is refused with a clear message")
    func lockedDirectory() throws {
        let dir = TemporaryDirectory()
        let file = dir.path + "/events.ndjson"
        try #"{"event_type":"page_view","occurred_at":"2026-08-01T10:00:00Z"}"#.write(toFile: file, atomically: false, encoding: .utf8)
        let lock = dir.path + "/data/LOCK"
        try FileManager.default.createDirectory(atPath: dir.path + "/data", withIntermediateDirectories: true)
        let fd = open(lock, O_RDWR | O_CREAT, 0o644)
        #expect(flock(fd, LOCK_EX) == 0)
        defer { close(fd) }
        let run = try Self.tally(["ingest", file, "--data", dir.path + "/data"])
        #expect(run.status == 1)
        #expect(run.stderr.contains("is in use by another tally process"))
    }

    @Test("property create prints the new keys as JSON; a bad id is one line and exit 1")
    func propertyCreate() throws {
        let dir = TemporaryDirectory()
        let run = try Self.tally(["property", "create", "shop", "--name", "Shop", "--data", dir.path, "--json"])
        #expect(run.status == 0)
        let created = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as! [String: Any]
        #expect(created["property_id"] as? String == "shop")
        #expect((created["write_key"] as? String)?.hasPrefix("tw_") == true)
        #expect((created["read_key"] as? String)?.hasPrefix("tr_") == true)
        let list = try Self.tally(["property", "list", "--data", dir.path])
        #expect(list.stdout.contains("shop"))
        let bad = try Self.tally(["property", "create", "bad id", "--data", dir.path])
        #expect(bad.status == 1)
        #expect(bad.stderr.hasPrefix("tally: property id 'bad id' is invalid"))
        #expect(bad.stderr.filter { $0 == "\n" }.count == 1)
    }

    @Test("property update changes timezone and retention, keeps the rest; an unknown property is one line and exit 1")
    func propertyUpdate() throws {
        let dir = TemporaryDirectory()
        #expect(try Self.tally(["property", "create", "shop", "--origin", "https://shop.example", "--data", dir.path]).status == 0)
        let run = try Self.tally(["property", "update", "shop", "--timezone", "Europe/Berlin", "--raw-retention-days", "30",
                                  "--data", dir.path, "--json"])
        #expect(run.status == 0)
        let p = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as! [String: Any]
        #expect(p["timezone"] as? String == "Europe/Berlin")
        #expect(p["raw_retention_days"] as? Int == 30)
        #expect(p["rollup_retention_days"] as? Int == 730)
        #expect(p["allowed_origins"] as? [String] == ["https://shop.example"])
        let missing = try Self.tally(["property", "update", "nope", "--name", "x", "--data", dir.path])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("nope"))
        #expect(missing.stderr.filter { $0 == "\n" }.count == 1)
        let bad = try Self.tally(["property", "update", "shop", "--raw-retention-days", "0", "--data", dir.path])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("raw_retention_days"))
    }

    @Test("inspect lists the bots the server filtered, by property and reason")
    func inspectFiltered() throws {
        let dir = TemporaryDirectory()
        let metadata = try MetadataStore(directory: dir.path)
        try metadata.addFilteredEvents([
            FilteredEventCount(propertyID: "shop", day: "2026-11-22", reason: "crawler", events: 5),
            FilteredEventCount(propertyID: "shop", day: "2026-11-23", reason: "crawler", events: 2),
            FilteredEventCount(propertyID: "shop", day: "2026-11-23", reason: "library", events: 1),
        ])
        try metadata.close()
        let text = try Self.tally(["inspect", "--data", dir.path])
        #expect(text.status == 0)
        #expect(text.stdout.contains("shop: 8 events (crawler 7, library 1), 2026-11-22 .. 2026-11-23"))
        let json = try Self.tally(["inspect", "--data", dir.path, "--json"])
        let report = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
        #expect((report["filtered_bots"] as? [[String: Any]])?.count == 3)
    }

    @Test("serve with a bad config file or setting stops at once with one line naming it")
    func serveBadSettings() throws {
        let dir = TemporaryDirectory()
        let config = dir.path + "/tally.json"
        try #"{"port": 8080, "flush_rowz": 10}"#.write(toFile: config, atomically: false, encoding: .utf8)
        let run = try Self.tally(["serve", "--config", config, "--data", dir.path + "/data"])
        #expect(run.status == 1)
        #expect(run.stderr.contains("\(config): unknown setting \"flush_rowz\""))
        #expect(run.stderr.filter { $0 == "\n" }.count == 1)
        let set = try Self.tally(["serve", "--set", "port=http", "--data", dir.path + "/data"])
        #expect(set.status == 1)
        #expect(set.stderr.contains("port"))
    }

    @Test("query prints a table or JSON of the reporting model; bad parameters are one line naming the flag")
    func query() throws {
        let dir = TemporaryDirectory()
        let file = dir.path + "/events.ndjson"
        var lines: [String] = []
        for i in 0..<1200 {
            let path = ["/", "/blog", "/pricing"][i % 3]
            lines.append(#"{"event_type":"page_view","occurred_at":"2026-08-0\#(1 + i % 3)T10:00:00Z","site_id":"a","#
                + #""event_id":"e\#(i)","visitor_id":"v\#(i % 7)","page_url":"https://a.example\#(path)"}"#)
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: false, encoding: .utf8)
        #expect(try Self.tally(["ingest", file, "--data", dir.path + "/data", "--site", "a"]).status == 0)
        let args = ["query", "--data", dir.path + "/data", "--property", "a", "--from", "2026-08-01", "--to", "2026-08-03"]
        let json = try Self.tally(args + ["--metrics", "pageviews,unique_visitors", "--group-by", "path", "--exact", "--json"])
        #expect(json.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
        let data = object["data"] as! [[String: Any]]
        #expect(data.count == 3)
        #expect(data.allSatisfy { $0["pageviews"] as? Int == 400 && $0["unique_visitors"] as? Int == 7 })
        let table = try Self.tally(args + ["--metrics", "events", "--interval", "day"])
        #expect(table.status == 0)
        #expect(table.stdout.contains("2026-08-02"))
        #expect(table.stdout.contains("(3 of 3 rows, from the daily rollups: 3 rollup rows, 0 buffered rows)"))
        let raw = try Self.tally(args + ["--metrics", "events", "--interval", "day", "--exact"])
        #expect(raw.stdout.contains("(3 of 3 rows, 1,200 rows scanned)"))
        let total = try Self.tally(args + ["--metrics", "events"])
        #expect(total.stdout.contains("1,200"))
        let bad = try Self.tally(args + ["--metrics", "bounce_ratio"])
        #expect(bad.status == 1)
        #expect(bad.stderr.hasPrefix("tally: --metrics: unknown metric 'bounce_ratio'"))
        #expect(bad.stderr.filter { $0 == "\n" }.count == 1)

        // While another process holds the directory, the parts still answer, with a note.
        var options = StoreOptions(directory: dir.path + "/data")
        options.backgroundFlush = false
        let holder = try EventStore(options: options)
        let shared = try Self.tally(args + ["--metrics", "events"])
        #expect(shared.status == 0)
        #expect(shared.stdout.contains("1,200"))
        #expect(shared.stderr.contains("note: a server holds"))
        try holder.close()
    }

    @Test("dump prints rows as NDJSON or CSV through the scan's filters, with statistics")
    func dump() throws {
        let dir = TemporaryDirectory()
        let file = dir.path + "/events.ndjson"
        var lines: [String] = []
        for i in 0..<300 {
            lines.append(#"{"event_type":"\#(i % 2 == 0 ? "page_view" : "widget_click")","occurred_at":"2026-08-0\#(1 + i % 3)T10:00:00Z","#
                + #""site_id":"\#(i % 5 == 0 ? "b" : "a")","event_id":"e\#(i)","visitor_id":"v\#(i)","page_url":"https://a.example/p,\"\#(i)\""}"#)
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: false, encoding: .utf8)
        #expect(try Self.tally(["ingest", file, "--data", dir.path + "/data"]).status == 0)
        let base = ["dump", "--data", dir.path + "/data", "--site", "a"]
        let all = try Self.tally(base)
        #expect(all.status == 0)
        let rows = all.stdout.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(rows.count == 240)
        #expect(rows.allSatisfy { $0["site_id"] as? String == "a" && $0["prop_mapping_id"] is NSNull })
        let clicks = try Self.tally(base + ["--where", "event_type=widget_click", "--from", "2026-08-02", "--to", "2026-08-02",
                                           "--columns", "event_id,page_path", "--format", "csv", "--stats"])
        let csv = clicks.stdout.split(separator: "\n")
        #expect(csv.first == "event_id,page_path")
        let expected = (0..<300).filter { $0 % 2 == 1 && $0 % 5 != 0 && $0 % 3 == 1 }.count
        #expect(csv.count == 1 + expected)
        #expect(csv.dropFirst().allSatisfy { $0.hasSuffix("\"/p,\"\"\(String($0.split(separator: ",")[0].dropFirst()))\"\"\"") })
        #expect(clicks.stderr.contains("granules"))
        let limited = try Self.tally(base + ["--limit", "5"])
        #expect(limited.stdout.split(separator: "\n").count == 5)
        let bad = try Self.tally(base + ["--columns", "nope"])
        #expect(bad.status == 1 && bad.stderr.contains("unknown column 'nope'"))
    }

    @Test("wal lists segments and records with their events; a damaged record is named with its offset")
    func wal() async throws {
        let dir = TemporaryDirectory()
        var options = StoreOptions(directory: dir.path)
        options.backgroundFlush = false
        let store = try EventStore(options: options)
        for k in 0..<3 {
            let rows = (0..<(10 * (k + 1))).map { i in EventRow(site: "a", at: 1_785_000_000_000 + Int64(i), id: "e\(k)-\(i)") }
            _ = try await store.ingest(.of(rows))
        }
        try store.abandonForTesting()
        let run = try Self.tally(["wal", "--data", dir.path, "--records", "--json"])
        #expect(run.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as! [String: Any]
        let segments = object["segments"] as! [[String: Any]]
        #expect(segments.count == 1)
        #expect(segments[0]["events"] as? Int == 60)
        let records = segments[0]["record_list"] as! [[String: Any]]
        #expect(records.map { $0["events"] as? Int } == [10, 20, 30])
        #expect(segments[0]["problem"] == nil)
        let inspect = try Self.tally(["inspect", "--data", dir.path, "--json"])
        let overview = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as! [String: Any]
        #expect((overview["wal"] as? [String: Any])?["unflushed_events"] as? Int == 60)

        // Flip a byte inside the second record's payload.
        let name = segments[0]["name"] as! String
        let path = dir.path + "/wal/" + name
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let second = records[1]["offset"] as! Int
        bytes[second + 30] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let damaged = try Self.tally(["wal", "--data", dir.path])
        #expect(damaged.stdout.contains("1 records"))
        #expect(damaged.stdout.contains("checksum mismatch at offset \(second)"))
        let missing = try Self.tally(["wal", "--data", dir.path + "/nope"])
        #expect(missing.status == 1 && missing.stderr.contains("no data directory"))
    }

    @Test("verify passes sound parts and names the file and offset of a flipped byte, a truncation and a bad footer")
    func verify() throws {
        let dir = TemporaryDirectory()
        let file = dir.path + "/events.ndjson"
        var generate = try Self.tally(["generate", "--events", "5000", "--output", file])
        #expect(generate.status == 0)
        generate = try Self.tally(["ingest", file, "--data", dir.path + "/data"])
        #expect(generate.status == 0)
        let sound = try Self.tally(["verify", "--data", dir.path + "/data"])
        #expect(sound.status == 0, "\(sound.stdout)")
        #expect(sound.stdout.contains("0 problems"))
        let parts = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/data/parts").filter { $0.hasSuffix(".part") }
        // inspect PART shows the same part column by column.
        let inspect = try Self.tally(["inspect", "--data", dir.path + "/data", parts.sorted()[0], "--json"])
        #expect(inspect.status == 0)
        let report = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as! [String: Any]
        #expect((report["columns"] as? [[String: Any]])?.count == EventColumn.allCases.count)
        #expect((report["bloom_filters"] as? [[String: Any]])?.allSatisfy { ($0["bits"] as? Int ?? 0) > 0 } == true)
        #expect((report["primary_index"] as? [Any])?.count == report["granules"] as? Int)
        let text = try Self.tally(["inspect", "--data", dir.path + "/data", parts.sorted()[0]])
        #expect(text.stdout.contains("dictionary-codes") && text.stdout.contains("bloom filters"))
        let original = dir.path + "/data/parts/" + parts.sorted()[0]
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: original)))

        func damaged(_ name: String, _ change: (inout [UInt8]) -> Void) throws -> CLITests.Run {
            var copy = bytes
            change(&copy)
            // A copy under its own folder keeps the part file name the verifier expects.
            let named = dir.path + "/" + name + "/" + parts.sorted()[0]
            try FileManager.default.createDirectory(atPath: dir.path + "/" + name, withIntermediateDirectories: true)
            try Data(copy).write(to: URL(fileURLWithPath: named))
            return try Self.tally(["verify", named])
        }
        let flipped = try damaged("flipped") { $0[200] ^= 0x5A }
        #expect(flipped.status == 1)
        #expect(flipped.stdout.contains("flipped/") && flipped.stdout.contains("offset"))
        let truncated = try damaged("truncated") { $0.removeLast(100) }
        #expect(truncated.status == 1)
        #expect(truncated.stdout.contains("truncated/"))
        let footer = try damaged("footer") { $0[$0.count - 40] ^= 0x01 }
        #expect(footer.status == 1)
        #expect(footer.stdout.contains("footer/") && footer.stdout.contains("footer"))
        let missing = try Self.tally(["verify", dir.path + "/nothing.part"])
        #expect(missing.status == 1 && missing.stdout.contains("no such file"))

        // Session summaries (built by `tally merge`) are checked against their part's rows.
        let merge = try Self.tally(["merge", "--data", dir.path + "/data"])
        #expect(merge.status == 0 && merge.stdout.contains("session summaries of"), "\(merge.stdout)\(merge.stderr)")
        let summaries = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/data/parts").filter { $0.hasSuffix(".sessions") }
        #expect(!summaries.isEmpty)
        #expect(try Self.tally(["verify", "--data", dir.path + "/data"]).status == 0)
        let partName = summaries.sorted()[0].replacingOccurrences(of: ".sessions", with: ".part")
        let inspected = try Self.tally(["inspect", "--data", dir.path + "/data", partName, "--json"])
        let summary = (try JSONSerialization.jsonObject(with: Data(inspected.stdout.utf8)) as? [String: Any])?["session_summaries"]
            as? [String: Any]
        #expect(((summary?["blocks"] as? [[String: Any]])?.first?["sessions"] as? Int ?? 0) > 0, "\(inspected.stdout.suffix(400))")
        #expect(try Self.tally(["inspect", "--data", dir.path + "/data"]).stdout.contains("session summaries"))
        let summaryPath = dir.path + "/data/parts/" + summaries.sorted()[0]
        var summaryBytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: summaryPath)))
        summaryBytes[40] ^= 0x5A
        try Data(summaryBytes).write(to: URL(fileURLWithPath: summaryPath))
        let badSummaries = try Self.tally(["verify", "--data", dir.path + "/data"])
        #expect(badSummaries.status == 1)
        #expect(badSummaries.stdout.contains(summaries.sorted()[0] + " at offset 16"), "\(badSummaries.stdout)")
    }

    @Test("export then ingest into an empty directory gives the same report answers")
    func exportRoundTrip() throws {
        let dir = TemporaryDirectory()
        let file = dir.path + "/events.ndjson"
        #expect(try Self.tally(["generate", "--events", "20000", "--output", file]).status == 0)
        #expect(try Self.tally(["ingest", file, "--data", dir.path + "/a"]).status == 0)
        let exported = dir.path + "/export.ndjson"
        let export = try Self.tally(["export", "--data", dir.path + "/a"])
        #expect(export.status == 0)
        try export.stdout.write(toFile: exported, atomically: false, encoding: .utf8)
        let load = try Self.tally(["ingest", exported, "--data", dir.path + "/b", "--json"])
        let summary = try JSONSerialization.jsonObject(with: Data(load.stdout.utf8)) as! [String: Any]
        #expect(summary["rejected"] as? Int == 0)
        let sites = try Self.tally(["dump", "--data", dir.path + "/a", "--columns", "site_id", "--format", "csv"])
        let site = String(sites.stdout.split(separator: "\n")[1])
        for args in [["--metrics", "events,pageviews,unique_visitors,sessions,ctr", "--group-by", "event_type"],
                     ["--metrics", "events,unique_visitors", "--interval", "day"],
                     ["--metrics", "pageviews", "--group-by", "path,country_code", "--limit", "50"],
                     ["--metrics", "events", "--group-by", "mapping_id,device_slug,props.click_target", "--limit", "50"]] {
            func answer(_ d: String) throws -> String {
                try Self.tally(["query", "--data", dir.path + "/" + d, "--property", site, "--from", "2026-08-01",
                                "--to", "2026-10-31", "--exact", "--json"] + args).stdout
            }
            let a = try answer("a")
            #expect(a.contains("\"data\":[{"))
            #expect(a == (try answer("b")), "\(args)")
        }
    }

    @Test("drop-partition deletes one month after confirmation (or --yes) and refuses bad months")
    func dropPartition() throws {
        let dir = TemporaryDirectory()
        let file = dir.path + "/events.ndjson"
        let lines = (0..<40).map { i in
            #"{"event_type":"page_view","occurred_at":"2026-0\#(i % 2 == 0 ? 8 : 9)-15T10:00:00Z","site_id":"a","event_id":"e\#(i)"}"#
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: false, encoding: .utf8)
        #expect(try Self.tally(["ingest", file, "--data", dir.path + "/d"]).status == 0)
        let unconfirmed = try Self.tally(["drop-partition", "202608", "--data", dir.path + "/d"])
        #expect(unconfirmed.status == 1 && unconfirmed.stdout.contains("nothing dropped"))
        let dropped = try Self.tally(["drop-partition", "202608", "--data", dir.path + "/d", "--yes"])
        #expect(dropped.status == 0)
        #expect(dropped.stdout.contains("dropped partition 202608: 20 events"))
        let left = try Self.tally(["dump", "--data", dir.path + "/d", "--columns", "event_id", "--format", "csv"])
        #expect(left.stdout.split(separator: "\n").count == 21)
        let again = try Self.tally(["drop-partition", "202608", "--data", dir.path + "/d", "--yes"])
        #expect(again.status == 1 && again.stderr.contains("no partition 202608"))
        let bad = try Self.tally(["drop-partition", "2026-08", "--data", dir.path + "/d", "--yes"])
        #expect(bad.status == 1 && bad.stderr.contains("not a month"))
        // Without --rollups the month's rollups stay (reports still count it); with it they go.
        func rollupMonths() throws -> Set<String> {
            let run = try Self.tally(["inspect", "--data", dir.path + "/d", "--json"])
            let rollups = (try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as! [String: Any])["rollups"] as! [[String: Any]]
            return Set(rollups.flatMap { $0["months"] as! [String] })
        }
        #expect(try rollupMonths() == ["202608", "202609"])
        let both = try Self.tally(["drop-partition", "202609", "--data", dir.path + "/d", "--yes", "--rollups"])
        #expect(both.status == 0 && both.stdout.contains("dropped partition 202609: 20 events; rollups: "), "\(both.stdout)")
        #expect(try rollupMonths() == ["202608"])
    }

    @Test("merge combines each month's parts and drops duplicates; rollup rebuild and inspect show the rollups")
    func mergeAndRollups() throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/d"
        for batch in 0..<3 {
            let lines = (0..<300).map { i in
                #"{"event_type":"page_view","occurred_at":"2026-08-\#(10 + i % 9)T10:00:00Z","site_id":"a","event_id":"b\#(batch)-\#(i)","visitor_id":"v\#(i % 13)","page_url":"https://a.example/p\#(i % 5)"}"#
            }
            let file = dir.path + "/events\(batch).ndjson"
            try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: false, encoding: .utf8)
            #expect(try Self.tally(["ingest", file, "--data", data]).status == 0)
        }
        let before = try Self.tally(["inspect", "--data", data, "--json"])
        let parts = ((try JSONSerialization.jsonObject(with: Data(before.stdout.utf8)) as! [String: Any])["partitions"]
            as! [[String: Any]]).first!["parts"] as! [Any]
        #expect(parts.count == 3)
        let merged = try Self.tally(["merge", "--data", data])
        #expect(merged.status == 0, "\(merged.stderr)")
        #expect(merged.stdout.hasPrefix("merged 3 parts into 1 in 1 merges (900 rows written"))
        let inspect = try Self.tally(["inspect", "--data", data])
        #expect(inspect.stdout.contains("rollups (daily, per site and local day):"))
        #expect(inspect.stdout.contains("pages"))
        // One rollup part in detail, by name: its rows, dictionaries, sites and sketch sizes.
        let rpart = try #require(try FileManager.default.contentsOfDirectory(atPath: data + "/rollups/pages").first { $0.hasSuffix(".rpart") })
        let one = try Self.tally(["inspect", "--data", data, rpart])
        #expect(one.status == 0, "\(one.stderr)")
        #expect(one.stdout.contains("rollup pages, local month 202608, level 1"), "\(one.stdout)")
        #expect(one.stdout.contains("900 events"))
        let oneJSON = try JSONSerialization.jsonObject(with: Data(try Self.tally(["inspect", "--data", data, rpart, "--json"]).stdout.utf8))
            as! [String: Any]
        #expect(oneJSON["events"] as? Int == 900)
        #expect((oneJSON["sites"] as? [[String: Any]])?.first?["zone"] as? String == "UTC")
        #expect((oneJSON["visitor_sketch_bytes"] as? Int ?? 0) > 0)
        let missing = try Self.tally(["inspect", "--data", data, "209901_00000001_0.rpart"])
        #expect(missing.status == 1 && missing.stderr.contains("no such rollup part"))
        let answer = try Self.tally(["query", "--data", data, "--property", "a", "--from", "2026-08-10", "--to", "2026-08-18",
                                     "--metrics", "pageviews", "--group-by", "path"])
        #expect(answer.stdout.contains("from the daily rollups"))
        #expect(answer.stdout.contains("/p0"))
        let rebuilt = try Self.tally(["rollup", "rebuild", "--from", "2026-08-01", "--to", "2026-08-31", "--data", data])
        #expect(rebuilt.status == 0 && rebuilt.stdout.contains("rebuilt the rollups of 202608"))
        let again = try Self.tally(["query", "--data", data, "--property", "a", "--from", "2026-08-10", "--to", "2026-08-18",
                                    "--metrics", "pageviews", "--group-by", "path"])
        #expect(again.stdout == answer.stdout)
        let bad = try Self.tally(["rollup", "rebuild", "--from", "2026-08", "--to", "2026-08-31", "--data", data])
        #expect(bad.status == 1 && bad.stderr.contains("--from 2026-08: not a date"))
    }
}
