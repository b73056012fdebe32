import Engine
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Server
import TallyTestSupport
import Testing

/// Seed 001's event list and funnels over real HTTP: definitions managed with the admin token,
/// reports with read keys, every refusal naming its field.
@Suite("HTTP event list and funnels")
struct DrillDownHTTPTests {
    struct Keys {
        var shopRead: String
        var otherRead: String
    }

    static let admin = "admin-secret"
    static let today = CivilTime.day(ms: Int64(Date().timeIntervalSince1970 * 1000))
    static func at(_ daysAgo: Int64, _ minute: Int) -> String {
        QueryDimension.TimeBucket.day.label(today - daysAgo, .utc).description + String(format: "T10:%02d:00Z", minute)
    }

    /// Three sessions 2 days ago: s1 goes / → /pricing → signup (from a spring campaign),
    /// s2 goes / → signup, s3 only sees /pricing; v9 has a scroll event 40 days ago.
    func withServer(_ body: @escaping @Sendable (any TestClientProtocol, Keys) async throws -> Void) async throws {
        let dir = TemporaryDirectory()
        var options = StoreOptions(directory: dir.path)
        options.backgroundFlush = false
        let store = try EventStore(options: options)
        let metadata = try MetadataStore(directory: dir.path)
        let shop = try metadata.createProperty(id: "shop")
        let other = try metadata.createProperty(id: "other")
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.adminToken = Self.admin
        let app = TallyServer.application(store: store, keys: metadata, metadata: metadata, configuration: configuration)
        try await app.test(.live) { client in
            var events: [String] = []
            func add(_ id: String, _ type: String, _ daysAgo: Int64, _ minute: Int, _ visitor: String, _ session: String,
                     _ path: String, extra: String = "") {
                events.append(#"{"event_id":"\#(id)","event_type":"\#(type)","occurred_at":"\#(Self.at(daysAgo, minute))","#
                    + #""visitor_id":"\#(visitor)","session_id":"\#(session)","page_url":"https://shop.example\#(path)""#
                    + extra + "}")
            }
            add("e1", "page_view", 2, 0, "v1", "s1", "/", extra: #","utm_campaign":"spring""#)
            add("e2", "page_view", 2, 1, "v1", "s1", "/pricing")
            add("e3", "signup", 2, 5, "v1", "s1", "/pricing")
            add("e4", "page_view", 2, 0, "v2", "s2", "/")
            add("e5", "signup", 2, 2, "v2", "s2", "/")
            add("e6", "page_view", 2, 3, "v3", "s3", "/pricing")
            add("e7", "scroll", 40, 0, "v9", "s9", "/")
            let r = try await client.execute(
                uri: "/v1/events", method: .post,
                headers: [.authorization: "Bearer \(shop.writeKey)", .contentType: "application/json",
                          .userAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"],
                body: ByteBuffer(string: #"{"events":["# + events.joined(separator: ",") + "]}"))
            #expect(r.status == .ok)
            try await body(client, Keys(shopRead: shop.readKey, otherRead: other.readKey))
        }
        try store.close()
    }

    static func call(_ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, key: String?,
                     body: String? = nil) async throws -> (Int, Any?) {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let key { headers[.authorization] = "Bearer \(key)" }
        let r = try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
        let json = r.body.readableBytes == 0 ? nil : try JSONSerialization.jsonObject(with: Data(buffer: r.body))
        return (Int(r.status.code), json)
    }

    static let signup = #"""
        {"name":"signup","count_by":"session","window_seconds":3600,
         "steps":[{"event_type":"page_view","filters":"page_path==/"},
                  {"event_type":"page_view","filters":"page_path==/pricing"},
                  {"event_type":"signup"}]}
        """#

    @Test("funnel definitions: created with the admin token, listed with the property's read key, deleted")
    func funnelDefinitions() async throws {
        try await withServer { client, keys in
            let base = "/v1/properties/shop/funnels"
            var (status, json) = try await Self.call(client, .post, base, key: nil, body: Self.signup)
            #expect(status == 401)
            (status, json) = try await Self.call(client, .post, base, key: keys.shopRead, body: Self.signup)
            #expect(status == 401)
            (status, json) = try await Self.call(client, .post, base, key: Self.admin, body: Self.signup)
            #expect(status == 201)
            #expect((json as? [String: Any])?["mode"] as? String == "default")
            (status, json) = try await Self.call(client, .post, base, key: Self.admin, body: Self.signup)
            #expect(status == 409)
            #expect((json as? [String: Any])?["field"] as? String == "name")
            (status, _) = try await Self.call(client, .post, base + "?replace=true", key: Self.admin, body: Self.signup)
            #expect(status == 201)

            (status, json) = try await Self.call(client, .get, base, key: keys.shopRead)
            #expect(status == 200)
            #expect((json as? [[String: Any]])?.map { $0["name"] as? String } == ["signup"])
            (status, _) = try await Self.call(client, .get, base, key: keys.otherRead)
            #expect(status == 403)
            (status, json) = try await Self.call(client, .get, base + "/signup", key: Self.admin)
            #expect(status == 200)
            #expect(((json as? [String: Any])?["steps"] as? [Any])?.count == 3)

            // Refusals name the field.
            for (bad, field) in [
                (#"{"name":"x","steps":[{"event_type":"a","filters":"nonsense"}]}"#, "steps[0].filters"),
                (#"{"name":"x","steps":[]}"#, "steps"),
                (#"{"name":"x y","steps":[{"event_type":"a"}]}"#, "name"),
                (#"{"name":"x","steps":[{"event_type":"a"}],"count_by":"user"}"#, "count_by"),
                (#"{"name":"x","steps":[{"event_type":"a"}],"window_seconds":0}"#, "window_seconds"),
                (#"{"name":"x","steps":[{"event_type":""}]}"#, "steps[0].event_type"),
                (#"{"name":"x"}"#, "steps"),
                (#"{"name":"x","steps":[{"event_type":"a","filters":"entry_page==/"}]}"#, "steps[0].filters"),
            ] {
                (status, json) = try await Self.call(client, .post, base, key: Self.admin, body: bad)
                #expect(status == 400, "\(bad)")
                #expect((json as? [String: Any])?["field"] as? String == field, "\(bad)")
            }
            (status, _) = try await Self.call(client, .post, "/v1/properties/nope/funnels", key: Self.admin, body: Self.signup)
            #expect(status == 404)

            (status, _) = try await Self.call(client, .delete, base + "/signup", key: keys.shopRead)
            #expect(status == 401)
            (status, _) = try await Self.call(client, .delete, base + "/signup", key: Self.admin)
            #expect(status == 204)
            (status, _) = try await Self.call(client, .delete, base + "/signup", key: Self.admin)
            #expect(status == 404)
            (status, _) = try await Self.call(client, .get, base + "/signup", key: keys.shopRead)
            #expect(status == 404)
        }
    }

    @Test("a funnel report: entrants, conversion and median step times, with a breakdown")
    func funnelReport() async throws {
        try await withServer { client, keys in
            var (status, json) = try await Self.call(client, .post, "/v1/properties/shop/funnels", key: Self.admin, body: Self.signup)
            #expect(status == 201)
            (status, json) = try await Self.call(client, .get, "/v1/funnels/signup?period=7d&breakdown=utm_campaign",
                                                 key: keys.shopRead)
            #expect(status == 200)
            let data = (json as? [String: Any])?["data"] as? [String: Any] ?? [:]
            let steps = data["steps"] as? [[String: Any]] ?? []
            #expect(steps.map { $0["entrants"] as? Int } == [2, 1, 1])
            #expect(steps.map { $0["conversion_from_first"] as? Double } == [1, 0.5, 0.5])
            #expect(steps.map { $0["conversion_from_previous"] as? Double } == [1, 0.5, 1])
            #expect(steps[1]["median_seconds_from_previous"] as? Double == 60)
            #expect(steps[2]["median_seconds_from_previous"] as? Double == 240)
            let values = (data["breakdown"] as? [String: Any])?["values"] as? [[String: Any]] ?? []
            let byValue = Dictionary(uniqueKeysWithValues: values.map { v in
                ((v["value"] as? String) ?? "(none)", (v["steps"] as? [[String: Any]] ?? []).map { $0["entrants"] as? Int })
            })
            #expect(byValue == ["spring": [1, 1, 1], "(none)": [1, 0, 0]])

            (status, json) = try await Self.call(client, .get, "/v1/funnels/missing", key: keys.shopRead)
            #expect(status == 404)
            for (uri, field) in [
                ("/v1/funnels/signup?breakdown=nonsense", "breakdown"), ("/v1/funnels/signup?breakdown=entry_page", "breakdown"),
                ("/v1/funnels/signup?limit=-1", "limit"), ("/v1/funnels/signup?limit=0", "limit"),
            ] {
                (status, json) = try await Self.call(client, .get, uri, key: keys.shopRead)
                #expect(status == 400, "\(uri)")
                #expect((json as? [String: Any])?["field"] as? String == field, "\(uri)")
            }
            (status, _) = try await Self.call(client, .get, "/v1/funnels/signup", key: nil)
            #expect(status == 401)
            // Another property's read key sees its own (absent) funnel, never shop's.
            (status, _) = try await Self.call(client, .get, "/v1/funnels/signup", key: keys.otherRead)
            #expect(status == 404)
        }
    }

    @Test("the event list: newest first, filtered, paged by cursor, projected; errors name the parameter")
    func eventList() async throws {
        try await withServer { client, keys in
            var (status, json) = try await Self.call(client, .get, "/v1/events?visitor_id=v1", key: keys.shopRead)
            #expect(status == 200)
            var rows = (json as? [String: Any])?["data"] as? [[String: Any]] ?? []
            #expect(rows.map { $0["event_id"] as? String } == ["e3", "e2", "e1"])
            #expect(rows.first?["page_path"] as? String == "/pricing")
            #expect((rows.first?["occurred_at"] as? String)?.hasPrefix(String(Self.at(2, 5).dropLast(4))) == true)

            // One event per page, following cursors: every event of the last 30 days once.
            var seen: [String] = []
            var cursor: String?
            repeat {
                let uri = "/v1/events?limit=1&columns=event_id,event_type" + (cursor.map { "&cursor=\($0)" } ?? "")
                (status, json) = try await Self.call(client, .get, uri, key: keys.shopRead)
                #expect(status == 200)
                let object = json as? [String: Any] ?? [:]
                rows = object["data"] as? [[String: Any]] ?? []
                #expect(rows.allSatisfy { Set($0.keys) == ["event_id", "event_type"] })
                seen += rows.compactMap { $0["event_id"] as? String }
                cursor = (object["meta"] as? [String: Any])?["next_cursor"] as? String
            } while cursor != nil && seen.count < 20
            // e4 and e1 share their instant: event_id breaks the tie, descending.
            #expect(seen == ["e3", "e6", "e5", "e2", "e4", "e1"])

            (status, json) = try await Self.call(client, .get, "/v1/events?period=90d&event_type=scroll", key: keys.shopRead)
            #expect(((json as? [String: Any])?["data"] as? [Any])?.count == 1)
            (status, json) = try await Self.call(
                client, .get, "/v1/events?filters=page_path%3D%3D/pricing;event_type!=signup", key: keys.shopRead)
            rows = (json as? [String: Any])?["data"] as? [[String: Any]] ?? []
            #expect(rows.map { $0["event_id"] as? String } == ["e6", "e2"])

            for (uri, field) in [
                ("/v1/events?cursor=zzz", "cursor"), ("/v1/events?columns=nope", "columns"), ("/v1/events?limit=0", "limit"),
                ("/v1/events?filters=bogus", "filters"), ("/v1/events?period=soon", "period"),
                ("/v1/events?cursor=OTIyMzM3MjAzNjg1NDc3NTgwNzp4", "cursor"), ("/v1/events?filters=entry_page%3D%3D/", "filters"),
            ] {
                (status, json) = try await Self.call(client, .get, uri, key: keys.shopRead)
                #expect(status == 400, "\(uri)")
                #expect((json as? [String: Any])?["field"] as? String == field, "\(uri)")
            }
            (status, _) = try await Self.call(client, .get, "/v1/events", key: nil)
            #expect(status == 401)
            (status, json) = try await Self.call(client, .get, "/v1/events", key: keys.otherRead)
            #expect(((json as? [String: Any])?["data"] as? [Any])?.isEmpty == true)
        }
    }

    @Test("sessions: the list, the stats and the behavior summary of seed 001")
    func sessions() async throws {
        try await withServer { client, keys in
            var (status, json) = try await Self.call(client, .get, "/v1/sessions?period=7d", key: keys.shopRead)
            #expect(status == 200)
            var object = json as? [String: Any] ?? [:]
            let rows = object["data"] as? [[String: Any]] ?? []
            // s3 starts at 10:03, s1 and s2 at 10:00 (ids descending on equal starts).
            #expect(rows.map { $0["session_id"] as? String } == ["s3", "s2", "s1"])
            #expect((object["meta"] as? [String: Any])?["total"] as? Int == 3)
            let s1 = rows.last ?? [:]
            #expect(s1["entry_page"] as? String == "/" && s1["exit_page"] as? String == "/pricing")
            #expect(s1["pageviews"] as? Int == 2 && s1["events"] as? Int == 3 && s1["bounced"] as? Bool == false)
            #expect(s1["duration_seconds"] as? Double == 300)
            #expect(s1["utm_campaign"] as? String == "spring")
            #expect(rows.first?["bounced"] as? Bool == true)

            (status, json) = try await Self.call(client, .get, "/v1/sessions?period=7d&filters=entry_page%3D%3D/&limit=1&offset=1",
                                                 key: keys.shopRead)
            object = json as? [String: Any] ?? [:]
            #expect((object["data"] as? [[String: Any]])?.map { $0["session_id"] as? String } == ["s1"])
            #expect((object["meta"] as? [String: Any])?["total"] as? Int == 2)

            (status, json) = try await Self.call(client, .get, "/v1/sessions/stats?period=7d", key: keys.shopRead)
            #expect(status == 200)
            let stats = ((json as? [String: Any])?["data"] as? [[String: Any]])?.first ?? [:]
            #expect(stats["sessions"] as? Int == 3)
            #expect(stats["pageviews"] as? Int == 4)
            #expect(stats["bounce_rate"] as? Double == 66.67)
            #expect(stats["views_per_visit"] as? Double == 1.33)
            #expect(stats["visit_duration"] as? Double == 140)  // (300 + 120 + 0) / 3
            #expect(stats["visit_duration_median"] as? Double == 120)

            (status, json) = try await Self.call(client, .get, "/v1/sessions/stats?period=7d&group_by=entry_page&metrics=sessions,bounces",
                                                 key: keys.shopRead)
            let byEntry = ((json as? [String: Any])?["data"] as? [[String: Any]]) ?? []
            #expect(byEntry.map { [$0["entry_page"] as? String, ($0["sessions"] as? Int).map(String.init), ($0["bounces"] as? Int).map(String.init)] }
                == [["/", "2", "1"], ["/pricing", "1", "1"]])

            (status, json) = try await Self.call(client, .get, "/v1/behavior/summary?period=7d", key: keys.shopRead)
            #expect(status == 200)
            let summary = (json as? [String: Any])?["data"] as? [String: Any] ?? [:]
            #expect((summary["overview"] as? [String: Any])?["sessions"] as? Int == 3)
            #expect(((summary["exit_pages"] as? [[String: Any]])?.first)?["exit_page"] as? String == "/pricing")
            let utm = summary["utm_sources"] as? [[String: Any]] ?? []
            #expect(utm.first?["conversions"] as? Int == 2)  // s1 and s2 signed up
            #expect((summary["event_types"] as? [[String: Any]])?.count == 2)
            #expect(summary["devices"] is [[String: Any]] && summary["countries"] is [[String: Any]])

            for (uri, field) in [
                ("/v1/sessions?filters=page_path%3D%3D/", "filters"), ("/v1/sessions?limit=5000", "limit"),
                ("/v1/sessions?offset=-1", "offset"),
                ("/v1/sessions/stats?group_by=event_type", "dimensions"), ("/v1/sessions/stats?metrics=count:signup,bounces", "metrics"),
            ] {
                (status, json) = try await Self.call(client, .get, uri, key: keys.shopRead)
                #expect(status == 400, "\(uri)")
                #expect((json as? [String: Any])?["field"] as? String == field, "\(uri)")
            }
            (status, _) = try await Self.call(client, .get, "/v1/sessions", key: nil)
            #expect(status == 401)
        }
    }
}

