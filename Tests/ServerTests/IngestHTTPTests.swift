import Engine
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Server
import TallyTestSupport
import Testing

/// A key directory for tests: fixed write keys per property.
struct StaticKeys: KeyDirectory {
    var writeKeys: [String: String]
    func writeScope(forKey key: String) throws -> WriteScope? {
        writeKeys[key].map {
            WriteScope(propertyID: $0, allowedOrigins: $0 == "site-b" ? ["https://b.example"] : ["*"],
                       rawRetentionDays: $0 == "site-c" ? 30 : nil)
        }
    }
}

@Suite("HTTP ingest")
struct IngestHTTPTests {
    static let keys = StaticKeys(writeKeys: ["wk_a": "site-a", "wk_b": "site-b", "wk_c": "site-c"])

    func withServer(_ configure: (inout ServerConfiguration) -> Void = { _ in }, clock: (any TallyClock)? = nil,
                    flushBytes: Int? = nil,
                    _ body: @escaping @Sendable (any TestClientProtocol, EventStore) async throws -> Void) async throws {
        let dir = TemporaryDirectory()
        var options = StoreOptions(directory: dir.path)
        options.backgroundFlush = false
        if let clock { options.clock = clock }
        if let flushBytes { options.flushBytes = flushBytes }
        let store = try EventStore(options: options)
        var configuration = ServerConfiguration()
        configuration.port = 0
        configure(&configuration)
        let app = TallyServer.application(store: store, keys: Self.keys, configuration: configuration)
        try await app.test(.live) { client in try await body(client, store) }
        try? store.close()
    }

    static func json(_ response: TestResponse) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as! [String: Any]
    }

    static func post(_ client: any TestClientProtocol, _ body: String, path: String = "/v1/events", key: String? = "wk_a",
                     headers extra: HTTPFields = [:]) async throws -> TestResponse {
        var headers = extra
        if let key { headers[.authorization] = "Bearer \(key)" }
        headers[.contentType] = "application/json"
        return try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: body))
    }

    static let flatBatch = """
        {"events":[
          {"event_id":"e1","event_type":"widget_impression","occurred_at":"2026-08-01T10:30:00.000Z","session_id":"s1",
           "visitor_id":"v1","page_url":"https://example.com/post/123","properties":{"mapping_id":456,"post_id":123}},
          {"event_type":"page_view","occurred_at":"2026-08-01T10:31:00Z","visitor_id":"v1","unknown_field":{"x":[1,2]}},
          {"occurred_at":"2026-08-01T10:31:00Z"}
        ]}
        """

    @Test("an event older than the raw retention is rejected naming occurred_at; the rest of the batch is stored")
    func olderThanRetention() async throws {
        let dir = TemporaryDirectory()
        var options = StoreOptions(directory: dir.path)
        options.backgroundFlush = false
        options.retention = 90 * 86_400_000
        let store = try EventStore(options: options)
        var configuration = ServerConfiguration()
        configuration.port = 0
        let app = TallyServer.application(store: store, keys: Self.keys, configuration: configuration)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try await app.test(.live) { client in
            let response = try await Self.post(client, """
                {"events":[{"event_type":"page_view","occurred_at":\(now - 200 * 86_400_000),"visitor_id":"v1"},
                           {"event_type":"page_view","occurred_at":\(now - 3_600_000),"visitor_id":"v1"}]}
                """)
            #expect(response.status == .ok)
            let json = try Self.json(response)
            #expect(json["accepted"] as? Int == 1)
            #expect(json["rejected"] as? Int == 1)
            let error = (json["errors"] as? [[String: Any]])?.first
            #expect(error?["index"] as? Int == 0)
            #expect(error?["field"] as? String == "occurred_at")
            #expect((error?["reason"] as? String)?.contains("retention (90 days)") == true)
            #expect(store.snapshot().rowCount == 1)
            // A property with a shorter retention of its own (30 days) refuses what the store keeps.
            let events = """
                {"events":[{"event_type":"page_view","occurred_at":\(now - 40 * 86_400_000),"visitor_id":"v2"}]}
                """
            let b = try Self.json(try await Self.post(client, events, key: "wk_c"))
            #expect(b["accepted"] as? Int == 0)
            let reason = ((b["errors"] as? [[String: Any]])?.first?["reason"] as? String) ?? ""
            #expect(reason.contains("retention (30 days)"), "\(reason)")
            let a = try Self.json(try await Self.post(client, events))
            #expect(a["accepted"] as? Int == 1)
        }
        try store.close()
    }

    @Test("a seed-000 batch is stored, bad events are rejected one by one, and the answer counts both")
    func flatBatch() async throws {
        try await withServer { client, store in
            let response = try await Self.post(client, Self.flatBatch)
            #expect(response.status == .ok)
            let body = try Self.json(response)
            #expect(body["accepted"] as? Int == 2)
            #expect(body["rejected"] as? Int == 1)
            #expect(body["duplicates"] as? Int == 0)
            let errors = body["errors"] as! [[String: Any]]
            #expect(errors.count == 1 && errors[0]["index"] as? Int == 2 && errors[0]["field"] as? String == "event_type")
            #expect(try store.snapshot().count(ScanRequest(site: "site-a")).count == 2)
            // A retry of the same request stores nothing new.
            let again = try Self.json(try await Self.post(client, Self.flatBatch))
            #expect(again["duplicates"] as? Int == 1)
        }
    }

    @Test("a seed-003 envelope is stored under the write key's property")
    func envelope() async throws {
        try await withServer { client, store in
            let body = """
                {"schema_version":1,"property_id":"site-a","sent_at":"2026-08-01T18:12:33Z","events":[
                  {"event_id":"01HR0000000000000000000000","type":"pageview","ts":"2026-08-01T18:12:33Z",
                   "context":{"page":{"url":"https://example.com/products/sku1","path":"/products/sku1","title":"Product",
                   "referrer":"https://google.com/"},"campaign":{"campaign_id":"cmp_789","utm":{"source":"google"}}},
                   "identity":{"visitor_id":"v_abc123","session_id":"s_def456"},"data":{}}]}
                """
            let response = try await Self.post(client, body, path: "/v1/ingest/batch", key: nil, headers: [IngestHTTPTestsHeader.writeKey: "wk_a"])
            #expect(response.status == .ok)
            #expect(try Self.json(response)["accepted"] as? Int == 1)
            var campaign: String?
            try store.snapshot().scan(ScanRequest(site: "site-a", columns: [.campaignID, .referrerDomain])) { b in
                campaign = b[string: .campaignID].string(at: 0)
                #expect(b[string: .referrerDomain].string(at: 0) == "google.com")
            }
            #expect(campaign == "cmp_789")
        }
    }

    @Test("a write key never writes into another property")
    func isolation() async throws {
        try await withServer { client, store in
            let envelope = #"{"property_id":"site-b","events":[{"type":"pageview","ts":"2026-08-01T18:12:33Z"}]}"#
            let refused = try await Self.post(client, envelope)
            #expect(refused.status == .forbidden)
            #expect(try Self.json(refused)["field"] as? String == "property_id")
            let flat = #"{"events":[{"event_type":"page_view","site_id":"site-b","occurred_at":"2026-08-01T10:00:00Z"},"#
                + #"{"event_type":"page_view","occurred_at":"2026-08-01T10:00:00Z"}]}"#
            let body = try Self.json(try await Self.post(client, flat))
            #expect(body["accepted"] as? Int == 1 && body["rejected"] as? Int == 1)
            #expect(((body["errors"] as! [[String: Any]])[0]["field"] as? String) == "site_id")
            #expect(try store.snapshot().count(ScanRequest(site: "site-b")).count == 0)
            #expect(try store.snapshot().count(ScanRequest(site: "site-a")).count == 1)
        }
    }

    @Test("missing or unknown keys get 401; the key may come as a query parameter for sendBeacon")
    func keys() async throws {
        try await withServer { client, _ in
            let event = #"{"events":[{"event_type":"page_view","occurred_at":"2026-08-01T10:00:00Z"}]}"#
            let missing = try await Self.post(client, event, key: nil)
            #expect(missing.status == .unauthorized)
            #expect(try Self.json(missing)["field"] as? String == "authorization")
            #expect(try await Self.post(client, event, key: "wk_nope").status == .unauthorized)
            let beacon = try await Self.post(client, event, path: "/v1/events?key=wk_b", key: nil)
            #expect(beacon.status == .ok)
            // The scheme in any case, spaces and tabs before the token (HTTP strips them after it).
            for header in ["bearer wk_a", "Bearer  wk_a", "BEARER \t wk_a"] {
                let r = try await Self.post(client, event, key: nil, headers: [.authorization: header])
                #expect(r.status == .ok, "\(header)")
            }
            let inside = try await Self.post(client, event, key: nil, headers: [.authorization: "Bearer wk_ a"])
            #expect(inside.status == .unauthorized)
        }
    }

    @Test("malformed JSON is a 400 naming the offset; too large a body or too many events a 413")
    func limits() async throws {
        try await withServer({ $0.maxBodyBytes = 4096; $0.maxEventsPerRequest = 3 }) { client, store in
            let broken = try await Self.post(client, #"{"events":[{"event_type":"x",}]}"#)
            #expect(broken.status == .badRequest)
            #expect(try Self.json(broken)["offset"] as? Int != nil)
            let big = try await Self.post(client, #"{"events":[{"event_type":"x","page_url":""#
                                          + String(repeating: "a", count: 5000) + #""}]}"#)
            #expect(big.status == .contentTooLarge)
            let many = (0..<4).map { _ in #"{"event_type":"page_view","occurred_at":"2026-08-01T10:00:00Z"}"# }
            let tooMany = try await Self.post(client, #"{"events":["# + many.joined(separator: ",") + "]}")
            #expect(tooMany.status == .contentTooLarge)
            #expect(try Self.json(tooMany)["field"] as? String == "events")
            #expect(store.snapshot().rowCount == 0)
        }
    }

    @Test("a body of many reads is taken whole up to the limit, and refused with 413 past it, storing nothing")
    func fragmentedBodies() async throws {
        try await withServer({ $0.maxBodyBytes = 1 << 20; $0.maxEventsPerRequest = 10_000 }) { client, store in
            func batch(_ n: Int) -> String {
                let events = (0..<n).map { i in
                    #"{"event_id":"f\#(i)","event_type":"page_view","occurred_at":"2026-08-01T10:00:00Z","#
                        + #""page_url":"https://example.com/\#(String(repeating: "p", count: 400))/\#(i)"}"#
                }
                return #"{"events":["# + events.joined(separator: ",") + "]}"
            }
            let fits = batch(2_000)  // ~1.04 MB, just below the limit: many reads of the socket
            #expect(fits.utf8.count > 512 << 10 && fits.utf8.count < 1 << 20)
            let ok = try await Self.post(client, fits)
            #expect(ok.status == .ok)
            #expect(try Self.json(ok)["accepted"] as? Int == 2_000)
            let over = try await Self.post(client, batch(2_400))  // ~1.25 MB
            #expect(over.status == .contentTooLarge)
            #expect(try Self.json(over)["field"] as? String == "body")
            #expect(store.snapshot().rowCount == 2_000)
        }
    }

    @Test("CORS: an allowed origin is echoed, a disallowed one gets 403, a preflight states what is accepted")
    func cors() async throws {
        try await withServer { client, store in
            let event = #"{"events":[{"event_type":"page_view","occurred_at":"2026-08-01T10:00:00Z"}]}"#
            let allowed = try await Self.post(client, event, key: "wk_b", headers: [.origin: "https://b.example"])
            #expect(allowed.status == .ok)
            #expect(allowed.headers[.accessControlAllowOrigin] == "https://b.example")
            let refused = try await Self.post(client, event, key: "wk_b", headers: [.origin: "https://evil.example"])
            #expect(refused.status == .forbidden)
            #expect(try Self.json(refused)["field"] as? String == "origin")
            #expect(try store.snapshot().count(ScanRequest(site: "site-b")).count == 1)
            let preflight = try await client.execute(
                uri: "/v1/events", method: .options,
                headers: [.origin: "https://b.example", .accessControlRequestMethod: "POST"])
            #expect(preflight.status == .noContent)
            #expect(preflight.headers[.accessControlAllowMethods]?.contains("POST") == true)
            #expect(preflight.headers[.accessControlAllowHeaders]?.contains("Authorization") == true)
        }
    }

    @Test("past the per-key rate limit requests get 429 with Retry-After and nothing is stored")
    func rateLimit() async throws {
        // A clock that stands still: no token comes back however slowly the requests go.
        let clock = ManualClock(QueryRange.date("2026-08-02")! * 86_400_000)
        try await withServer({ $0.requestsPerMinutePerKey = 3 }, clock: clock) { client, store in
            let event = #"{"events":[{"event_type":"page_view","occurred_at":"2026-08-01T10:00:00Z"}]}"#
            for _ in 0..<3 { #expect(try await Self.post(client, event).status == .ok) }
            let limited = try await Self.post(client, event)
            #expect(limited.status == .tooManyRequests)
            #expect(Int(limited.headers[.retryAfter] ?? "") ?? 0 >= 1)
            #expect(try Self.json(limited)["field"] as? String == "rate_limit")
            #expect(store.snapshot().rowCount == 3)
            // Another key has its own bucket.
            #expect(try await Self.post(client, event, key: "wk_b").status == .ok)
        }
    }

    @Test("a request that finds the buffer behind waits for the flush, then is accepted")
    func waitsForRoom() async throws {
        // flushBytes 1: any buffered event puts the store over its bound (and behind).
        try await withServer({ $0.overloadWaitMilliseconds = 600_000 }, flushBytes: 1) { client, store in
            let event = #"{"events":[{"event_type":"page_view","occurred_at":"2026-08-01T10:00:00Z"}]}"#
            #expect(try await Self.post(client, event).status == .ok)
            async let second = Self.post(client, event)
            // (The test client has one connection: the metrics are read once the post is answered.)
            while store.waitingForRoom == 0 { try await Task.sleep(for: .milliseconds(1)) }
            #expect(store.isOverloaded)
            try store.flush()
            let answer = try await second
            #expect(answer.status == .ok)
            #expect(try Self.json(answer)["accepted"] as? Int == 1)
            let metrics = try await client.execute(uri: "/metrics", method: .get)
            #expect(String(buffer: metrics.body).contains("tally_ingest_waiting_for_room 0"))
            #expect(store.status.bufferedRows == 1)
        }
    }

    @Test("over its buffer bound the server answers 503 with Retry-After instead of queueing")
    func backpressure() async throws {
        // flushBytes 1: any buffered event puts the store over its bound.
        try await withServer({ $0.overloadWaitMilliseconds = 0 }, flushBytes: 1) { client, store in
            let event = #"{"events":[{"event_type":"page_view","occurred_at":"2026-08-01T10:00:00Z"}]}"#
            #expect(try await Self.post(client, event).status == .ok)
            let busy = try await Self.post(client, event)
            #expect(busy.status == .serviceUnavailable)
            #expect(busy.headers[.retryAfter] == "1")
            try store.flush()
            #expect(try await Self.post(client, event).status == .ok)
        }
    }

    @Test("device, browser and OS come from the User-Agent, country from the proxy header; bots are filtered")
    func enrichment() async throws {
        try await withServer({ $0.countryHeader = "CF-IPCountry" }) { client, store in
            let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                + "Version/26.0 Mobile/15E148 Safari/604.1"
            let body = #"{"events":[{"event_type":"page_view","occurred_at":"2026-08-01T10:00:00Z","event_id":"h1"},"#
                + #"{"event_type":"page_view","occurred_at":"2026-08-01T10:00:00Z","event_id":"b1","#
                + #""user_agent":"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}]}"#
            let response = try await Self.post(client, body, headers: [.userAgent: iphone, HTTPField.Name("CF-IPCountry")!: "de"])
            let answer = try Self.json(response)
            #expect(answer["accepted"] as? Int == 1)
            #expect(answer["filtered"] as? Int == 1)
            var seen: [String] = []
            try store.snapshot().scan(ScanRequest(site: "site-a", columns: [.deviceType, .browser, .os, .countryCode, .eventID])) { b in
                for i in 0..<b.count {
                    seen.append([EventColumn.eventID, .deviceType, .browser, .os, .countryCode]
                        .map { b[string: $0].string(at: i) ?? "" }.joined(separator: "|"))
                }
            }
            #expect(seen == ["h1|mobile|Safari|iOS|DE"])
        }
    }

    @Test("an event's own user agent, device, browser, OS and country are kept; only rows without them are filled in")
    func enrichmentFillsOnlyMissing() async throws {
        try await withServer({ $0.countryHeader = "CF-IPCountry" }) { client, store in
            let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                + "Version/26.0 Mobile/15E148 Safari/604.1"
            let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
            // Row 0 carries everything, row 1 nothing (the request's user agent and country fill it),
            // row 2 its own user agent and country but no device, browser or OS, row 3 everything
            // again, after rows that needed filling.
            let own = #""user_agent":"custom-agent/1.0 (Windows NT 10.0)","device_type":"tablet","browser":"Edge","os":"Windows","country_code":"FR""#
            let body = #"{"events":["#
                + #"{"event_type":"page_view","occurred_at":"2026-08-01T10:00:00Z","event_id":"r0",\#(own)},"#
                + #"{"event_type":"page_view","occurred_at":"2026-08-01T10:00:01Z","event_id":"r1"},"#
                + #"{"event_type":"page_view","occurred_at":"2026-08-01T10:00:02Z","event_id":"r2","user_agent":"\#(firefox)","country_code":"JP"},"#
                + #"{"event_type":"page_view","occurred_at":"2026-08-01T10:00:03Z","event_id":"r3",\#(own)}]}"#
            let response = try await Self.post(client, body, headers: [.userAgent: iphone, HTTPField.Name("CF-IPCountry")!: "de"])
            #expect(try Self.json(response)["accepted"] as? Int == 4)
            var seen: [String] = []
            let columns: [EventColumn] = [.eventID, .userAgent, .deviceType, .browser, .os, .countryCode]
            try store.snapshot().scan(ScanRequest(site: "site-a", columns: columns)) { b in
                for i in 0..<b.count { seen.append(columns.map { b[string: $0].string(at: i) ?? "" }.joined(separator: "|")) }
            }
            #expect(seen.sorted() == [
                "r0|custom-agent/1.0 (Windows NT 10.0)|tablet|Edge|Windows|FR",
                "r1|\(iphone)|mobile|Safari|iOS|DE",
                "r2|\(firefox)|desktop|Firefox|Linux|JP",
                "r3|custom-agent/1.0 (Windows NT 10.0)|tablet|Edge|Windows|FR",
            ])
        }
    }

    @Test("page_url keeps only utm_* parameters, which fill the utm columns the event left empty")
    func utmFromURL() async throws {
        try await withServer { client, store in
            let body = #"{"events":[{"event_type":"page_view","occurred_at":"2026-08-01T10:00:00Z","#
                + #""page_url":"https://shop.example/p/1?email=a%40b.c&utm_source=news&utm_campaign=winter%20sale#top"}]}"#
            #expect(try Self.json(try await Self.post(client, body))["accepted"] as? Int == 1)
            var row: [String?] = []
            try store.snapshot().scan(ScanRequest(site: "site-a", columns: [.pageURL, .pagePath, .utmSource, .utmCampaign, .utmMedium])) { b in
                row = [EventColumn.pageURL, .pagePath, .utmSource, .utmCampaign, .utmMedium].map { b[string: $0].string(at: 0) }
            }
            #expect(row == ["https://shop.example/p/1?utm_source=news&utm_campaign=winter%20sale", "/p/1", "news", "winter sale", nil])
        }
    }

    @Test("/metrics counts requests by status and events by property in Prometheus text")
    func metrics() async throws {
        try await withServer { client, _ in
            _ = try await Self.post(client, Self.flatBatch)
            _ = try await Self.post(client, Self.flatBatch, key: nil)
            let response = try await client.execute(uri: "/metrics", method: .get)
            #expect(response.status == .ok)
            let text = String(buffer: response.body)
            #expect(text.contains(#"tally_ingest_requests_total{status="200"} 1"#))
            #expect(text.contains(#"tally_ingest_requests_total{status="401"} 1"#))
            #expect(text.contains(#"tally_events_accepted_total{property="site-a"} 2"#))
            #expect(text.contains(#"tally_events_rejected_total{property="site-a"} 1"#))
            #expect(text.contains("tally_buffered_rows 2"))
            #expect(text.contains("tally_rollup_cache_bytes 0"))
        }
    }

    @Test("an occurred_at far in the future is set to received_at and counted")
    func futureClamp() async throws {
        try await withServer { client, store in
            let body = #"{"events":[{"event_type":"page_view","occurred_at":"2099-01-01T00:00:00Z"}]}"#
            let before = Int64(Date().timeIntervalSince1970 * 1000)
            #expect(try Self.json(try await Self.post(client, body))["accepted"] as? Int == 1)
            var occurred: Int64 = 0
            var received: Int64 = -1
            try store.snapshot().scan(ScanRequest(site: "site-a", columns: [.occurredAt, .receivedAt])) { b in
                occurred = b[int: .occurredAt].values[0]
                received = b[int: .receivedAt].values[0]
            }
            #expect(occurred == received && occurred >= before)
            let text = String(buffer: try await client.execute(uri: "/metrics", method: .get).body)
            #expect(text.contains(#"tally_events_occurred_at_clamped_total{property="site-a"} 1"#))
        }
    }

    @Test("health answers ok")
    func health() async throws {
        try await withServer { client, _ in
            let response = try await client.execute(uri: "/health", method: .get)
            #expect(response.status == .ok)
            #expect(try Self.json(response)["status"] as? String == "ok")
        }
    }
}

enum IngestHTTPTestsHeader {
    static let writeKey = HTTPField.Name("X-Write-Key")!
}
