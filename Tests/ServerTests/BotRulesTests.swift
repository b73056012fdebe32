import Server
import Testing

/// Bot rules match lowercased substrings of the User-Agent's UTF-8 bytes.
@Suite("bot rules")
struct BotRulesTests {
    @Test("a rule matches at the start, in the middle after a false start, and at the end, in any case")
    func substringPositions() {
        let rules = BotRules(rules: [.init(pattern: "bot", reason: "crawler")])
        #expect(rules.reason(forUserAgent: "bot/1.0") == "crawler")
        #expect(rules.reason(forUserAgent: "a bobcat's BOT") == "crawler")
        #expect(rules.reason(forUserAgent: "xbobot") == "crawler")
        #expect(rules.reason(forUserAgent: "Mozilla/5.0 (Ünïcode; Smörgåsbot)") == "crawler")
        #expect(rules.reason(forUserAgent: "bo") == nil)
        #expect(rules.reason(forUserAgent: "b o t") == nil)
        #expect(rules.reason(forUserAgent: "") == nil)
    }

    @Test("is_bot.never wins over every rule and is_bot.always marks a bot with reason config")
    func overrides() {
        var rules = BotRules(rules: [.init(pattern: "bot", reason: "crawler")])
        rules.never = ["friendlybot"]
        rules.always = ["acme-check"]
        #expect(rules.reason(forUserAgent: "FriendlyBot/2") == nil)
        #expect(rules.reason(forUserAgent: "ACME-Check/1") == "config")
        #expect(rules.reason(forUserAgent: "otherbot") == "crawler")
    }

    @Test("the built-in list filters crawlers and HTTP libraries and lets browsers through")
    func builtIn() {
        let rules = BotRules.builtIn
        #expect(rules.reason(forUserAgent: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)") != nil)
        #expect(rules.reason(forUserAgent: "python-requests/2.32.3") != nil)
        #expect(rules.reason(forUserAgent:
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36")
            == nil)
    }
}
