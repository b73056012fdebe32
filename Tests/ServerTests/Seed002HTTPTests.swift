import Engine
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Server
import TallyTestSupport
import Testing

/// Seed 002's messaging dashboards (overview, messages, campaigns, traffic and rates) answered
/// by the generic query model over events whose properties carry the channel and campaign:
/// the requests the README shows, with answers computed here by hand.
@Suite("Seed 002 through the generic API")
struct Seed002HTTPTests {
    static let today = CivilTime.day(ms: Int64(Date().timeIntervalSince1970 * 1000))
    static func at(_ daysAgo: Int64, _ hour: Int) -> String {
        QueryDimension.TimeBucket.day.label(today - daysAgo, .utc).description + String(format: "T%02d:30:00Z", hour)
    }

    @Test("overview rates, channel breakdowns, campaigns, peak hours and days of the week")
    func dashboards() async throws {
        let dir = TemporaryDirectory()
        var options = StoreOptions(directory: dir.path)
        options.backgroundFlush = false
        let store = try EventStore(options: options)
        let metadata = try MetadataStore(directory: dir.path)
        let tenant = try metadata.createProperty(id: "tenant-42")
        var configuration = ServerConfiguration()
        configuration.port = 0
        let app = TallyServer.application(store: store, keys: metadata, metadata: metadata, configuration: configuration)
        try await app.test(.live) { client in
            // 2 days ago at 10h: 10 emails sent, 8 delivered, 4 opened, 1 clicked (campaign c1);
            // 1 day ago at 14h: 5 SMS sent, 5 delivered (campaign c2).
            var events: [String] = []
            var n = 0
            func add(_ type: String, _ count: Int, channel: String, campaign: String, daysAgo: Int64, hour: Int) {
                for _ in 0..<count {
                    n += 1
                    events.append(#"{"event_id":"m\#(n)","event_type":"\#(type)","occurred_at":"\#(Self.at(daysAgo, hour))","#
                        + #""visitor_id":"contact-\#(n % 7)","properties":{"channel":"\#(channel)","campaign_id":"\#(campaign)"}}"#)
                }
            }
            add("message_sent", 10, channel: "email", campaign: "c1", daysAgo: 2, hour: 10)
            add("message_delivered", 8, channel: "email", campaign: "c1", daysAgo: 2, hour: 10)
            add("message_opened", 4, channel: "email", campaign: "c1", daysAgo: 2, hour: 10)
            add("message_clicked", 1, channel: "email", campaign: "c1", daysAgo: 2, hour: 10)
            add("message_sent", 5, channel: "sms", campaign: "c2", daysAgo: 1, hour: 14)
            add("message_delivered", 5, channel: "sms", campaign: "c2", daysAgo: 1, hour: 14)
            let r = try await client.execute(
                uri: "/v1/events", method: .post,
                headers: [.authorization: "Bearer \(tenant.writeKey)", .contentType: "application/json"],
                body: ByteBuffer(string: #"{"events":["# + events.joined(separator: ",") + "]}"))
            #expect(r.status == .ok)

            func get(_ query: String) async throws -> [[String: Any]] {
                let r = try await client.execute(uri: "/v1/properties/tenant-42/metrics?" + query, method: .get,
                                                 headers: [.authorization: "Bearer \(tenant.readKey)"])
                #expect(r.status == .ok, "\(query)")
                let json = try JSONSerialization.jsonObject(with: Data(buffer: r.body)) as? [String: Any]
                return json?["data"] as? [[String: Any]] ?? []
            }
            let counts = "count:message_sent,count:message_delivered,count:message_opened,count:message_clicked"
            let rates = "ratio:count:message_delivered/count:message_sent,ratio:count:message_opened/count:message_delivered,"
                + "ratio:count:message_clicked/count:message_delivered"

            // Overview: totals and rates (seed 002's deliveryRate, openRate, clickRate as fractions).
            let overview = try await get("period=7d&metrics=\(counts),\(rates)").first ?? [:]
            #expect(overview["count:message_sent"] as? Int == 15)
            #expect(overview["count:message_delivered"] as? Int == 13)
            #expect(overview["ratio:count:message_delivered/count:message_sent"] as? Double == 0.866667)
            #expect(overview["ratio:count:message_opened/count:message_delivered"] as? Double == 0.307692)
            #expect(overview["ratio:count:message_clicked/count:message_delivered"] as? Double == 0.076923)

            // byChannel.
            let channels = try await get("period=7d&metrics=count:message_sent,count:message_delivered&group_by=props.channel")
            #expect(channels.map { $0["props.channel"] as? String } == ["email", "sms"])
            #expect(channels.map { $0["count:message_sent"] as? Int } == [10, 5])

            // Messages of one channel per day (granularity=day), dense.
            let daily = try await get("period=7d&metrics=count:message_sent,count:message_opened&interval=day&filters=props.channel==email")
            #expect(daily.count == 7)
            #expect(daily.compactMap { $0["count:message_sent"] as? Int }.reduce(0, +) == 10)
            #expect(daily.first { ($0["bucket"] as? String) == QueryDimension.TimeBucket.day.label(Self.today - 2, .utc).description }?["count:message_opened"] as? Int == 4)

            // Campaigns with their open rate.
            let campaigns = try await get("period=30d&metrics=count:message_sent,ratio:count:message_opened/count:message_delivered&group_by=props.campaign_id")
            #expect(campaigns.map { $0["props.campaign_id"] as? String } == ["c1", "c2"])
            #expect(campaigns.map { $0["ratio:count:message_opened/count:message_delivered"] as? Double } == [0.5, 0])

            // Traffic: peak hours and days of the week.
            let hours = try await get("period=7d&metrics=events&interval=hour_of_day&order_by=events:desc")
            #expect(hours.count == 24)
            #expect(hours.prefix(2).map { $0["bucket"] as? Int } == [10, 14])
            #expect(hours.prefix(2).map { $0["events"] as? Int } == [23, 10])
            let weekdays = try await get("period=7d&metrics=events&interval=day_of_week")
            #expect(weekdays.count == 7)
            #expect(weekdays.compactMap { $0["events"] as? Int }.reduce(0, +) == 33)
        }
        try store.close()
    }
}
