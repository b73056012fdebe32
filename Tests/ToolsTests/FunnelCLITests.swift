import Foundation
import TallyTestSupport
import Testing

/// `tally funnel` as a user runs it.
@Suite("tally funnel")
struct FunnelCLITests {
    @Test("create, list, run and delete a funnel; bad steps, windows and names are one line naming the flag")
    func lifecycle() throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/data"
        let file = dir.path + "/events.ndjson"
        // 30 sessions: all see /, 20 then /pricing, 10 of those sign up two minutes later.
        var lines: [String] = []
        for s in 0..<30 {
            func add(_ type: String, _ minute: Int, _ path: String) {
                lines.append(#"{"event_type":"\#(type)","occurred_at":"2026-08-02T10:\#(String(format: "%02d", minute)):00Z","#
                    + #""site_id":"a","event_id":"e\#(s)-\#(minute)","visitor_id":"v\#(s)","session_id":"s\#(s)","#
                    + #""page_url":"https://a.example\#(path)"}"#)
            }
            add("page_view", 0, "/")
            if s < 20 { add("page_view", 1, "/pricing") }
            if s < 10 { add("signup", 3, "/pricing") }
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: false, encoding: .utf8)
        #expect(try CLITests.tally(["ingest", file, "--data", data]).status == 0)
        #expect(try CLITests.tally(["property", "create", "a", "--data", data]).status == 0)

        let create = try CLITests.tally(["funnel", "create", "a", "signup", "--data", data, "--window", "1h",
                                         "--step", "page_view:page_path==/", "--step", "page_view:page_path==/pricing",
                                         "--step", "signup"])
        #expect(create.status == 0)
        #expect(create.stdout.contains("per session, window 3600 s"))
        let again = try CLITests.tally(["funnel", "create", "a", "signup", "--data", data, "--step", "signup"])
        #expect(again.status == 1)
        #expect(again.stderr.hasPrefix("tally: NAME: property 'a' has a funnel named 'signup' already"))

        let list = try CLITests.tally(["funnel", "list", "a", "--data", data, "--json"])
        let specs = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]]
        #expect(specs?.first?["name"] as? String == "signup")
        #expect((specs?.first?["steps"] as? [Any])?.count == 3)

        let run = try CLITests.tally(["funnel", "run", "a", "signup", "--data", data, "--from", "2026-08-01", "--to", "2026-08-03"])
        #expect(run.status == 0)
        let rows = run.stdout.split(separator: "\n").filter { $0.hasPrefix("   ") }
        #expect(rows.count == 3)
        #expect(rows.map { $0.split(separator: " ", omittingEmptySubsequences: true)[1] } == ["30", "20", "10"])
        #expect(rows[2].contains("120 s"))

        for (args, prefix) in [
            (["--step", "page_view:page_path=/"], "tally: --step 1: "),
            (["--step", "a", "--window", "soon"], "tally: --window soon: "),
            (["--step", "a", "--window", "200000000000000d"], "tally: --window 200000000000000d: "),
            (["--step", "a", "--by", "user"], "tally: --by: "),
            ([String](), "tally: --step: "),
        ] {
            let bad = try CLITests.tally(["funnel", "create", "a", "x", "--data", data] + args)
            #expect(bad.status == 1, "\(args)")
            #expect(bad.stderr.hasPrefix(prefix), "\(args): \(bad.stderr)")
            #expect(bad.stderr.filter { $0 == "\n" }.count == 1)
        }
        let unknown = try CLITests.tally(["funnel", "run", "a", "nope", "--data", data])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("no funnel named nope"))

        #expect(try CLITests.tally(["funnel", "delete", "a", "signup", "--data", data]).status == 0)
        let gone = try CLITests.tally(["funnel", "delete", "a", "signup", "--data", data])
        #expect(gone.status == 1)
        #expect(gone.stderr.contains("no funnel named 'signup'"))
    }
}
