/// A reporting question: one property, a time range, metrics, dimensions, filters, order.
///
/// The names here (`unique_visitors`, `page_path`, `props.plan`, ...) are the reporting API's
/// names; `QueryMetric(name:)`, `QueryDimension(name:)` parse them and errors name the parameter.
public struct Query: Sendable {
    /// The property (events' site_id). A query never reads another property's rows.
    public var site: String
    /// occurred_at in [from, to), ms UTC.
    public var from: Int64
    public var to: Int64
    /// Day, week, month and hour boundaries and labels.
    public var timeZone: QueryTimeZone
    public var metrics: [QueryMetric]
    public var dimensions: [QueryDimension]
    public var filter: QueryFilter?
    /// (metric or dimension name, descending); empty = time ascending when grouped by time,
    /// else the first metric descending. Ties are broken by the dimensions ascending.
    public var orderBy: [(name: String, descending: Bool)]
    public var limit: Int?
    public var offset: Int
    /// Distinct counts by exact sets of 64-bit hashes instead of HyperLogLog sketches.
    public var exact: Bool
    /// Time series come back dense: every bucket of the range, empty ones as zeros.
    public var denseTime: Bool
    /// Answer from the daily rollups where they fit (false: raw parts only, e.g. to compare).
    public var allowRollups = true
    /// The property's raw retention as an instant (ms UTC): raw events older than this are not
    /// counted, even while their month partition is still on disk (partitions go whole, once
    /// past the longest retention of any property). Rollup days are kept longer and still count.
    public var rawFloor: Int64?

    public init(site: String, from: Int64, to: Int64, timeZone: QueryTimeZone = .utc, metrics: [QueryMetric],
                dimensions: [QueryDimension] = [], filter: QueryFilter? = nil,
                orderBy: [(name: String, descending: Bool)] = [], limit: Int? = nil, offset: Int = 0,
                exact: Bool = false, denseTime: Bool = true) {
        self.site = site
        self.from = from
        self.to = to
        self.timeZone = timeZone
        self.metrics = metrics
        self.dimensions = dimensions
        self.filter = filter
        self.orderBy = orderBy
        self.limit = limit
        self.offset = offset
        self.exact = exact
        self.denseTime = denseTime
    }

    public static let maxDimensions = 4
    public static let maxLimit = 10_000
}

/// What a query counts.
public indirect enum QueryMetric: Hashable, Sendable, CustomStringConvertible {
    /// Every event.
    case events
    /// Events of type `page_view` (seed 000) or `pageview` (seed 003).
    case pageviews
    /// Distinct visitor_id (HyperLogLog, or exact with `exact`).
    case uniqueVisitors
    /// Distinct session_id.
    case sessions
    /// Events of one type: `count:widget_click`.
    case count(String)
    /// One count divided by another: `ratio:count:widget_click/count:widget_impression`;
    /// `ctr` is that ratio. 0 when the denominator is 0.
    case ratio(QueryMetric, QueryMetric)
    /// Sum of a numeric key of the properties JSON: `sum:value`.
    case sum(String)
    /// A metric of sessions (bounce rate, visit duration, ...): the query is answered over
    /// sessions, see `SessionExecutor`.
    case session(SessionMetric)

    public static let pageviewTypes = ["page_view", "pageview"]

    public init(name: String) throws(QueryError) {
        switch name {
        case "events": self = .events
        case "pageviews": self = .pageviews
        case "unique_visitors", "visitors": self = .uniqueVisitors
        case "sessions", "visits": self = .sessions
        case "ctr": self = .ratio(.count("widget_click"), .count("widget_impression"))
        case "bounce_rate": self = .session(.bounceRate)
        case "bounces": self = .session(.bounces)
        case "visit_duration": self = .session(.visitDuration)
        case "visit_duration_median": self = .session(.visitDurationMedian)
        case "views_per_visit": self = .session(.viewsPerVisit)
        default:
            if name.hasPrefix("conversions:"), name.count > 12 {
                self = .session(.conversions(String(name.dropFirst(12))))
            } else if name.hasPrefix("count:"), name.count > 6 {
                self = .count(String(name.dropFirst(6)))
            } else if name.hasPrefix("sum:"), name.count > 4 {
                self = .sum(String(name.dropFirst(4)))
            } else if name.hasPrefix("ratio:"), let slash = name.lastIndex(of: "/") {
                let a = try QueryMetric(name: String(name[name.index(name.startIndex, offsetBy: 6)..<slash]))
                let b = try QueryMetric(name: String(name[name.index(after: slash)...]))
                guard !a.isRatio, !b.isRatio, !a.isSession, !b.isSession else {
                    throw QueryError.invalid("metrics", "\(name): a ratio is of two counts, not of ratios")
                }
                self = .ratio(a, b)
            } else {
                throw QueryError.invalid(
                    "metrics",
                    "unknown metric '\(name)' (known: events, pageviews, unique_visitors, sessions, ctr, count:<event_type>, "
                        + "sum:<property>, ratio:<metric>/<metric>, bounce_rate, bounces, visit_duration, visit_duration_median, "
                        + "views_per_visit, conversions:<event_type>)")
            }
        }
    }

    public var name: String {
        switch self {
        case .events: "events"
        case .pageviews: "pageviews"
        case .uniqueVisitors: "unique_visitors"
        case .sessions: "sessions"
        case .count(let t): "count:" + t
        case .ratio(.count("widget_click"), .count("widget_impression")): "ctr"
        case .ratio(let a, let b): "ratio:\(a.name)/\(b.name)"
        case .sum(let k): "sum:" + k
        case .session(let m): m.name
        }
    }

    public var description: String { name }

    var isRatio: Bool {
        if case .ratio = self { return true }
        return false
    }

    /// Only sessions can answer it.
    public var isSession: Bool {
        if case .session = self { return true }
        return false
    }
}

/// Metrics of sessions (a session: the events of one session_id, see `SessionExecutor`).
public enum SessionMetric: Hashable, Sendable {
    /// Percent of sessions with pageviews that had exactly one.
    case bounceRate
    /// Sessions with exactly one pageview.
    case bounces
    /// Mean seconds from a session's first event to its last.
    case visitDuration
    case visitDurationMedian
    /// Pageviews per session.
    case viewsPerVisit
    /// Sessions with at least one event of this type: `conversions:signup`.
    case conversions(String)

    public var name: String {
        switch self {
        case .bounceRate: "bounce_rate"
        case .bounces: "bounces"
        case .visitDuration: "visit_duration"
        case .visitDurationMedian: "visit_duration_median"
        case .viewsPerVisit: "views_per_visit"
        case .conversions(let t): "conversions:" + t
        }
    }
}

/// What a query groups by.
public enum QueryDimension: Hashable, Sendable, CustomStringConvertible {
    /// A stored column: event_type, page_path, referrer_domain, country_code, region,
    /// device_type, browser, os, source, utm_*, mapping_id, post_id, device_slug, page_title.
    case column(EventColumn)
    /// Seed 003's campaign: campaign_id, else utm_campaign.
    case campaign
    /// A top-level key of the properties JSON: `props.plan`.
    case prop(String)
    case time(TimeBucket)
    /// The page a session entered or left at: only sessions can answer it.
    case entryPage
    case exitPage

    public enum TimeBucket: String, Sendable, CaseIterable {
        case hour, day, week, month
        case hourOfDay = "hour_of_day"
        case dayOfWeek = "day_of_week"

        /// A series over the range (as opposed to a cycle: hour of day, day of week).
        public var isSeries: Bool { self == .hour || self == .day || self == .week || self == .month }
    }

    static let columnNames: [String: EventColumn] = [
        "event_type": .eventType, "page_path": .pagePath, "path": .pagePath, "page": .pagePath,
        "referrer_domain": .referrerDomain, "referrer": .referrerDomain, "country_code": .countryCode,
        "country": .countryCode, "region": .region, "device_type": .deviceType, "device": .deviceType,
        "browser": .browser, "os": .os, "source": .source, "utm_source": .utmSource, "utm_medium": .utmMedium,
        "utm_campaign": .utmCampaign, "utm_term": .utmTerm, "utm_content": .utmContent, "mapping_id": .propMappingID,
        "post_id": .propPostID, "device_slug": .propDeviceSlug, "page_title": .pageTitle,
    ]

    public init(name: String) throws(QueryError) {
        if let c = Self.columnNames[name] {
            self = .column(c)
        } else if name == "campaign_id" || name == "campaign" {
            self = .campaign
        } else if name == "entry_page" || name == "visit:entry_page" {
            self = .entryPage
        } else if name == "exit_page" || name == "visit:exit_page" {
            self = .exitPage
        } else if name.hasPrefix("props."), name.count > 6 {
            self = .prop(String(name.dropFirst(6)))
        } else if name.hasPrefix("event:props:"), name.count > 12 {  // Plausible's spelling
            self = .prop(String(name.dropFirst(12)))
        } else if let t = TimeBucket(rawValue: name.hasPrefix("time:") ? String(name.dropFirst(5)) : name) {
            self = .time(t)
        } else {
            throw QueryError.invalid(
                "dimensions",
                "unknown dimension '\(name)' (known: \(Self.columnNames.keys.sorted().joined(separator: ", ")), campaign_id, "
                    + "props.<key>, hour, day, week, month, hour_of_day, day_of_week, entry_page, exit_page)")
        }
    }

    /// The name rows are keyed by.
    public var name: String {
        switch self {
        case .column(let c):
            switch c {
            case .propMappingID: "mapping_id"
            case .propPostID: "post_id"
            case .propDeviceSlug: "device_slug"
            default: c.name
            }
        case .campaign: "campaign_id"
        case .prop(let k): "props." + k
        case .time(let t): t.rawValue
        case .entryPage: "entry_page"
        case .exitPage: "exit_page"
        }
    }

    /// Only sessions can answer it (entry and exit pages).
    public var isSession: Bool { self == .entryPage || self == .exitPage }

    public var description: String { name }

    /// A time bucket (hour, day, …, hour_of_day, day_of_week).
    public var isTime: Bool {
        if case .time = self { return true }
        return false
    }
}

/// Which rows count: conditions on dimensions combined with and / or / not.
public indirect enum QueryFilter: Sendable {
    case and([QueryFilter])
    case or([QueryFilter])
    case not(QueryFilter)
    case condition(QueryDimension, FilterOperator, [String?])

    public enum FilterOperator: String, Sendable, CaseIterable {
        /// Equal to one of the values (nil = no value).
        case `is`
        case isNot = "is_not"
        /// Contains one of the values (case-insensitive, as Plausible's `contains`).
        case contains
        case containsNot = "contains_not"
        /// Starts with one of the values.
        case prefix
    }
}

/// A query the executor refuses: the parameter at fault and why. The HTTP layer answers 400.
public struct QueryError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case invalid
        /// The query ran past its time or memory budget.
        case budget
        /// The stored data could not be read (a damaged part, an I/O error): not the asker's fault.
        case storage
    }

    public var kind: Kind
    public var parameter: String
    public var message: String

    public static func invalid(_ parameter: String, _ message: String) -> QueryError {
        QueryError(kind: .invalid, parameter: parameter, message: message)
    }

    /// The data could not be read: `error` (a damaged part, an I/O error) says why.
    public static func storage(_ what: String, _ error: any Error) -> QueryError {
        QueryError(kind: .storage, parameter: "query", message: "\(what) failed: \(error)")
    }

    public var description: String { "\(parameter): \(message)" }
}
