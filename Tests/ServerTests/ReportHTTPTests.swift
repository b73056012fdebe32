import Engine
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Server
import TallyTestSupport
import Testing

/// The reporting API over real HTTP: seed 003's and seed 000's endpoints, the generic query in
/// both forms, read-key isolation and every 400.
@Suite("HTTP reporting API")
struct ReportHTTPTests {
    struct Keys {
        var shopWrite: String
        var shopRead: String
        var otherRead: String
    }

    /// Days relative to today (UTC) so the data stays inside the retention whenever this runs.
    static let today = CivilTime.day(ms: Int64(Date().timeIntervalSince1970 * 1000))
    static func date(_ daysAgo: Int64) -> String { QueryDimension.TimeBucket.day.label(today - daysAgo, .utc).description }
    static func at(_ daysAgo: Int64, _ hour: Int64) -> String { date(daysAgo) + "T" + (hour < 10 ? "0" : "") + "\(hour):15:00Z" }

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
        let app = TallyServer.application(store: store, keys: metadata, metadata: metadata, configuration: configuration)
        try await app.test(.live) { client in
            // Events: 3 days ago and 1 day ago, seed-000 widgets and pageviews with campaigns.
            let ua = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
            var events: [String] = []
            func add(_ id: String, _ type: String, _ daysAgo: Int64, _ hour: Int64, visitor: String, session: String,
                     path: String, extra: String = "") {
                events.append(#"{"event_id":"\#(id)","event_type":"\#(type)","occurred_at":"\#(Self.at(daysAgo, hour))","#
                    + #""visitor_id":"\#(visitor)","session_id":"\#(session)","page_url":"https://shop.example\#(path)""#
                    + extra + "}")
            }
            add("1", "page_view", 3, 10, visitor: "v1", session: "s1", path: "/", extra: #","utm_campaign":"spring""#)
            add("2", "page_view", 3, 10, visitor: "v1", session: "s1", path: "/blog")
            add("3", "page_view", 3, 11, visitor: "v2", session: "s2", path: "/blog", extra: #","campaign_id":"cmp_1""#)
            add("4", "widget_impression", 3, 11, visitor: "v2", session: "s2", path: "/blog",
                extra: #","properties":{"mapping_id":456,"post_id":123,"device_slug":"iphone-15-pro"}"#)
            add("5", "widget_click", 3, 11, visitor: "v2", session: "s2", path: "/blog",
                extra: #","properties":{"mapping_id":456,"post_id":123,"device_slug":"iphone-15-pro"}"#)
            add("6", "widget_impression", 1, 9, visitor: "v3", session: "s3", path: "/post/9",
                extra: #","properties":{"mapping_id":456,"post_id":9,"device_slug":"pixel-9"}"#)
            add("7", "widget_impression", 1, 9, visitor: "v3", session: "s3", path: "/post/9",
                extra: #","properties":{"mapping_id":777,"post_id":9,"device_slug":"pixel-9"}"#)
            add("8", "page_view", 1, 9, visitor: "v3", session: "s4", path: "/", extra: #","utm_campaign":"spring""#)
            let r = try await client.execute(
                uri: "/v1/events", method: .post,
                headers: [.authorization: "Bearer \(shop.writeKey)", .userAgent: ua, .contentType: "application/json"],
                body: ByteBuffer(string: #"{"events":["# + events.joined(separator: ",") + "]}"))
            #expect(r.status == .ok)
            try await body(client, Keys(shopWrite: shop.writeKey, shopRead: shop.readKey, otherRead: other.readKey))
        }
        try store.close()
    }

    static func get(_ client: any TestClientProtocol, _ uri: String, key: String?) async throws -> (Int, [String: Any]) {
        var headers: HTTPFields = [:]
        if let key { headers[.authorization] = "Bearer \(key)" }
        let r = try await client.execute(uri: uri, method: .get, headers: headers)
        let json = try JSONSerialization.jsonObject(with: Data(buffer: r.body)) as? [String: Any] ?? [:]
        return (Int(r.status.code), json)
    }

    static func data(_ json: [String: Any]) -> [[String: Any]] { json["data"] as? [[String: Any]] ?? [] }

    var range: String { "from=\(Self.date(7))&to=\(Self.date(0))" }

    @Test("seed 003: overview, pages and campaigns")
    func seed003() async throws {
        let range = range
        try await withServer { client, keys in
            let (s1, overview) = try await Self.get(client, "/v1/properties/shop/overview?\(range)", key: keys.shopRead)
            #expect(s1 == 200)
            let o = Self.data(overview)
            #expect(o.count == 1)
            #expect(o.first?["pageviews"] as? Int == 4)
            #expect(o.first?["unique_visitors"] as? Int == 3)
            #expect(o.first?["sessions"] as? Int == 4)
            #expect((overview["meta"] as? [String: Any])?["source"] as? String == "raw")

            let (_, pages) = try await Self.get(client, "/v1/properties/shop/pages?\(range)&limit=50", key: keys.shopRead)
            let p = Self.data(pages)
            #expect(p.map { $0["path"] as? String } == ["/", "/blog"])
            #expect(p.map { $0["pageviews"] as? Int } == [2, 2])
            #expect(p.map { $0["unique_visitors"] as? Int } == [2, 2])

            let (_, campaigns) = try await Self.get(client, "/v1/properties/shop/campaigns?\(range)", key: keys.shopRead)
            let c = Self.data(campaigns)
            #expect(c.map { $0["campaign"] as? String } == ["spring", "cmp_1"])
            #expect(c.map { $0["pageviews"] as? Int } == [2, 1])
        }
    }

    @Test("seed 000: widget, post and time-series stats for the key's property")
    func seed000() async throws {
        let range = range
        try await withServer { client, keys in
            let (s, widgets) = try await Self.get(client, "/v1/stats/widgets?\(range)&mapping_id=456", key: keys.shopRead)
            #expect(s == 200)
            let w = Self.data(widgets)
            #expect(w.count == 2)
            let iphone = try #require(w.first { $0["device_slug"] as? String == "iphone-15-pro" })
            #expect(iphone["mapping_id"] as? Int == 456)
            #expect(iphone["impressions"] as? Int == 1)
            #expect(iphone["clicks"] as? Int == 1)
            #expect(iphone["unique_visitors"] as? Int == 1)
            #expect(iphone["ctr"] as? Double == 1.0)

            let (_, posts) = try await Self.get(client, "/v1/stats/posts?\(range)&post_id=123", key: keys.shopRead)
            #expect(Self.data(posts).count == 1)
            #expect(Self.data(posts).first?["widget_impressions"] as? Int == 1)
            #expect(Self.data(posts).first?["widget_clicks"] as? Int == 1)

            let (_, series) = try await Self.get(
                client, "/v1/stats/timeseries?\(range)&interval=day&event_type=widget_impression", key: keys.shopRead)
            let t = Self.data(series)
            #expect(t.count == 8)  // every day of the range, empty ones as zeros
            #expect(t.first?["bucket"] as? String == Self.date(7))
            #expect(t.first { $0["bucket"] as? String == Self.date(1) }?["count"] as? Int == 2)
            #expect(t.first { $0["bucket"] as? String == Self.date(3) }?["count"] as? Int == 1)
            #expect(t.first { $0["bucket"] as? String == Self.date(2) }?["count"] as? Int == 0)
            #expect(t.reduce(0) { $0 + ($1["unique_visitors"] as? Int ?? 0) } == 2)
        }
    }

    @Test("the generic metrics endpoint: group_by, interval, filters, order_by")
    func genericMetrics() async throws {
        let range = range
        try await withServer { client, keys in
            let (_, byPath) = try await Self.get(
                client, "/v1/properties/shop/metrics?\(range)&metrics=events,pageviews&group_by=path&order_by=path:asc",
                key: keys.shopRead)
            #expect(Self.data(byPath).map { $0["page_path"] as? String } == ["/", "/blog", "/post/9"])
            let (_, filtered) = try await Self.get(
                client, "/v1/properties/shop/metrics?\(range)&metrics=events&filters=page_path~BLOG;event_type!=page_view",
                key: keys.shopRead)
            #expect(Self.data(filtered).first?["events"] as? Int == 2)
            let (_, hourly) = try await Self.get(
                client, "/v1/properties/shop/metrics?from=\(Self.date(3))&to=\(Self.date(3))&metrics=events&interval=hour",
                key: keys.shopRead)
            let h = Self.data(hourly)
            #expect(h.count == 24)
            #expect(h.first { ($0["bucket"] as? String)?.hasPrefix(Self.date(3) + "T11:00:00") == true }?["events"] as? Int == 3)
            let (_, berlin) = try await Self.get(
                client, "/v1/properties/shop/metrics?from=\(Self.date(3))&to=\(Self.date(3))&metrics=events&interval=hour&tz=Asia/Kolkata",
                key: keys.shopRead)
            #expect(Self.data(berlin).allSatisfy { ($0["bucket"] as? String)?.hasSuffix("+05:30") == true })
        }
    }

    @Test("POST query in Plausible's v2 shape: nested filters, order, pagination, time labels")
    func plausible() async throws {
        try await withServer { client, keys in
            let body = """
                {"metrics":["visitors","pageviews","events"],"date_range":["\(Self.date(7))","\(Self.date(0))"],
                 "dimensions":["event:page"],
                 "filters":[["not",["is","event:page",["/post/9"]]],["or",[["is","event:name",["page_view"]],["contains","event:page",["blo"]]]]],
                 "order_by":[["events","desc"]],"pagination":{"limit":1,"offset":0},"include":{"total_rows":true}}
                """
            let r = try await client.execute(uri: "/v1/properties/shop/query", method: .post,
                                             headers: [.authorization: "Bearer \(keys.shopRead)"], body: ByteBuffer(string: body))
            #expect(r.status == .ok)
            let json = try JSONSerialization.jsonObject(with: Data(buffer: r.body)) as! [String: Any]
            let results = json["results"] as! [[String: Any]]
            #expect(results.count == 1)
            #expect(results[0]["dimensions"] as? [String] == ["/blog"])
            #expect(results[0]["metrics"] as? [Int] == [2, 2, 4])
            #expect((json["meta"] as? [String: Any])?["total_rows"] as? Int == 2)
            #expect((json["query"] as? [String: Any])?["metrics"] as? [String] == ["unique_visitors", "pageviews", "events"])

            let series = """
                {"metrics":["events"],"date_range":"7d","dimensions":["time:day"],"include":{"time_labels":true}}
                """
            let s = try await client.execute(uri: "/v1/properties/shop/query", method: .post,
                                             headers: [.authorization: "Bearer \(keys.shopRead)"], body: ByteBuffer(string: series))
            let sj = try JSONSerialization.jsonObject(with: Data(buffer: s.body)) as! [String: Any]
            #expect(((sj["meta"] as? [String: Any])?["time_labels"] as? [String])?.count == 7)
            #expect((sj["results"] as? [Any])?.count == 7)
        }
    }

    @Test("a read key reads only its own property; write keys and missing keys are refused")
    func isolation() async throws {
        let range = range
        try await withServer { client, keys in
            #expect(try await Self.get(client, "/v1/properties/shop/overview?\(range)", key: keys.otherRead).0 == 403)
            #expect(try await Self.get(client, "/v1/properties/shop/overview?\(range)", key: keys.shopWrite).0 == 401)
            #expect(try await Self.get(client, "/v1/properties/shop/overview?\(range)", key: nil).0 == 401)
            let (s, other) = try await Self.get(client, "/v1/properties/other/overview?\(range)", key: keys.otherRead)
            #expect(s == 200)
            #expect(Self.data(other).first?["pageviews"] as? Int == 0)
            let (_, widgets) = try await Self.get(client, "/v1/stats/widgets?\(range)", key: keys.otherRead)
            #expect(Self.data(widgets).isEmpty)
        }
    }

    @Test("bad queries get 400 naming the parameter")
    func badQueries() async throws {
        let range = range
        try await withServer { client, keys in
            let cases: [(String, String)] = [
                ("/v1/properties/shop/metrics?\(range)&metrics=bounce_ratio", "metrics"),
                ("/v1/properties/shop/metrics?\(range)&group_by=planet", "dimensions"),
                ("/v1/properties/shop/metrics?from=\(Self.date(0))&to=\(Self.date(5))", "from"),
                ("/v1/properties/shop/metrics?from=yesterday&to=\(Self.date(5))", "from"),
                ("/v1/properties/shop/metrics?from=\(Self.date(1))", "to"),
                ("/v1/properties/shop/metrics?period=fortnight", "period"),
                ("/v1/properties/shop/metrics?\(range)&group_by=path&limit=0", "limit"),
                ("/v1/properties/shop/metrics?\(range)&group_by=path&limit=100000", "limit"),
                ("/v1/properties/shop/metrics?\(range)&limit=ten", "limit"),
                ("/v1/properties/shop/metrics?\(range)&tz=Mars/Base", "timezone"),
                ("/v1/properties/shop/metrics?\(range)&filters=page_path", "filters"),
                ("/v1/properties/shop/metrics?\(range)&filters=planet==earth", "dimensions"),
                ("/v1/properties/shop/metrics?\(range)&order_by=nope", "order_by"),
                ("/v1/properties/shop/metrics?\(range)&interval=minute", "interval"),
                ("/v1/properties/shop/metrics?from=\(Self.date(3000))&to=\(Self.date(2990))", "from"),
                ("/v1/stats/timeseries?\(range)&interval=year", "interval"),
            ]
            for (uri, parameter) in cases {
                let (status, json) = try await Self.get(client, uri, key: keys.shopRead)
                #expect(status == 400, "\(uri)")
                #expect(json["field"] as? String == parameter, "\(uri): \(json)")
                #expect((json["error"] as? String)?.isEmpty == false)
            }
            let posts: [(String, String)] = [
                ("not json", "body"),
                (#"{"metrics":[]}"#, "metrics"),
                (#"{"metrics":["events"],"dimensions":["visit:planet"]}"#, "dimensions"),
                (#"{"metrics":["events"],"filters":[["matches","event:page",["^/b"]]]}"#, "filters[0]"),
                (#"{"metrics":["events"],"filters":[["and",[["is","event:page"]]]]}"#, "filters[0][1][0]"),
                (#"{"metrics":["events"],"date_range":42}"#, "date_range"),
                (#"{"metrics":["events"],"site_id":"other"}"#, "site_id"),
                (#"{"metrics":["events"],"colour":"blue"}"#, "colour"),
            ]
            for (body, parameter) in posts {
                let r = try await client.execute(uri: "/v1/properties/shop/query", method: .post,
                                                 headers: [.authorization: "Bearer \(keys.shopRead)"], body: ByteBuffer(string: body))
                #expect(r.status == .badRequest, "\(body)")
                let json = try JSONSerialization.jsonObject(with: Data(buffer: r.body)) as? [String: Any]
                #expect(json?["field"] as? String == parameter, "\(body): \(String(describing: json))")
            }
        }
    }
}
