import Engine
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Server
import TallyTestSupport
import Testing

@Suite("HTTP admin API")
struct AdminHTTPTests {
    static let token = "admin-secret-0123456789"

    func withServer(token: String? = AdminHTTPTests.token,
                    configure: (inout ServerConfiguration) -> Void = { _ in },
                    _ body: @escaping @Sendable (any TestClientProtocol, EventStore, MetadataStore) async throws -> Void)
        async throws
    {
        let dir = TemporaryDirectory()
        var options = StoreOptions(directory: dir.path)
        options.backgroundFlush = false
        let store = try EventStore(options: options)
        let metadata = try MetadataStore(directory: dir.path)
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.adminToken = token
        configure(&configuration)
        let app = TallyServer.application(store: store, keys: metadata, metadata: metadata, configuration: configuration)
        try await app.test(.live) { client in try await body(client, store, metadata) }
        try? store.close()
    }

    static func call(_ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, _ body: String? = nil,
                     token: String? = AdminHTTPTests.token) async throws -> (Int, Any) {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        let response = try await client.execute(uri: path, method: method, headers: headers,
                                                body: body.map { ByteBuffer(string: $0) })
        let json = try JSONSerialization.jsonObject(with: Data(buffer: response.body), options: [.fragmentsAllowed])
        return (Int(response.status.code), json)
    }

    @Test("without the admin token nothing is answered: 401 missing or wrong, 403 when no token is configured")
    func authorization() async throws {
        try await withServer { client, _, metadata in
            let (missing, m) = try await Self.call(client, .get, "/v1/admin/properties", token: nil)
            #expect(missing == 401)
            #expect((m as? [String: Any])?["field"] as? String == "authorization")
            let (wrong, _) = try await Self.call(client, .post, "/v1/admin/properties", #"{"id":"x"}"#, token: "guess")
            #expect(wrong == 401)
            #expect(try metadata.property(id: "x") == nil)
        }
        try await withServer(token: nil) { client, _, _ in
            let (status, body) = try await Self.call(client, .get, "/v1/admin/properties")
            #expect(status == 403)
            #expect(((body as? [String: Any])?["error"] as? String)?.contains("admin_token") == true)
        }
    }

    @Test("a property created over HTTP gets keys that ingest under it; update, key creation and revocation work")
    func lifecycle() async throws {
        try await withServer { client, store, metadata in
            let (status, created) = try await Self.call(
                client, .post, "/v1/admin/properties",
                #"{"id":"shop.example","name":"Shop","timezone":"Europe/Berlin","origins":["https://shop.example"],"raw_retention_days":30}"#)
            #expect(status == 201)
            let c = try #require(created as? [String: Any])
            #expect(c["property_id"] as? String == "shop.example")
            let writeKey = try #require(c["write_key"] as? String)
            #expect(writeKey.hasPrefix("tw_"))
            #expect((c["read_key"] as? String)?.hasPrefix("tr_") == true)
            #expect(try metadata.property(id: "shop.example")?.rawRetentionDays == 30)

            let event = #"{"events":[{"event_type":"page_view","occurred_at":\#(Int64(Date().timeIntervalSince1970 * 1000) - 3_600_000),"event_id":"e1"}]}"#
            func post(_ key: String) async throws -> Int {
                Int(try await client.execute(uri: "/v1/events", method: .post,
                                             headers: [.authorization: "Bearer \(key)", .contentType: "application/json"],
                                             body: ByteBuffer(string: event)).status.code)
            }
            #expect(try await post(writeKey) == 200)
            #expect(try store.snapshot().count(ScanRequest(site: "shop.example")).count == 1)

            let (patched, p) = try await Self.call(client, .patch, "/v1/admin/properties/shop.example",
                                                   #"{"name":"Shop 2","origins":["*"]}"#)
            #expect(patched == 200)
            #expect((p as? [String: Any])?["name"] as? String == "Shop 2")
            #expect((p as? [String: Any])?["timezone"] as? String == "Europe/Berlin")
            #expect(try metadata.property(id: "shop.example")?.allowedOrigins == ["*"])

            let (made, k) = try await Self.call(client, .post, "/v1/admin/properties/shop.example/keys", #"{"kind":"write"}"#)
            #expect(made == 201)
            let second = try #require((k as? [String: Any])?["key"] as? String)
            let secondID = try #require((k as? [String: Any])?["key_id"] as? String)
            let (_, list) = try await Self.call(client, .get, "/v1/admin/properties/shop.example/keys")
            #expect((list as? [[String: Any]])?.count == 3)
            #expect((list as? [[String: Any]])?.allSatisfy { $0["key"] == nil } == true)

            let (revoked, r) = try await Self.call(client, .delete, "/v1/admin/keys/\(secondID)")
            #expect(revoked == 200)
            #expect((r as? [String: Any])?["revoked_at"] is Int)
            #expect(try await post(second) == 401)
            #expect(try await post(writeKey) == 200)

            let (shown, s) = try await Self.call(client, .get, "/v1/admin/properties/shop.example")
            #expect(shown == 200)
            #expect(((s as? [String: Any])?["keys"] as? [Any])?.count == 3)
            let (listed, all) = try await Self.call(client, .get, "/v1/admin/properties")
            #expect(listed == 200)
            #expect((all as? [[String: Any]])?.map { $0["id"] as? String } == ["shop.example"])
        }
    }

    @Test("bad admin requests get 400/404/409 naming the field")
    func errors() async throws {
        try await withServer { client, _, _ in
            func field(_ method: HTTPRequest.Method, _ path: String, _ body: String?) async throws -> (Int, String?) {
                let (status, json) = try await Self.call(client, method, path, body)
                return (status, (json as? [String: Any])?["field"] as? String)
            }
            let cases: [(HTTPRequest.Method, String, String?, Int, String?)] = [
                (.post, "/v1/admin/properties", #"{"name":"no id"}"#, 400, "id"),
                (.post, "/v1/admin/properties", #"{"id":"bad id!"}"#, 400, "id"),
                (.post, "/v1/admin/properties", #"{"id":"a","timezone":"Mars/Base"}"#, 400, "timezone"),
                (.post, "/v1/admin/properties", #"{"id":"a","origins":["example.com"]}"#, 400, "origins"),
                (.post, "/v1/admin/properties", #"{"id":"a","raw_retention_days":"ninety"}"#, 400, "raw_retention_days"),
                (.post, "/v1/admin/properties", #"{"id":"a","raw_retention_days":100,"rollup_retention_days":50}"#, 400,
                 "rollup_retention_days"),
                (.post, "/v1/admin/properties", "[1,2", 400, "body"),
                (.post, "/v1/admin/properties", #"{"id":"a"}"#, 201, nil),
                (.post, "/v1/admin/properties", #"{"id":"a"}"#, 409, nil),
                (.patch, "/v1/admin/properties/zzz", #"{"name":"x"}"#, 404, nil),
                (.post, "/v1/admin/properties/a/keys", #"{"kind":"admin"}"#, 400, "kind"),
                (.delete, "/v1/admin/keys/key_doesnotexist", nil, 404, nil),
            ]
            for (method, path, body, status, expectedField) in cases {
                let (got, gotField) = try await field(method, path, body)
                #expect(got == status, "\(method) \(path) \(body ?? "")")
                if let expectedField { #expect(gotField == expectedField, "\(path) \(body ?? "")") }
            }
        }
    }

    @Test("bot-filtered events are counted by reason in /metrics and recorded in meta.sqlite when the server stops")
    func filteredCounts() async throws {
        let dir = TemporaryDirectory()
        var options = StoreOptions(directory: dir.path)
        options.backgroundFlush = false
        let store = try EventStore(options: options)
        let metadata = try MetadataStore(directory: dir.path)
        let created = try metadata.createProperty(id: "p")
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.bots.always = ["acme-synthetic"]
        configuration.bots.never = ["friendlybot"]
        let app = TallyServer.application(store: store, keys: metadata, metadata: metadata, configuration: configuration)
        try await app.test(.live) { client in
            func post(_ id: String, _ ua: String) async throws {
                let body = #"{"events":[{"event_type":"page_view","occurred_at":\#(Int64(Date().timeIntervalSince1970 * 1000) - 3_600_000),"event_id":"\#(id)"}]}"#
                let r = try await client.execute(uri: "/v1/events", method: .post,
                                                 headers: [.authorization: "Bearer \(created.writeKey)", .userAgent: ua],
                                                 body: ByteBuffer(string: body))
                #expect(r.status == .ok)
            }
            try await post("1", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
            try await post("2", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0 Safari/537.36")
            try await post("3", "curl/8.5.0")
            try await post("4", "Mozilla/5.0 acme-synthetic/1.0")
            try await post("5", "FriendlyBot/1.0 (a real person's app)")
            let metrics = String(buffer: try await client.execute(uri: "/metrics", method: .get).body)
            #expect(metrics.contains(#"tally_events_filtered_bot_total{property="p",reason="crawler"} 1"#))
            #expect(metrics.contains(#"tally_events_filtered_bot_total{property="p",reason="headless"} 1"#))
            #expect(metrics.contains(#"tally_events_filtered_bot_total{property="p",reason="library"} 1"#))
            #expect(metrics.contains(#"tally_events_filtered_bot_total{property="p",reason="config"} 1"#))
        }
        try store.close()
        #expect(try store.snapshot().count(ScanRequest(site: "p")).count == 1)
        let recorded = Dictionary(try metadata.filteredEvents().map { ($0.reason, $0.events) }, uniquingKeysWith: +)
        #expect(recorded == ["crawler": 1, "headless": 1, "library": 1, "config": 1])
    }

    @Test("a property that respects Do Not Track and Global Privacy Control drops what such browsers send; others keep it")
    func privacySignals() async throws {
        try await withServer { client, store, metadata in
            let (status, created) = try await Self.call(client, .post, "/v1/admin/properties",
                                                        #"{"id":"private","respect_privacy_signals":true}"#)
            #expect(status == 201)
            let body = created as? [String: Any] ?? [:]
            #expect((body["property"] as? [String: Any])?["respect_privacy_signals"] as? Bool == true)
            let key = try #require(body["write_key"] as? String)
            let plain = try metadata.createProperty(id: "plain")
            let ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"
            func post(_ key: String, _ extra: HTTPFields, id: String) async throws -> [String: Any] {
                var headers: HTTPFields = [.authorization: "Bearer \(key)", .userAgent: ua]
                headers.append(contentsOf: extra)
                let now = ISO8601DateFormatter().string(from: Date())
                let event = #"{"events":[{"event_id":"\#(id)","event_type":"page_view","occurred_at":"\#(now)"}]}"#
                let r = try await client.execute(uri: "/v1/events", method: .post, headers: headers, body: ByteBuffer(string: event))
                return try JSONSerialization.jsonObject(with: Data(buffer: r.body)) as? [String: Any] ?? [:]
            }
            let dnt = try await post(key, [HTTPField.Name("DNT")!: "1"], id: "a")
            #expect(dnt["accepted"] as? Int == 0 && dnt["filtered"] as? Int == 1)
            let gpc = try await post(key, [HTTPField.Name("Sec-GPC")!: "1"], id: "b")
            #expect(gpc["accepted"] as? Int == 0 && gpc["filtered"] as? Int == 1)
            let none = try await post(key, [HTTPField.Name("DNT")!: "0"], id: "c")
            #expect(none["accepted"] as? Int == 1 && none["filtered"] as? Int == 0)
            let other = try await post(plain.writeKey, [HTTPField.Name("DNT")!: "1"], id: "d")
            #expect(other["accepted"] as? Int == 1)
            #expect(try store.snapshot().count(ScanRequest(site: "private")).count == 1)

            // Turned off again: the same browser's events are kept.
            let (patched, changed) = try await Self.call(client, .patch, "/v1/admin/properties/private",
                                                         #"{"respect_privacy_signals":false}"#)
            #expect(patched == 200 && (changed as? [String: Any])?["respect_privacy_signals"] as? Bool == false)
            let after = try await post(key, [HTTPField.Name("DNT")!: "1"], id: "e")
            #expect(after["accepted"] as? Int == 1)
        }
    }
}
