import Engine
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix

/// Seed 001's event list and funnels:
///
/// - `GET /v1/events` (read key): the key's property's raw events matching `filters`
///   (and the shortcuts `visitor_id`, `session_id`, `event_type`), newest first, `limit` per
///   page, `cursor` from the previous page's `meta.next_cursor`, `columns` to project.
/// - `GET /v1/funnels/{name}` (read key): a stored funnel over `from`/`to` or `period`, with
///   an optional `breakdown` dimension.
/// - `POST|GET /v1/properties/{property}/funnels`, `GET|DELETE /v1/properties/{property}/funnels/{name}`:
///   funnel definitions, changed with the admin token; listed and shown also with the property's
///   read key.
struct DrillDownRoutes: Sendable {
    let reports: ReportRoutes
    let metadata: MetadataStore?
    let admin: AdminRoutes?

    func register(on router: Router<TallyRequestContext>) {
        router.get("/v1/events") { request, context in try await events(request, context) }
        router.get("/v1/sessions") { request, context in try await sessions(request, context) }
        router.get("/v1/sessions/stats") { request, context in
            try await reports.answer(request, context, siteFromKey: true) { property, params in
                try reports.metricsQuery(property, params, defaultMetrics: Self.sessionStats)
            }
        }
        router.get("/v1/behavior/summary") { request, context in try await behavior(request, context) }
        guard let metadata, let admin else { return }
        router.get("/v1/funnels/{name}") { request, context in try await funnel(request, context, metadata) }
        router.post("/v1/properties/{property}/funnels") { request, context in
            try await admin.guarded(request) {
                let property = try context.parameters.require("property")
                let spec = try await AdminRoutes.decode(FunnelSpec.self, request)
                let replace = request.uri.queryParameters["replace"].map { $0 == "true" || $0 == "1" } ?? false
                return JSONBody.response(try metadata.saveFunnel(propertyID: property, spec, replace: replace),
                                         status: .created)
            }
        }
        router.get("/v1/properties/{property}/funnels") { request, context in
            try await readable(request, context, admin) { property in
                JSONBody.response(try metadata.funnels(propertyID: property))
            }
        }
        router.get("/v1/properties/{property}/funnels/{name}") { request, context in
            try await readable(request, context, admin) { property in
                let name = try context.parameters.require("name")
                guard let spec = try metadata.funnel(propertyID: property, name: name) else {
                    throw MetadataError(.notFound, "property '\(property)' has no funnel named '\(name)'").about("name")
                }
                return JSONBody.response(spec)
            }
        }
        router.delete("/v1/properties/{property}/funnels/{name}") { request, context in
            try await admin.guarded(request) {
                let property = try context.parameters.require("property")
                try metadata.deleteFunnel(propertyID: property, name: try context.parameters.require("name"))
                return Response(status: .noContent)
            }
        }
    }

    /// With the admin token, or with a read key of the property in the path.
    func readable(_ request: Request, _ context: TallyRequestContext, _ admin: AdminRoutes,
                  _ body: (String) throws -> Response) async throws -> Response {
        let property = try context.parameters.require("property")
        if admin.refusal(request) != nil {
            switch try reports.authorize(request, context, siteFromKey: false) {
            case .failure(let response): return response
            case .success: break
            }
        }
        do { return try body(property) } catch { return AdminRoutes.answer(error) }
    }

    /// Authenticates the read key (its property answers), reads the URL parameters and turns
    /// a refused query into its 4xx.
    func withReadKey(_ request: Request, _ context: TallyRequestContext,
                     _ body: (Property, QueryParameters) async throws -> Response) async throws -> Response {
        switch try reports.authorize(request, context, siteFromKey: true) {
        case .failure(let response): return response
        case .success(let property):
            do { return try await body(property, QueryParameters(request.uri.queryParameters)) } catch let e as QueryError {
                return ReportRoutes.queryError(e)
            }
        }
    }

    // MARK: Event list

    static let defaultColumns: [EventColumn] = [
        .eventID, .eventType, .occurredAt, .visitorID, .sessionID, .pagePath, .referrerDomain, .countryCode,
        .deviceType, .browser, .os, .utmSource, .utmCampaign, .properties,
    ]

    func events(_ request: Request, _ context: TallyRequestContext) async throws -> Response {
        try await withReadKey(request, context) { property, params in
            let base = try reports.baseQuery(property, params, metrics: [.events], defaultPeriod: "30d")
            var q = EventListQuery(site: property.id, from: base.from, to: base.to, timeZone: base.timeZone)
            q.rawFloor = base.rawFloor
            var conditions: [QueryFilter] = []
            if let f = params.get("filters") { conditions.append(try FilterSyntax.parse(f)) }
            for (name, column) in [("visitor_id", EventColumn.visitorID), ("session_id", .sessionID), ("event_type", .eventType)] {
                if let v = params.get(name) {
                    conditions.append(.condition(.column(column), .is, v.split(separator: "|").map { String($0) }))
                }
            }
            q.filter = conditions.isEmpty ? nil : conditions.count == 1 ? conditions[0] : .and(conditions)
            if let text = params.get("columns") {
                q.columns = try text.split(separator: ",").map { name in
                    let n = name.trimmingCharacters(in: .whitespaces)
                    guard let c = EventColumn(name: n) else {
                        throw QueryError.invalid("columns", "unknown column '\(n)' (known: \(EventColumn.allCases.map(\.name).joined(separator: ", ")))")
                    }
                    return c
                }
            } else {
                q.columns = Self.defaultColumns
            }
            q.limit = base.limit ?? 100
            if let cursor = params.get("cursor") { q.after = try EventCursor(token: cursor) }
            let query = q
            let (page, elapsed) = try await offLoop { snapshot, budget in try EventList.run(query, on: snapshot, budget: budget) }
            var w = JSONText()
            w.raw("{\"data\":[")
            for r in 0..<page.events.count {
                if r > 0 { w.raw(",") }
                JSONText.appendEvent(page.events, row: r, columns: q.columns, to: &w.bytes)
            }
            w.raw("],\"meta\":{\"next_cursor\":")
            if let next = page.next { w.string(next.token) } else { w.raw("null") }
            w.raw(",\"granules_read\":\(page.stats.granulesRead),\"granules_skipped\":"
                + "\(page.stats.granulesSkippedByIndex + page.stats.granulesSkippedByBloom)")
            w.raw(",\"elapsed_ms\":" + String(format: "%.3f", elapsed) + "}}")
            return w.response()
        }
    }

    // MARK: Sessions

    static let sessionStats = "sessions,unique_visitors,pageviews,bounce_rate,views_per_visit,visit_duration,visit_duration_median"

    /// Runs CPU work off the event loop; the answer and its milliseconds.
    func offLoop<T: Sendable>(_ body: @escaping @Sendable (Snapshot, QueryBudget) throws -> T) async throws -> (T, Double) {
        let store = reports.store
        let budget = reports.budget
        return try await NIOThreadPool.singleton.runIfActive {
            let started = DispatchTime.now().uptimeNanoseconds
            let value = try body(store.snapshot(), budget)
            return (value, Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6)
        }
    }

    /// `GET /v1/sessions`: sessions starting in the range, newest first, `limit`/`offset`, `filters`
    /// on session dimensions (entry_page, exit_page, device_type, country_code, utm_source, …).
    func sessions(_ request: Request, _ context: TallyRequestContext) async throws -> Response {
        try await withReadKey(request, context) { property, params in
            var q = try reports.baseQuery(property, params, metrics: [.sessions])
            q.filter = try params.get("filters").map(FilterSyntax.parse)
            if let limit = q.limit, !(1...1000).contains(limit) {
                throw QueryError.invalid("limit", "must be 1–1000, not \(limit)")
            }
            let query = q
            let ((listed, total, _), elapsed) = try await offLoop { snapshot, budget in
                try SessionExecutor.list(query, on: snapshot, budget: budget)
            }
            var w = JSONText()
            w.raw("{\"data\":[")
            for (i, s) in listed.enumerated() {
                if i > 0 { w.raw(",") }
                w.raw("{\"session_id\":")
                w.string(s.sessionID)
                w.raw(",\"visitor_id\":")
                w.string(s.visitorID)
                w.raw(",\"started_at\":")
                w.string(CivilTime.iso8601(ms: s.start))
                w.raw(",\"ended_at\":")
                w.string(CivilTime.iso8601(ms: s.end))
                w.raw(",\"duration_seconds\":")
                w.value(.double(Double(s.end - s.start) / 1000))
                w.raw(",\"events\":\(s.events),\"pageviews\":\(s.pageviews),\"bounced\":\(s.bounced),\"entry_page\":")
                w.value(s.entryPage.map { .string($0) } ?? .null)
                w.raw(",\"exit_page\":")
                w.value(s.exitPage.map { .string($0) } ?? .null)
                for (name, value) in s.dimensions {
                    w.raw(",")
                    w.string(name)
                    w.raw(":")
                    w.value(value)
                }
                w.raw("}")
            }
            w.raw("],\"meta\":{\"total\":\(total),\"limit\":\(q.limit ?? 100),\"offset\":\(q.offset),\"elapsed_ms\":"
                + String(format: "%.3f", elapsed) + "}}")
            return w.response()
        }
    }

    /// `GET /v1/behavior/summary` (seed 001): one range's session stats, top entry and exit
    /// pages, event types, session distributions by device, browser, OS and country with bounce
    /// counts, and UTM sources with conversions of `conversion_event` (default `signup`).
    func behavior(_ request: Request, _ context: TallyRequestContext) async throws -> Response {
        try await withReadKey(request, context) { property, params in
            let base = try reports.baseQuery(property, params, metrics: [.sessions])
            let limit = base.limit ?? 10
            let conversion = params.get("conversion_event") ?? "signup"
            func query(_ metrics: String, _ dimensions: [String]) throws -> Query {
                var q = base
                q.metrics = try ReportRoutes.metricList(metrics)
                q.dimensions = try dimensions.map { try QueryDimension(name: $0) }
                q.limit = dimensions.isEmpty ? nil : limit
                return q
            }
            let sections: [(String, Query)] = [
                ("overview", try query(Self.sessionStats, [])),
                ("entry_pages", try query("sessions,bounce_rate,visit_duration", ["entry_page"])),
                ("exit_pages", try query("sessions", ["exit_page"])),
                ("event_types", try query("events,unique_visitors", ["event_type"])),
                ("devices", try query("sessions,bounces", ["device_type"])),
                ("browsers", try query("sessions,bounces", ["browser"])),
                ("operating_systems", try query("sessions,bounces", ["os"])),
                ("countries", try query("sessions,bounces", ["country_code"])),
                ("utm_sources", try query("sessions,conversions:\(conversion)", ["utm_source"])),
            ]
            let (results, elapsed) = try await offLoop { snapshot, budget in
                try sections.map { name, q in (name, try QueryExecutor.run(q, on: snapshot, budget: budget)) }
            }
            var w = JSONText()
            w.raw("{\"data\":{")
            for (i, (name, result)) in results.enumerated() {
                if i > 0 { w.raw(",") }
                w.string(name)
                w.raw(":")
                let names = ["conversions:\(conversion)": "conversions"]
                let columns = result.columns.map { names[$0] ?? $0 }
                if name == "overview" {
                    // One row: the totals (a query without dimensions always has it).
                    w.row(result.rows[0], columns: columns)
                } else {
                    w.raw("[")
                    for k in result.rows.indices {
                        if k > 0 { w.raw(",") }
                        w.row(result.rows[k], columns: columns)
                    }
                    w.raw("]")
                }
            }
            w.raw("},\"meta\":{\"from\":")
            w.string(CivilTime.iso8601(ms: base.from))
            w.raw(",\"to\":")
            w.string(CivilTime.iso8601(ms: base.to))
            w.raw(",\"conversion_event\":")
            w.string(conversion)
            w.raw(",\"elapsed_ms\":" + String(format: "%.3f", elapsed) + "}}")
            return w.response()
        }
    }

    // MARK: Funnel report

    func funnel(_ request: Request, _ context: TallyRequestContext, _ metadata: MetadataStore) async throws -> Response {
        try await withReadKey(request, context) { property, params in
            let name = try context.parameters.require("name")
            let spec: FunnelSpec
            let definition: FunnelDefinition
            do {
                guard let found = try metadata.funnel(propertyID: property.id, name: name) else {
                    return JSONBody.error(.notFound, "property '\(property.id)' has no funnel named '\(name)'", field: "name")
                }
                spec = found
                definition = try found.definition()
            } catch {
                return AdminRoutes.answer(error)
            }
            let base = try reports.baseQuery(property, params, metrics: [.events])
            var q = FunnelQuery(funnel: definition, site: property.id, from: base.from, to: base.to, timeZone: base.timeZone)
            q.rawFloor = base.rawFloor
            do throws(QueryError) {
                q.breakdown = try params.get("breakdown").map { name throws(QueryError) in try QueryDimension(name: name) }
            } catch {
                throw QueryError.invalid("breakdown", error.message)
            }
            if let limit = base.limit { q.breakdownLimit = limit }
            let query = q
            let (result, elapsed) = try await offLoop { snapshot, budget in
                try FunnelExecutor.run(query, on: snapshot, budget: budget)
            }
            var w = JSONText()
            w.raw("{\"data\":{\"funnel\":")
            w.string(spec.name)
            w.raw(",\"count_by\":")
            w.string(definition.countBy.rawValue)
            w.raw(",\"mode\":")
            w.string(definition.strictOrder ? "strict_order" : "default")
            w.raw(",\"window_seconds\":\(definition.windowMilliseconds / 1000),\"steps\":")
            Self.steps(result.total, spec, into: &w)
            if let d = q.breakdown {
                w.raw(",\"breakdown\":{\"dimension\":")
                w.string(d.name)
                w.raw(",\"values\":[")
                for (i, b) in result.breakdown.enumerated() {
                    if i > 0 { w.raw(",") }
                    w.raw("{\"value\":")
                    w.value(b.value)
                    w.raw(",\"steps\":")
                    Self.steps(b.steps, spec, into: &w)
                    w.raw("}")
                }
                w.raw("]}")
            }
            w.raw("},\"meta\":{\"from\":")
            w.string(CivilTime.iso8601(ms: q.from))
            w.raw(",\"to\":")
            w.string(CivilTime.iso8601(ms: q.to))
            w.raw(",\"groups\":\(result.groups),\"rows_scanned\":\(result.stats.rowsMatched + result.stats.bufferedRowsScanned)")
            w.raw(",\"granules_read\":\(result.stats.granulesRead),\"elapsed_ms\":" + String(format: "%.3f", elapsed) + "}}")
            return w.response()
        }
    }

    static func steps(_ s: FunnelSteps, _ spec: FunnelSpec, into w: inout JSONText) {
        w.raw("[")
        for i in 0..<s.reached.count {
            if i > 0 { w.raw(",") }
            w.raw("{\"step\":\(i + 1),\"event_type\":")
            w.string(spec.steps[i].event_type)
            if let f = spec.steps[i].filters {
                w.raw(",\"filters\":")
                w.string(f)
            }
            w.raw(",\"entrants\":\(s.reached[i]),\"conversion_from_first\":")
            w.value(.double(Self.rounded(s.conversionFromFirst(i))))
            w.raw(",\"conversion_from_previous\":")
            w.value(.double(Self.rounded(s.conversionFromPrevious(i))))
            w.raw(",\"median_seconds_from_previous\":")
            w.value(s.medianSecondsFromPrevious[i].map { .double($0) } ?? .null)
            w.raw("}")
        }
        w.raw("]")
    }

    static func rounded(_ x: Double) -> Double { (x * 1_000_000).rounded() / 1_000_000 }
}
