import Engine
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// POST /v1/properties/{id}/query: a JSON body shaped after Plausible's Stats API v2, so a
/// user who knows that API needs nothing new:
///
///     {"metrics": ["visitors", "pageviews"], "date_range": "7d" | ["2026-01-01", "2026-01-31"],
///      "dimensions": ["event:page", "time:day"], "filters": [["is", "visit:country", ["DE"]],
///      ["not", ["contains", "event:page", ["/admin"]]], ["or", [...]]],
///      "order_by": [["visitors", "desc"]], "pagination": {"limit": 100, "offset": 0},
///      "include": {"total_rows": true, "time_labels": true}, "timezone": "Europe/Berlin", "exact": false}
///
/// Answer: `{"results": [{"dimensions": [...], "metrics": [...]}], "meta": {...}, "query": {...}}`.
extension ReportRoutes {
    /// Plausible's dimension names → Tally's.
    static let plausibleDimensions: [String: String] = [
        "event:page": "page_path", "event:name": "event_type", "visit:source": "source", "visit:referrer": "referrer_domain",
        "visit:utm_source": "utm_source", "visit:utm_medium": "utm_medium", "visit:utm_campaign": "utm_campaign",
        "visit:utm_term": "utm_term", "visit:utm_content": "utm_content", "visit:country": "country_code",
        "visit:region": "region", "visit:device": "device_type", "visit:browser": "browser", "visit:os": "os",
        "time": "day",
    ]

    static func dimension(_ name: String, parameter: String) throws -> QueryDimension {
        do { return try QueryDimension(name: plausibleDimensions[name] ?? name) } catch {
            throw QueryError.invalid(parameter, error.message)
        }
    }

    func plausibleQuery(_ request: Request, _ context: TallyRequestContext) async throws -> Response {
        let property: Property
        switch try authorize(request, context, siteFromKey: false) {
        case .failure(let response): return response
        case .success(let p): property = p
        }
        let body: ByteBuffer
        do { body = try await request.body.collect(upTo: 256 << 10) } catch {
            return JSONBody.error(.contentTooLarge, "query body is larger than 256 KiB", field: "body")
        }
        do {
            guard let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] else {
                throw QueryError.invalid("body", "the body is not a JSON object")
            }
            let (query, include) = try plausible(object, property: property)
            let (result, elapsed) = try await execute(query)
            var w = JSONText()
            w.raw("{\"results\":[")
            let dims = query.dimensions.count
            for (i, row) in result.rows.enumerated() {
                if i > 0 { w.raw(",") }
                w.raw("{\"dimensions\":[")
                for (j, v) in row.prefix(dims).enumerated() {
                    if j > 0 { w.raw(",") }
                    w.value(v)
                }
                w.raw("],\"metrics\":[")
                for (j, v) in row.dropFirst(dims).enumerated() {
                    if j > 0 { w.raw(",") }
                    w.value(v)
                }
                w.raw("]}")
            }
            w.raw("],\"meta\":")
            var meta = JSONText()
            Self.meta(result, elapsed: elapsed, into: &meta)
            if include.timeLabels, let t = query.dimensions.first(where: \.isTime), case .time(let bucket) = t {
                meta.bytes.removeLast()  // "}"
                meta.raw(",\"time_labels\":[")
                for (i, k) in bucket.keys(from: query.from, to: query.to, query.timeZone).enumerated() {
                    if i > 0 { meta.raw(",") }
                    meta.value(bucket.label(k, query.timeZone))
                }
                meta.raw("]}")
            }
            w.bytes.append(contentsOf: meta.bytes)
            w.raw(",\"query\":{\"site_id\":")
            w.string(query.site)
            w.raw(",\"metrics\":[" + query.metrics.map { "\"\($0.name)\"" }.joined(separator: ",") + "]")
            w.raw(",\"dimensions\":[" + query.dimensions.map { "\"\($0.name)\"" }.joined(separator: ",") + "]")
            w.raw(",\"date_range\":[")
            w.string(CivilTime.iso8601(ms: query.from))
            w.raw(",")
            w.string(CivilTime.iso8601(ms: query.to))
            w.raw("],\"timezone\":")
            w.string(query.timeZone.identifier)
            w.raw(",\"order_by\":[" + query.orderBy.map { "[\"\($0.name)\",\"\($0.descending ? "desc" : "asc")\"]" }
                .joined(separator: ",") + "]")
            w.raw(",\"pagination\":{\"limit\":\(query.limit ?? Query.maxLimit),\"offset\":\(query.offset)}")
            w.raw(",\"exact\":\(query.exact)}}")
            return w.response()
        } catch let e as QueryError {
            return Self.queryError(e)
        }
    }

    struct Include {
        var totalRows = false
        var timeLabels = false
    }

    func plausible(_ o: [String: Any], property: Property) throws -> (Query, Include) {
        for key in o.keys where !["site_id", "metrics", "date_range", "dimensions", "filters", "order_by", "pagination",
                                  "include", "timezone", "exact"].contains(key) {
            throw QueryError.invalid(key, "unknown query field '\(key)'")
        }
        if let site = o["site_id"] {
            guard let s = site as? String, s == property.id else {
                throw QueryError.invalid("site_id", "must be the read key's property '\(property.id)'")
            }
        }
        guard let metricNames = o["metrics"] as? [String], !metricNames.isEmpty else {
            throw QueryError.invalid("metrics", "must be a non-empty array of metric names")
        }
        let metrics = try metricNames.map { try QueryMetric(name: $0) }
        let zoneName: String
        if let z = o["timezone"] {
            guard let s = z as? String else { throw QueryError.invalid("timezone", "must be a string") }
            zoneName = s
        } else {
            zoneName = property.timezone
        }
        let zone = try QueryTimeZone(identifier: zoneName)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let range: (from: Int64, to: Int64)
        switch o["date_range"] {
        case nil: range = try QueryRange.resolve(from: nil, to: nil, period: "7d", zone: zone, now: now)
        case let s as String:
            range = try QueryRange.resolve(from: nil, to: nil, period: s, zone: zone, now: now)
        case let a as [Any] where a.count == 2:
            guard let f = a[0] as? String, let t = a[1] as? String else {
                throw QueryError.invalid("date_range", "must be [from, to] as date strings")
            }
            range = try QueryRange.resolve(from: f, to: t, period: nil, zone: zone, now: now)
        default:
            throw QueryError.invalid("date_range", "must be a period (\"7d\") or [from, to]")
        }
        try Self.checkRetention(from: range.from, property: property, now: now)
        var q = Query(site: property.id, from: range.from, to: range.to, timeZone: zone, metrics: metrics)
        q.rawFloor = now - Int64(property.rawRetentionDays) * 86_400_000
        if let d = o["dimensions"] {
            guard let names = d as? [String] else { throw QueryError.invalid("dimensions", "must be an array of names") }
            q.dimensions = try names.map { try Self.dimension($0, parameter: "dimensions") }
        }
        if let f = o["filters"] {
            guard let list = f as? [Any] else { throw QueryError.invalid("filters", "must be an array of filters") }
            let parsed = try list.enumerated().map { i, item in try Self.filter(item, path: "filters[\(i)]") }
            if !parsed.isEmpty { q.filter = parsed.count == 1 ? parsed[0] : .and(parsed) }
        }
        if let ob = o["order_by"] {
            guard let list = ob as? [[Any]] else { throw QueryError.invalid("order_by", "must be [[name, \"asc\"|\"desc\"], …]") }
            q.orderBy = try list.map { pair in
                guard pair.count == 2, let name = pair[0] as? String, let dir = pair[1] as? String, ["asc", "desc"].contains(dir)
                else { throw QueryError.invalid("order_by", "each item must be [name, \"asc\"|\"desc\"]") }
                let mapped = Self.plausibleDimensions[name] ?? name
                return (mapped, dir == "desc")
            }
        }
        if let p = o["pagination"] {
            guard let page = p as? [String: Any] else { throw QueryError.invalid("pagination", "must be an object") }
            if let l = page["limit"] {
                guard let n = l as? Int else { throw QueryError.invalid("pagination.limit", "must be an integer") }
                q.limit = n
            }
            if let off = page["offset"] {
                guard let n = off as? Int else { throw QueryError.invalid("pagination.offset", "must be an integer") }
                q.offset = n
            }
        }
        if q.limit == nil, !q.dimensions.isEmpty { q.limit = q.dimensions.contains(where: \.isTime) ? nil : 10_000 }
        var include = Include()
        if let inc = o["include"] {
            guard let i = inc as? [String: Any] else { throw QueryError.invalid("include", "must be an object") }
            include.totalRows = i["total_rows"] as? Bool ?? false
            include.timeLabels = i["time_labels"] as? Bool ?? false
        }
        if let e = o["exact"] {
            guard let b = e as? Bool else { throw QueryError.invalid("exact", "must be true or false") }
            q.exact = b
        }
        return (q, include)
    }

    /// `["is"|"is_not"|"contains"|"contains_not"|"prefix", dimension, [values]]`, `["and"|"or", [filters]]`, `["not", filter]`.
    static func filter(_ item: Any, path: String) throws -> QueryFilter {
        guard let a = item as? [Any], let op = a.first as? String else {
            throw QueryError.invalid(path, "a filter is [operator, dimension, [values]] or [\"and\"|\"or\", [filters]] or [\"not\", filter]")
        }
        switch op {
        case "and", "or":
            guard a.count == 2, let list = a[1] as? [Any], !list.isEmpty else {
                throw QueryError.invalid(path, "[\"\(op)\", [filters]] needs a non-empty list")
            }
            let fs = try list.enumerated().map { i, f in try filter(f, path: "\(path)[1][\(i)]") }
            return op == "and" ? .and(fs) : .or(fs)
        case "not":
            guard a.count == 2 else { throw QueryError.invalid(path, "[\"not\", filter] takes one filter") }
            return .not(try filter(a[1], path: "\(path)[1]"))
        default:
            guard let o = QueryFilter.FilterOperator(rawValue: op) else {
                throw QueryError.invalid(path, "unknown operator '\(op)' (is, is_not, contains, contains_not, prefix, and, or, not)")
            }
            guard a.count == 3, let name = a[1] as? String, let values = a[2] as? [Any], !values.isEmpty else {
                throw QueryError.invalid(path, "[\"\(op)\", dimension, [values]] needs a dimension and a non-empty list")
            }
            let texts: [String?] = try values.map { v in
                switch v {
                case let s as String: return s
                case is NSNull: return nil
                case let n as NSNumber: return n.stringValue
                default: throw QueryError.invalid(path, "values must be strings or numbers")
                }
            }
            return .condition(try dimension(name, parameter: path), o, texts)
        }
    }
}
