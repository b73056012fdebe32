import Foundation
import TallyTestSupport
import Testing

/// `tally bench ingest --spawn` as a user runs it: a child server, real HTTP, a result file.
@Suite("tally bench ingest")
struct IngestBenchTests {
    @Test("a spawned run posts distinct browser events that are all accepted, and writes latency and server figures")
    func spawnedRun() throws {
        let dir = TemporaryDirectory("tally-bench-ingest")
        let file = dir.path + "/result.json"
        let run = try CLITests.tally(["bench", "ingest", "--spawn", "--duration", "2", "--connections", "4",
                                      "--json", file])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        #expect(run.stdout.contains("events/s"))
        let data = try #require(FileManager.default.contents(atPath: file))
        let result = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let events = try #require(result["events"] as? Int)
        #expect(events > 0)
        #expect(result["errors"] as? Int == 0)
        #expect(result["accepted"] as? Int == events, "every posted event is new, valid and not a bot's")
        #expect(result["duplicates"] as? Int == 0)
        #expect(result["filtered"] as? Int == 0)
        #expect(result["rejected"] as? Int == 0)
        #expect(result["requests"] as? Int == events / 100)
        #expect((result["events_per_second"] as? Double ?? 0) > 0)
        let latency = try #require(result["latency_ms"] as? [String: Double])
        for field in ["p50", "p90", "p99", "p99_9", "max"] {
            #expect(latency[field] != nil, "latency_ms.\(field)")
        }
        #expect((latency["p50"] ?? 0) <= (latency["max"] ?? 0))
        let server = try #require(result["server"] as? [String: Any])
        #expect((server["peak_rss_bytes"] as? Int ?? 0) > 0)
        #expect(server["cpu_seconds"] is Double)
        #expect(server["exit_status"] as? Int == 0, "the server stops cleanly on SIGTERM")
    }

    @Test("--probe-every samples the server through the run, the probe due as the load ends included, without errors")
    func probes() throws {
        let dir = TemporaryDirectory("tally-bench-ingest")
        let file = dir.path + "/result.json"
        let run = try CLITests.tally(["bench", "ingest", "--spawn", "--rate", "2000", "--duration", "3", "--connections", "4",
                                      "--probe-every", "1", "--json", file])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let data = try #require(FileManager.default.contents(atPath: file))
        let result = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let timeline = try #require(result["timeline"] as? [[String: Any]])
        #expect(timeline.count >= 3, "\(timeline)")
        for sample in timeline {
            #expect(sample["errors"] == nil, "\(sample)")
            #expect(sample["overview_ms"] is Double && sample["pages_ms"] is Double, "\(sample)")
            #expect((sample["parts"] as? Int).map { $0 >= 0 } == true, "\(sample)")
        }
    }

    @Test("without --spawn and with no write key it says so in one line")
    func missingKey() throws {
        let run = try CLITests.tally(["bench", "ingest", "--url", "http://127.0.0.1:1", "--duration", "1"])
        #expect(run.status == 1)
        #expect(run.stderr == "tally: no write key: pass --key, set TALLY_WRITE_KEY, or use --spawn\n")
    }
}
