import ArgumentParser
import Engine
import Foundation
import Workload

/// `tally bench query`: the report queries of the query issue, timed on a data directory.
struct QueryBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Time the reference report queries (p50/p95/p99) on a data directory.",
        discussion: """
            Runs each query of the suite --repeats times (after one warm-up) on the store in
            --data, which must not be open in a server (the store takes the directory's lock).
            The site and span default to the generator's: its first (largest) site, the 92 days
            before 2026-11-01.

            Example:
              tally generate --events 10000000 --output m.ndjson && tally ingest m.ndjson --data d
              tally bench query --data d --repeats 20 --json
            """
    )

    @Option(help: "The data directory.")
    var data: String = "./data"

    @Option(help: "The site queried (default: the generator's largest).")
    var site: String?

    @Option(help: "End of the data's span, YYYY-MM-DD exclusive (default: the generator's, 2026-11-01).")
    var end: String?

    @Option(help: "Timed runs per query.")
    var repeats = 20

    @Option(help: "Only queries whose name contains this.")
    var only: String?

    @Flag(help: "Print JSON.")
    var json = false

    struct Case {
        var name: String
        /// Runs the question once: rows answered, rows read.
        var run: (Snapshot) throws -> (rows: Int, scanned: Int)

        init(name: String, query: Query) {
            self.name = name
            run = { snapshot in
                let r = try QueryExecutor.run(query, on: snapshot)
                return (r.totalRows, r.rowsScanned)
            }
        }

        init(name: String, run: @escaping (Snapshot) throws -> (rows: Int, scanned: Int)) {
            self.name = name
            self.run = run
        }
    }

    func run() throws {
        var options = StoreOptions(directory: data)
        options.backgroundFlush = false
        options.readOnly = true
        let store: EventStore
        do { store = try EventStore(options: options) } catch { throw failure("\(data): \(error)") }
        defer { try? store.close() }
        let generator = WorkloadGenerator(WorkloadConfig(seed: 42, events: 1))
        let site = site ?? generator.siteIDs[0]
        let endDay: Int64
        if let end {
            guard let d = QueryRange.date(end) else { throw failure("--end \(end): not a date YYYY-MM-DD") }
            endDay = d
        } else {
            endDay = CivilTime.day(ms: WorkloadConfig.defaultEnd)
        }
        let to = endDay * 86_400_000
        let day: Int64 = 86_400_000
        let snapshot = store.snapshot()

        // Parameters found in the data: the busiest mapping and one visitor of the site.
        let topMapping = try QueryExecutor.run(
            Query(site: site, from: to - 30 * day, to: to, metrics: [.count("widget_impression")],
                  dimensions: [.column(.propMappingID)], filter: .condition(.column(.propMappingID), .isNot, [nil]),
                  limit: 1), on: snapshot).rows.first?[0].description ?? "0"
        var visitor = ""
        _ = try snapshot.scan(ScanRequest(site: site, from: to - 2 * day, to: to, columns: [.visitorID])) { b in
            if visitor.isEmpty, b.count > 0 { visitor = b[string: .visitorID].string(at: 0) ?? "" }
        }

        let cases: [Case] = [
            Case(name: "overview_30d", query: Query(site: site, from: to - 30 * day, to: to,
                                                    metrics: [.pageviews, .uniqueVisitors, .sessions])),
            Case(name: "top_pages_30d", query: Query(site: site, from: to - 30 * day, to: to, metrics: [.pageviews, .uniqueVisitors],
                                                     dimensions: [.column(.pagePath)],
                                                     filter: .condition(.column(.eventType), .is, QueryMetric.pageviewTypes),
                                                     limit: 50)),
            Case(name: "daily_92d", query: Query(site: site, from: to - 92 * day, to: to, metrics: [.events, .uniqueVisitors],
                                                 dimensions: [.time(.day)])),
            Case(name: "hourly_7d", query: Query(site: site, from: to - 7 * day, to: to, metrics: [.events, .uniqueVisitors],
                                                 dimensions: [.time(.hour)])),
            Case(name: "top_referrers_30d", query: Query(site: site, from: to - 30 * day, to: to,
                                                         metrics: [.events, .uniqueVisitors],
                                                         dimensions: [.column(.referrerDomain)], limit: 50)),
            Case(name: "widget_stats_mapping_30d", query: Query(
                site: site, from: to - 30 * day, to: to,
                metrics: [.count("widget_impression"), .count("widget_click"), .uniqueVisitors,
                          .ratio(.count("widget_click"), .count("widget_impression"))],
                dimensions: [.column(.propMappingID), .column(.propDeviceSlug)],
                filter: .and([.condition(.column(.eventType), .is, ["widget_impression", "widget_click"]),
                              .condition(.column(.propMappingID), .is, [topMapping])]))),
            Case(name: "visitor_events_92d", query: Query(site: site, from: to - 92 * day, to: to, metrics: [.events],
                                                          dimensions: [.column(.eventType)],
                                                          filter: .condition(.column(.visitorID), .is, [visitor]))),
            Case(name: "top_utm_campaign_30d", query: Query(site: site, from: to - 30 * day, to: to,
                                                            metrics: [.events, .uniqueVisitors],
                                                            dimensions: [.column(.utmCampaign)],
                                                            filter: .condition(.column(.utmCampaign), .isNot, [nil]), limit: 50)),
            Case(name: "props_click_target_30d", query: Query(site: site, from: to - 30 * day, to: to,
                                                              metrics: [.events], dimensions: [.prop("click_target")],
                                                              filter: .condition(.column(.eventType), .is, ["widget_click"]))),
            // Seed 001: session stats over the raw retention, a 4-step funnel, a visitor's events.
            Case(name: "session_stats_90d", query: Query(
                site: site, from: to - 90 * day, to: to,
                metrics: [.sessions, .uniqueVisitors, .pageviews, .session(.bounceRate), .session(.viewsPerVisit),
                          .session(.visitDuration), .session(.visitDurationMedian)])),
            Case(name: "sessions_entry_page_30d", query: Query(
                site: site, from: to - 30 * day, to: to, metrics: [.sessions, .session(.bounceRate)],
                dimensions: [.entryPage], limit: 50)),
            Case(name: "funnel_4_steps_30d") { snapshot in
                let steps = ["page_view", "widget_impression", "widget_click", "device_page_view"].map { FunnelStep(eventType: $0) }
                let funnel = FunnelDefinition(name: "bench", steps: steps, windowMilliseconds: 3_600_000, countBy: .session)
                let r = try FunnelExecutor.run(FunnelQuery(funnel: funnel, site: site, from: to - 30 * day, to: to), on: snapshot)
                return (r.total.reached.last ?? 0, r.stats.rowsMatched + r.stats.bufferedRowsScanned)
            },
            Case(name: "event_list_visitor_92d") { snapshot in
                let q = EventListQuery(site: site, from: to - 92 * day, to: to,
                                       filter: .condition(.column(.visitorID), .is, [visitor]), limit: 100)
                let page = try EventList.run(q, on: snapshot)
                return (page.events.count, page.stats.rowsMatched)
            },
            Case(name: "event_list_latest_92d") { snapshot in
                let page = try EventList.run(EventListQuery(site: site, from: to - 92 * day, to: to, limit: 100), on: snapshot)
                return (page.events.count, page.stats.rowsMatched)
            },
        ].filter { only == nil || $0.name.contains(only!) }

        var results: [[String: Any]] = []
        for c in cases {
            var times: [Double] = []
            var rows = 0
            var scanned = 0
            for i in 0...repeats {
                let started = DispatchTime.now().uptimeNanoseconds
                let r = try c.run(store.snapshot())
                let ms = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
                if i > 0 { times.append(ms) }  // the first run warms the page cache
                rows = r.rows
                scanned = r.scanned
            }
            times.sort()
            func pct(_ p: Double) -> Double { times[min(times.count - 1, Int((Double(times.count) * p).rounded(.up)) - 1)] }
            let r: [String: Any] = ["query": c.name, "p50_ms": pct(0.5), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
                                    "min_ms": times.first!, "max_ms": times.last!, "rows": rows, "rows_scanned": scanned]
            results.append(r)
            if !json {
                print(c.name.padding(toLength: 26, withPad: " ", startingAt: 0)
                    + String(format: "p50 %8.2f ms  p95 %8.2f  p99 %8.2f  (min %.2f, max %.2f)  rows %d, scanned %d",
                             pct(0.5), pct(0.95), pct(0.99), times.first!, times.last!, rows, scanned))
            }
        }
        if json {
            // The parameters found in the data, so other engines can be asked the same questions.
            let object: [String: Any] = ["site": site, "repeats": repeats, "rows_in_store": snapshot.rowCount, "queries": results,
                                         "top_mapping": topMapping, "visitor": visitor, "end": String(CivilTime.iso8601(ms: to).prefix(10))]
            let d = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: d, as: UTF8.self))
        }
    }
}
