import Foundation
import Server
import TallyTestSupport
import Testing

@Suite("Settings: config file, environment, flags")
struct SettingsTests {
    func file(_ text: String) throws -> (TemporaryDirectory, String) {
        let dir = TemporaryDirectory()
        let path = dir.path + "/tally.json"
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        return (dir, path)
    }

    @Test("flags win over the environment, which wins over the file, which wins over defaults")
    func precedence() throws {
        let (dir, path) = try file(#"{"port": 9000, "host": "0.0.0.0", "admin_token": "t", "flush_rows": 5000,"#
            + #" "is_bot": {"always": ["Acme"]}, "default_origins": ["https://a.example"]}"#)
        _ = dir
        let s = try TallySettings(configFile: path, environment: ["TALLY_PORT": "9100", "TALLY_DATA": "/srv/t"],
                                  flags: ["port": "9200"])
        let c = try s.serverConfiguration()
        #expect(c.port == 9200)
        #expect(c.host == "0.0.0.0")
        #expect(c.adminToken == "t")
        #expect(c.bots.always == ["acme"])
        #expect(c.defaultOrigins == ["https://a.example"])
        #expect(s.dataDirectory == "/srv/t")
        #expect(try s.storeOptions().flushRows == 5000)
        #expect(try TallySettings(configFile: nil, environment: ["TALLY_ROLLUP_CACHE_BYTES": "1048576"], flags: [:])
            .storeOptions().rollupCacheBytes == 1 << 20)
        let defaults = try TallySettings(configFile: nil, environment: [:], flags: [:])
        #expect(defaults.dataDirectory == "./data")
        #expect(try defaults.serverConfiguration().adminToken == nil)
        #expect(try defaults.serverConfiguration().port == 8080)
    }

    @Test("unknown keys, wrong types, bad JSON and out-of-range values are errors naming the source and key")
    func errors() throws {
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "" } catch { return "\(error)" }
        }
        let (d1, unknown) = try file(#"{"prot": 80}"#)
        #expect(message { _ = try TallySettings(configFile: unknown, environment: [:], flags: [:]) }.contains("unknown setting \"prot\""))
        let (d2, typed) = try file(#"{"port": "eighty"}"#)
        #expect(message { _ = try TallySettings(configFile: typed, environment: [:], flags: [:]) }
            .contains("\(typed): \"port\" must be an integer"))
        let (d3, broken) = try file(#"{"port": 80"#)
        #expect(message { _ = try TallySettings(configFile: broken, environment: [:], flags: [:]) }.contains("not valid JSON"))
        _ = (d1, d2, d3)
        #expect(message { _ = try TallySettings(configFile: "/nonexistent/t.json", environment: [:], flags: [:]) }
            .contains("/nonexistent/t.json"))
        #expect(message { _ = try TallySettings(configFile: nil, environment: ["TALLY_MAX_EVENTS": "many"], flags: [:]) }
            .contains("TALLY_MAX_EVENTS"))
        #expect(message { _ = try TallySettings(configFile: nil, environment: [:], flags: ["nope": "1"]) }.contains("nope"))
        #expect(message { _ = try TallySettings(configFile: nil, environment: [:], flags: ["port": "70000"]).serverConfiguration() }
            .contains("port"))
        #expect(message { _ = try TallySettings(configFile: nil, environment: [:], flags: ["flush_rows": "0"]).storeOptions() }
            .contains("flush_rows"))
        #expect(message { _ = try TallySettings(configFile: nil, environment: [:], flags: ["rollup_cache_bytes": "-1"]).storeOptions() }
            .contains("rollup_cache_bytes"))
    }

    @Test("a bot patterns file adds rules; a malformed one is an error naming its line")
    func botFile() throws {
        let dir = TemporaryDirectory()
        let good = dir.path + "/bots.txt"
        try "# mine\ninternal  acme-checker\n".write(toFile: good, atomically: false, encoding: .utf8)
        let c = try TallySettings(configFile: nil, environment: [:], flags: ["bot_patterns_file": good]).serverConfiguration()
        #expect(c.bots.rules.first == BotRules.Rule(pattern: "acme-checker", reason: "internal"))
        let bad = dir.path + "/bad.txt"
        try "crawler googlebot\njustoneword\n".write(toFile: bad, atomically: false, encoding: .utf8)
        do {
            _ = try TallySettings(configFile: nil, environment: [:], flags: ["bot_patterns_file": bad]).serverConfiguration()
            Issue.record("a malformed file was accepted")
        } catch {
            #expect("\(error)".contains("bad.txt:2"))
        }
    }

    @Test("the README documents every setting with its environment variable")
    func readmeListsEverySetting() throws {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        for spec in TallySettings.all {
            #expect(text.contains("`\(spec.key)`") && text.contains("`\(spec.environmentName)`"), "README lacks \(spec.key)")
        }
    }

    @Test("the built-in bot list parses and catches the common crawlers, monitors and libraries, not browsers")
    func builtInBots() throws {
        let bots = BotRules.builtIn
        #expect(bots.rules.count > 50)
        let cases: [(String, String?)] = [
            ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "crawler"),
            ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "crawler"),
            ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)", "crawler"),
            ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "preview"),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36", "headless"),
            ("Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)", "monitor"),
            ("Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)", "monitor"),
            ("curl/8.5.0", "library"),
            ("python-requests/2.31.0", "library"),
            ("Go-http-client/1.1", "library"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", nil),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.0 Mobile/15E148 Safari/604.1", nil),
            ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", nil),
            ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36", nil),
        ]
        for (ua, reason) in cases {
            #expect(bots.reason(forUserAgent: ua) == reason, "\(ua)")
        }
        var overridden = bots
        overridden.never = ["uptimerobot"]
        overridden.always = ["firefox/133"]
        #expect(overridden.reason(forUserAgent: cases[5].0) == nil)
        #expect(overridden.reason(forUserAgent: cases[12].0) == "config")
    }
}
