import Engine
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix

/// The reporting API (read keys: `Authorization: Bearer <read_key>`):
///
/// - `GET /v1/properties/{id}/metrics` — the generic query of seed 003 as URL parameters.
/// - `POST /v1/properties/{id}/query` — the same as a JSON body shaped after Plausible's
///   Stats API v2 (metrics, date_range, dimensions, filters, order_by, pagination, include).
/// - `GET /v1/properties/{id}/overview|pages|campaigns` — seed 003's reports.
/// - `GET /v1/stats/widgets|posts|timeseries` — seed 000's reports, for the key's property.
public struct ReportRoutes: Sendable {
    let store: EventStore
    let keys: any KeyDirectory
    let configuration: ServerConfiguration

    func register(on router: Router<TallyRequestContext>) {
        router.get("/v1/properties/{property}/metrics") { request, context in
            try await answer(request, context) { property, params in try metricsQuery(property, params) }
        }
        router.post("/v1/properties/{property}/query") { request, context in
            try await plausibleQuery(request, context)
        }
        router.get("/v1/properties/{property}/overview") { request, context in
            try await answer(request, context) { property, params in
                try report(property, params, metrics: "pageviews,unique_visitors,sessions", dimensions: [])
            }
        }
        router.get("/v1/properties/{property}/pages") { request, context in
            try await answer(request, context) { property, params in
                try report(property, params, metrics: "pageviews,unique_visitors", dimensions: ["page_path"],
                           filter: .condition(.column(.eventType), .is, QueryMetric.pageviewTypes), names: ["page_path": "path"])
            }
        }
        router.get("/v1/properties/{property}/campaigns") { request, context in
            try await answer(request, context) { property, params in
                try report(property, params, metrics: "pageviews,unique_visitors", dimensions: ["campaign_id"],
                           filter: .and([.condition(.column(.eventType), .is, QueryMetric.pageviewTypes),
                                         .condition(.campaign, .isNot, [nil])]),
                           names: ["campaign_id": "campaign"])
            }
        }
        router.get("/v1/stats/widgets") { request, context in
            try await answer(request, context, siteFromKey: true) { property, params in
                var conditions: [QueryFilter] = [.condition(.column(.eventType), .is, ["widget_impression", "widget_click"])]
                if let m = params.get("mapping_id") { conditions.append(.condition(.column(.propMappingID), .is, [m])) }
                if let d = params.get("device_slug") { conditions.append(.condition(.column(.propDeviceSlug), .is, [d])) }
                return try report(property, params, metrics: "count:widget_impression,count:widget_click,unique_visitors,ctr",
                                  dimensions: ["mapping_id", "device_slug"], filter: .and(conditions),
                                  names: ["count:widget_impression": "impressions", "count:widget_click": "clicks"])
            }
        }
        router.get("/v1/stats/posts") { request, context in
            try await answer(request, context, siteFromKey: true) { property, params in
                var conditions: [QueryFilter] = [.condition(.column(.eventType), .is, ["widget_impression", "widget_click"])]
                if let p = params.get("post_id") { conditions.append(.condition(.column(.propPostID), .is, [p])) }
                return try report(property, params, metrics: "count:widget_impression,count:widget_click,unique_visitors",
                                  dimensions: ["post_id"], filter: .and(conditions),
                                  names: ["count:widget_impression": "widget_impressions", "count:widget_click": "widget_clicks"])
            }
        }
        router.get("/v1/stats/timeseries") { request, context in
            try await answer(request, context, siteFromKey: true) { property, params in
                let interval = params.get("interval") ?? "day"
                guard ["hour", "day", "week", "month"].contains(interval) else {
                    throw QueryError.invalid("interval", "must be hour, day, week or month, not '\(interval)'")
                }
                var filter: QueryFilter?
                if let t = params.get("event_type") { filter = .condition(.column(.eventType), .is, [t]) }
                return try report(property, params, metrics: "events,unique_visitors", dimensions: [interval], filter: filter,
                                  names: ["events": "count", interval: "bucket"])
            }
        }
    }

    // MARK: Plumbing

    typealias Params = Hummingbird.Parameters

    /// Authenticates the read key, checks the property, builds the query, runs it off the
    /// event loop, and answers `{"data": [...], "meta": {...}}`.
    func answer(_ request: Request, _ context: TallyRequestContext, siteFromKey: Bool = false,
                _ build: @escaping @Sendable (Property, QueryParameters) throws -> (Query, [String: String]))
        async throws -> Response
    {
        let property: Property
        switch try authorize(request, context, siteFromKey: siteFromKey) {
        case .failure(let response): return response
        case .success(let p): property = p
        }
        let params = QueryParameters(request.uri.queryParameters)
        do {
            let (query, names) = try build(property, params)
            let (result, elapsed) = try await execute(query)
            return Self.dataResponse(result, names: names, elapsed: elapsed)
        } catch let e as QueryError {
            return Self.queryError(e)
        }
    }

    enum Authorization {
        case success(Property)
        case failure(Response)
    }

    func authorize(_ request: Request, _ context: TallyRequestContext, siteFromKey: Bool) throws -> Authorization {
        guard let auth = request.headers[.authorization] else {
            return .failure(JSONBody.error(.unauthorized, "missing read key: send Authorization: Bearer READ_KEY",
                                           field: "authorization"))
        }
        let parts = auth.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer",
            let property = try keys.readProperty(forKey: String(parts[1]).trimmingCharacters(in: .whitespaces))
        else {
            return .failure(JSONBody.error(.unauthorized, "unknown or revoked read key", field: "authorization"))
        }
        if !siteFromKey {
            let named = context.parameters.get("property") ?? ""
            guard named == property.id else {
                return .failure(JSONBody.error(.forbidden, "this read key belongs to another property than '\(named)'",
                                               field: "property_id"))
            }
        }
        return .success(property)
    }

    /// The configured limits of one query.
    var budget: QueryBudget {
        QueryBudget(milliseconds: configuration.queryTimeoutMilliseconds, maxGroups: configuration.queryMaxGroups)
    }

    /// Runs the query on the thread pool (it is CPU work) within the configured budget.
    func execute(_ query: Query) async throws -> (QueryResult, Double) {
        let store = store
        let budget = budget
        return try await NIOThreadPool.singleton.runIfActive {
            let started = DispatchTime.now().uptimeNanoseconds
            let result = try QueryExecutor.run(query, on: store.snapshot(), budget: budget)
            return (result, Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6)
        }
    }

    static func queryError(_ e: QueryError) -> Response {
        switch e.kind {
        case .invalid: JSONBody.error(.badRequest, e.message, field: e.parameter)
        case .budget: JSONBody.error(.unprocessableContent, e.message, field: e.parameter)
        case .storage: JSONBody.error(.internalServerError, e.message)
        }
    }

    // MARK: Query building

    /// The range, time zone and common options of a URL query.
    func baseQuery(_ property: Property, _ params: QueryParameters, metrics: [QueryMetric], defaultPeriod: String = "7d")
        throws -> Query
    {
        // The property's zone is where its rollup days are counted (a change made by the CLI
        // reaches the store here).
        if let own = try? QueryTimeZone(identifier: property.timezone),
           store.options.siteTimeZones.zone(property.id).identifier != own.identifier {
            store.setTimeZone(own, forSite: property.id)
        }
        let zone = try QueryTimeZone(identifier: params.get("tz") ?? params.get("timezone") ?? property.timezone)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let (from, to) = try QueryRange.resolve(
            from: params.get("from") ?? params.get("startDate"), to: params.get("to") ?? params.get("endDate"),
            period: params.get("period") ?? params.get("timeRange"), zone: zone, now: now, defaultPeriod: defaultPeriod)
        try Self.checkRetention(from: from, property: property, now: now)
        var q = Query(site: property.id, from: from, to: to, timeZone: zone, metrics: metrics)
        q.rawFloor = now - Int64(property.rawRetentionDays) * 86_400_000
        if let limit = params.get("limit") {
            guard let n = Int(limit) else { throw QueryError.invalid("limit", "'\(limit)' is not a number") }
            q.limit = n
        }
        if let offset = params.get("offset") {
            guard let n = Int(offset) else { throw QueryError.invalid("offset", "'\(offset)' is not a number") }
            q.offset = n
        }
        if let exact = params.get("exact") { q.exact = exact == "true" || exact == "1" }
        return q
    }

    static func checkRetention(from: Int64, property: Property, now: Int64) throws(QueryError) {
        let oldest = now - Int64(property.rollupRetentionDays) * 86_400_000
        if from < oldest - 86_400_000 {
            throw QueryError.invalid(
                "from", "the range starts before the property's retention (\(property.rollupRetentionDays) days)")
        }
    }

    public static func metricList(_ text: String) throws -> [QueryMetric] {
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !names.isEmpty else { throw QueryError.invalid("metrics", "at least one metric is needed") }
        return try names.map { try QueryMetric(name: $0) }
    }

    public static func dimensionList(_ text: String?) throws -> [QueryDimension] {
        guard let text else { return [] }
        return try text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            .map { try QueryDimension(name: $0) }
    }

    /// GET .../metrics: `metrics`, `group_by`, `interval`, `filters`, `order_by`, `limit`, `offset`, `tz`, `exact`.
    func metricsQuery(_ property: Property, _ params: QueryParameters, defaultMetrics: String = "pageviews,unique_visitors,sessions")
        throws -> (Query, [String: String])
    {
        var q = try baseQuery(property, params, metrics: try Self.metricList(params.get("metrics") ?? defaultMetrics))
        var dimensions = try Self.dimensionList(params.get("group_by"))
        var names: [String: String] = [:]
        if let interval = params.get("interval") {
            guard let bucket = QueryDimension.TimeBucket(rawValue: interval) else {
                throw QueryError.invalid("interval", "must be hour, day, week, month, hour_of_day or day_of_week, not '\(interval)'")
            }
            dimensions.insert(.time(bucket), at: 0)
            names[bucket.rawValue] = "bucket"
        }
        q.dimensions = dimensions
        q.filter = try params.get("filters").map(FilterSyntax.parse)
        q.orderBy = try params.get("order_by").map(FilterSyntax.order) ?? []
        if q.limit == nil, !dimensions.isEmpty, !dimensions.contains(where: \.isTime) {
            q.limit = 1000
        }
        return (q, names)
    }

    /// A fixed report: metrics and dimensions given, range and limit from the URL.
    func report(_ property: Property, _ params: QueryParameters, metrics: String, dimensions: [String],
                filter: QueryFilter? = nil, names: [String: String] = [:]) throws -> (Query, [String: String]) {
        var q = try baseQuery(property, params, metrics: try Self.metricList(metrics))
        q.dimensions = try dimensions.map { try QueryDimension(name: $0) }
        q.filter = filter
        if q.limit == nil, !q.dimensions.isEmpty, !q.dimensions.contains(where: \.isTime) {
            q.limit = 50
        }
        return (q, names)
    }

    // MARK: Responses

    static func dataResponse(_ result: QueryResult, names: [String: String], elapsed: Double) -> Response {
        var w = JSONText()
        w.raw("{\"data\":[")
        let columns = result.columns.map { names[$0] ?? $0 }
        for i in result.rows.indices {
            if i > 0 { w.raw(",") }
            w.row(result.rows[i], columns: columns)
        }
        w.raw("],\"meta\":")
        meta(result, elapsed: elapsed, into: &w)
        w.raw("}")
        return w.response()
    }

    static func meta(_ result: QueryResult, elapsed: Double, into w: inout JSONText) {
        w.raw("{\"source\":")
        w.string(result.source.rawValue)
        w.raw(",\"rows_scanned\":\(result.rowsScanned),\"total_rows\":\(result.totalRows)")
        w.raw(",\"granules_read\":\(result.stats.granulesRead),\"granules_skipped\":"
            + "\(result.stats.granulesSkippedByIndex + result.stats.granulesSkippedByBloom)")
        w.raw(",\"elapsed_ms\":" + String(format: "%.3f", elapsed) + "}")
    }
}

/// `key=value` URL parameters.
struct QueryParameters: Sendable {
    let values: [String: String]

    init(_ parameters: Hummingbird.Parameters) {
        var v: [String: String] = [:]
        for (k, value) in parameters { v[String(k)] = String(value) }
        values = v
    }

    func get(_ key: String) -> String? {
        guard let v = values[key], !v.isEmpty else { return nil }
        return v
    }
}

/// The URL forms of filters and order: `filters=page_path==/blog|/docs;country_code!=DE;page_path~swift;`
/// `page_path!~beta;page_path^=/post/` (conditions joined by `;` all hold; `|` separates
/// alternative values; `(none)` is no value), `order_by=pageviews:desc,path:asc` or `-pageviews`.
public enum FilterSyntax {
    static let operators: [(String, QueryFilter.FilterOperator)] = [
        ("==", .is), ("!=", .isNot), ("!~", .containsNot), ("~", .contains), ("^=", .prefix),
    ]

    public static func parse(_ text: String) throws -> QueryFilter {
        var conditions: [QueryFilter] = []
        for part in text.split(separator: ";") where !part.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let (name, op, rest) = split(String(part)) else {
                throw QueryError.invalid(
                    "filters", "'\(part)' is not a condition (dimension==value, !=, ~ contains, !~, ^= prefix)")
            }
            let dimension = try QueryDimension(name: name.trimmingCharacters(in: .whitespaces))
            let values = rest.split(separator: "|", omittingEmptySubsequences: false).map { v -> String? in
                let s = String(v)
                return s == "(none)" ? nil : s
            }
            conditions.append(.condition(dimension, op, values))
        }
        guard !conditions.isEmpty else { throw QueryError.invalid("filters", "no condition given") }
        return conditions.count == 1 ? conditions[0] : .and(conditions)
    }

    static func split(_ part: String) -> (String, QueryFilter.FilterOperator, String)? {
        var best: (Range<String.Index>, QueryFilter.FilterOperator)?
        for (symbol, op) in operators {
            if let r = part.range(of: symbol), best == nil || r.lowerBound < best!.0.lowerBound
                || (r.lowerBound == best!.0.lowerBound && symbol.count > part[best!.0].count) {
                best = (r, op)
            }
        }
        guard let (r, op) = best else { return nil }
        return (String(part[..<r.lowerBound]), op, String(part[r.upperBound...]))
    }

    public static func order(_ text: String) throws -> [(name: String, descending: Bool)] {
        try text.split(separator: ",").map { item in
            var s = item.trimmingCharacters(in: .whitespaces)
            var descending = false
            if s.hasPrefix("-") {
                descending = true
                s.removeFirst()
            } else if let colon = s.lastIndex(of: ":"), ["asc", "desc"].contains(s[s.index(after: colon)...]) {
                descending = s[s.index(after: colon)...] == "desc"
                s = String(s[..<colon])
            }
            guard !s.isEmpty else { throw QueryError.invalid("order_by", "an empty name in '\(text)'") }
            return (s, descending)
        }
    }
}

/// A small JSON text builder for report answers (keys in query order; numbers as numbers).
public struct JSONText {
    var bytes: [UInt8] = []

    mutating func raw(_ s: String) { bytes.append(contentsOf: s.utf8) }

    mutating func string(_ s: String) { Self.appendString(s.utf8, to: &bytes) }

    /// `value` as a JSON string literal (quoted, escaped) appended to `out`.
    public static func appendString<S: Sequence>(_ value: S, to out: inout [UInt8]) where S.Element == UInt8 {
        out.append(UInt8(ascii: "\""))
        for b in value {
            switch b {
            case UInt8(ascii: "\""): out.append(contentsOf: [92, 34])
            case UInt8(ascii: "\\"): out.append(contentsOf: [92, 92])
            case 0x0A: out.append(contentsOf: [92, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [92, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [92, UInt8(ascii: "t")])
            case 0..<0x20: out.append(contentsOf: Array(String(format: "\\u%04x", b).utf8))
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Row `r` of `b` as a JSON object of `columns` (times as ISO-8601 UTC, properties as the
    /// stored JSON, null as null): `tally dump`'s NDJSON lines and the event list's rows.
    public static func appendEvent(_ b: EventBatch, row r: Int, columns: [EventColumn], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        for (i, c) in columns.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: c.name.utf8)
            out.append(contentsOf: "\":".utf8)
            if c.kind == .int64 {
                let col = b[int: c]
                if col.isNull(r) { out.append(contentsOf: "null".utf8) } else if c == .occurredAt || c == .receivedAt {
                    out.append(UInt8(ascii: "\""))
                    out.append(contentsOf: CivilTime.iso8601(ms: col.values[r]).utf8)
                    out.append(UInt8(ascii: "\""))
                } else {
                    out.append(contentsOf: String(col.values[r]).utf8)
                }
            } else {
                let col = b[string: c]
                if col.isNull(r) {
                    out.append(contentsOf: "null".utf8)
                } else if c == .properties {
                    col.withValue(r) { v in
                        if v.isEmpty { out.append(contentsOf: "{}".utf8) } else { out.append(contentsOf: v) }
                    }
                } else {
                    col.withValue(r) { v in appendString(v, to: &out) }
                }
            }
        }
        out.append(UInt8(ascii: "}"))
    }

    /// One result row as an object keyed by `columns`.
    mutating func row(_ values: [QueryValue], columns: [String]) {
        raw("{")
        for (j, v) in values.enumerated() {
            if j > 0 { raw(",") }
            string(columns[j])
            raw(":")
            value(v)
        }
        raw("}")
    }

    mutating func value(_ v: QueryValue) {
        switch v {
        case .null: raw("null")
        case .int(let i): raw(String(i))
        case .double(let d): raw(d.isFinite ? String(d) : "null")
        case .string(let s): string(s)
        }
    }

    func response(status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
