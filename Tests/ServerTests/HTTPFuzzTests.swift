import Engine
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Server
import TallyTestSupport
import Testing

/// A fuzz pass over POST /v1/events: random and mutated bodies never crash the server, are
/// answered 200 (with per-event errors) or 4xx with a JSON body, and whatever was answered
/// as accepted is exactly what the store holds afterwards.
@Suite("HTTP ingest fuzz pass")
struct HTTPFuzzTests {
    static let seeds: [String] = [
        #"{"events":[{"event_id":"e1","event_type":"widget_impression","occurred_at":"2026-08-01T10:30:00.000Z","session_id":"s1","visitor_id":"v1","page_url":"https://example.com/post/123?utm_source=x&id=9","properties":{"mapping_id":456,"post_id":123,"device_slug":"ios"}},{"event_type":"page_view","occurred_at":1785577800000,"visitor_id":"v2","referrer":"https://google.com/search?q=a","user_agent":"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"}]}"#,
        #"{"schema_version":1,"property_id":"site-a","sent_at":"2026-08-01T18:12:33Z","events":[{"event_id":"01HR0000000000000000000000","type":"pageview","ts":"2026-08-01T18:12:33Z","context":{"page":{"url":"https://example.com/p?utm_campaign=c","path":"/p","title":"P","referrer":"https://news.example/"},"campaign":{"campaign_id":"cmp_1","utm":{"source":"google","medium":"cpc"}}},"identity":{"visitor_id":"v_a","session_id":"s_a","user_id_hash":"u1"},"data":{"value":3.5}}]}"#,
        #"{"event_type":"page_view","occurred_at":"2026-08-01T10:00:00Z","event_id":"single-1","page_url":"https://example.com/"}"#,
    ]

    /// Pieces a mutation inserts: JSON syntax, extreme values, bad encodings.
    static let fragments: [[UInt8]] = [
        "{", "}", "[", "]", ",", ":", "\"", "\\", "null", "true", "1e999", "-0", "18446744073709551616",
        "\"\\u0000\"", "\"\\ud800\"", "\"\\uZZZZ\"", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "{\"a\":{\"b\":{\"c\":",
        "\"events\":", "\"occurred_at\":\"9999-99-99T99:99:99Z\"", "\"occurred_at\":-1", "\"site_id\":\"site-b\"",
        "\"property_id\":\"site-b\"", "\"event_type\":\"\"", String(repeating: "x", count: 5000),
    ].map { Array($0.utf8) } + [[0xFF, 0xFE], [0xC3], [0xE2, 0x82], [0x00], [0xED, 0xA0, 0x80]]

    static func mutate(_ input: [UInt8], _ rng: inout SeededRandom) -> [UInt8] {
        var b = input
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let at = b.isEmpty ? 0 : Int.random(in: 0..<b.count, using: &rng)
            switch Int.random(in: 0..<7, using: &rng) {
            case 0 where !b.isEmpty: b[at] = UInt8.random(in: 0...255, using: &rng)  // replace a byte
            case 1 where !b.isEmpty: b.removeSubrange(at..<min(b.count, at + Int.random(in: 1...20, using: &rng)))
            case 2: b.insert(contentsOf: fragments.randomElement(using: &rng)!, at: at)
            case 3 where !b.isEmpty: b = Array(b[..<at])  // truncate
            case 4 where !b.isEmpty:  // duplicate a range
                let end = min(b.count, at + Int.random(in: 1...200, using: &rng))
                b.insert(contentsOf: b[at..<end], at: end)
            case 5 where !b.isEmpty: b[at] = [0x22, 0x7B, 0x7D, 0x5B, 0x5D, 0x2C, 0x3A, 0x5C].randomElement(using: &rng)!
            default: b.append(contentsOf: fragments.randomElement(using: &rng)!)
            }
        }
        return b
    }

    static func random(_ rng: inout SeededRandom) -> [UInt8] {
        (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    @Test("1,500 random and mutated bodies: only 200 or 4xx with JSON, no crash, accepted == stored")
    func fuzz() async throws {
        let dir = TemporaryDirectory()
        var options = StoreOptions(directory: dir.path)
        options.backgroundFlush = false
        let store = try EventStore(options: options)
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.requestsPerMinutePerIP = 0
        configuration.maxBodyBytes = 64 << 10
        let keys = StaticKeys(writeKeys: ["wk_a": "site-a", "wk_b": "site-b"])
        let app = TallyServer.application(store: store, keys: keys, configuration: configuration)
        var rng = SeededRandom(state: 20_261_123)
        var bodies: [[UInt8]] = []
        for i in 0..<1500 {
            if i % 10 == 0 {
                bodies.append(Self.random(&rng))
            } else {
                bodies.append(Self.mutate(Array(Self.seeds[i % Self.seeds.count].utf8), &rng))
            }
        }
        let cases = bodies
        let accepted = try await app.test(.router) { client -> Int in
            var accepted = 0
            var statuses: [Int: Int] = [:]
            for (i, body) in cases.enumerated() {
                let response = try await client.execute(
                    uri: "/v1/events", method: .post,
                    headers: [.authorization: "Bearer wk_a", .contentType: "application/json"], body: ByteBuffer(bytes: body))
                let status = Int(response.status.code)
                statuses[status, default: 0] += 1
                #expect(status == 200 || (400..<500).contains(status), "case \(i): status \(status)")
                let json = try? JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
                #expect(json != nil, "case \(i): the answer is not a JSON object")
                if status == 200 {
                    accepted += json?["accepted"] as? Int ?? 0
                } else {
                    #expect(json?["error"] is String, "case \(i): a \(status) without an error message")
                }
            }
            // Both kinds of answers occurred: the pass reached the decoder's depths, not only its front door.
            #expect(statuses[200, default: 0] > 50)
            #expect(statuses[400, default: 0] > 50)
            let health = try await client.execute(uri: "/health", method: .get)
            #expect(health.status == .ok)
            return accepted
        }
        try store.flush()
        #expect(try store.snapshot().count(ScanRequest(site: "site-a")).count == accepted)
        #expect(try store.snapshot().count(ScanRequest(site: "site-b")).count == 0)
        try store.close()
    }
}
