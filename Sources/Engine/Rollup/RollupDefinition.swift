/// A daily rollup, declared as data: per site, local day and event type, the events, unique
/// visitors and unique sessions of each combination of `dimensions`.
///
/// Every rollup is keyed by (site_id, day in the site's time zone, event_type, dimensions…) —
/// event_type always, so pageviews, `count:<type>` and ratios such as CTR come from any rollup.
/// Metrics per row: an event count and two HyperLogLog sketches (visitor_id, session_id), which
/// merge across days, types and values without losing distinctness.
public struct RollupDefinition: Sendable, Codable, Equatable {
    public var name: String
    /// At most four columns besides site, day and event type; identifiers cannot be dimensions.
    public var dimensions: [EventColumn]
    /// Rollup partitions (local months) are dropped once their last day is older than this.
    public var retentionDays: Int
    /// The event types whose rows carry the visitor and session sketches; nil: every type.
    /// Other rows keep their counts only. A query with unique visitors or sessions uses the
    /// rollup only when its event-type filter stays within these types (others go to raw
    /// events). Sketches are most of a rollup's bytes: keeping them for pageviews only (with the
    /// Rice-coded sketches of the same change) took the page/referrer/country/device/campaign
    /// rollups from 16.9 to 8.1 bytes per raw event on 10M generated events (BENCHMARKS.md,
    /// "Rollup storage").
    public var sketchTypes: [String]?

    public static let defaultRetentionDays = 730
    public static let maxDimensions = 4

    public init(name: String, dimensions: [EventColumn], retentionDays: Int = RollupDefinition.defaultRetentionDays,
                sketchTypes: [String]? = nil) {
        self.name = name
        self.dimensions = dimensions
        self.retentionDays = retentionDays
        self.sketchTypes = sketchTypes
    }

    /// The defaults cover the seeds' rollups (seed 000's daily_site_stats, daily_widget_stats and
    /// daily_post_stats; seed 001's event counts, device/browser/OS/country distributions and
    /// UTM campaign stats).
    public static let defaults: [RollupDefinition] = [
        RollupDefinition(name: "events", dimensions: []),
        RollupDefinition(name: "pages", dimensions: [.pagePath], sketchTypes: QueryMetric.pageviewTypes),
        RollupDefinition(name: "referrers", dimensions: [.referrerDomain], sketchTypes: QueryMetric.pageviewTypes),
        RollupDefinition(name: "campaigns", dimensions: [.utmSource, .utmMedium, .utmCampaign, .campaignID],
                         sketchTypes: QueryMetric.pageviewTypes),
        RollupDefinition(name: "countries", dimensions: [.countryCode], sketchTypes: QueryMetric.pageviewTypes),
        RollupDefinition(name: "devices", dimensions: [.deviceType, .browser, .os], sketchTypes: QueryMetric.pageviewTypes),
        RollupDefinition(name: "widgets", dimensions: [.propMappingID, .propPostID, .propDeviceSlug],
                         sketchTypes: ["widget_impression", "widget_click"]),
    ]

    /// The key columns of a row: site, event type, then the dimensions.
    var columns: [EventColumn] { [.siteID, .eventType] + dimensions }

    var retention: Int64 { Int64(retentionDays) * 86_400_000 }

    /// Checks a definition; the message names what is wrong.
    public func validate() throws(TallyError) {
        guard !name.isEmpty, name.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-")
            || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
        else { throw TallyError(.invalidArgument, "rollup name '\(name)': use a-z, 0-9, '-' and '_'") }
        guard dimensions.count <= Self.maxDimensions else {
            throw TallyError(.invalidArgument, "rollup \(name): at most \(Self.maxDimensions) dimensions")
        }
        for d in dimensions where d.kind == .identifier || [.siteID, .eventType, .occurredAt, .receivedAt].contains(d) {
            throw TallyError(.invalidArgument, "rollup \(name): \(d.name) cannot be a rollup dimension")
        }
        guard Set(dimensions).count == dimensions.count else {
            throw TallyError(.invalidArgument, "rollup \(name): a dimension is repeated")
        }
        guard retentionDays > 0 else { throw TallyError(.invalidArgument, "rollup \(name): retention must be positive") }
        if let sketchTypes, sketchTypes.isEmpty || sketchTypes.contains(where: \.isEmpty) {
            throw TallyError(.invalidArgument, "rollup \(name): sketch types must be event types (leave them out for every type)")
        }
    }
}

extension EventColumn: Codable {
    public init(from decoder: any Decoder) throws {
        let name = try decoder.singleValueContainer().decode(String.self)
        guard let c = EventColumn(name: name) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown column \(name)"))
        }
        self = c
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(name)
    }
}
