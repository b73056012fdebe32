/// The columns of Tally's `events` table, declared once.
///
/// Seed 000's ClickHouse `events` table, column for column, followed by what seed 003's
/// envelope carries that has no home there. The raw value is the column's id on disk:
/// ids are never reused or renumbered (FORMAT.md, "Column ids").
public enum EventColumn: Int, CaseIterable, Sendable, Comparable {
    case eventID = 0
    case eventType = 1
    case eventVersion = 2
    case occurredAt = 3
    case receivedAt = 4
    case source = 5
    case siteID = 6
    case sessionID = 7
    case visitorID = 8
    case pageURL = 9
    case pagePath = 10
    case referrerDomain = 11
    case userAgent = 12
    case deviceType = 13
    case countryCode = 14
    case region = 15
    case properties = 16
    case propMappingID = 17
    case propPostID = 18
    case propDeviceSlug = 19
    // Seed 003.
    case pageTitle = 20
    case campaignID = 21
    case utmSource = 22
    case utmMedium = 23
    case utmCampaign = 24
    case utmTerm = 25
    case utmContent = 26
    case userIDHash = 27
    case browser = 28
    case os = 29

    public static func < (a: EventColumn, b: EventColumn) -> Bool { a.rawValue < b.rawValue }

    /// The column's name, as in seed 000's SQL and in every API.
    public var name: String {
        switch self {
        case .eventID: "event_id"
        case .eventType: "event_type"
        case .eventVersion: "event_version"
        case .occurredAt: "occurred_at"
        case .receivedAt: "received_at"
        case .source: "source"
        case .siteID: "site_id"
        case .sessionID: "session_id"
        case .visitorID: "visitor_id"
        case .pageURL: "page_url"
        case .pagePath: "page_path"
        case .referrerDomain: "referrer_domain"
        case .userAgent: "user_agent"
        case .deviceType: "device_type"
        case .countryCode: "country_code"
        case .region: "region"
        case .properties: "properties"
        case .propMappingID: "prop_mapping_id"
        case .propPostID: "prop_post_id"
        case .propDeviceSlug: "prop_device_slug"
        case .pageTitle: "page_title"
        case .campaignID: "campaign_id"
        case .utmSource: "utm_source"
        case .utmMedium: "utm_medium"
        case .utmCampaign: "utm_campaign"
        case .utmTerm: "utm_term"
        case .utmContent: "utm_content"
        case .userIDHash: "user_id_hash"
        case .browser: "browser"
        case .os: "os"
        }
    }

    public init?(name: String) {
        guard let c = EventColumn.byName[name] else { return nil }
        self = c
    }

    private static let byName: [String: EventColumn] = Dictionary(
        uniqueKeysWithValues: EventColumn.allCases.map { ($0.name, $0) })

    /// How the column is stored.
    public var kind: ColumnKind {
        switch self {
        case .eventVersion, .occurredAt, .receivedAt, .propMappingID, .propPostID: .int64
        case .eventID, .sessionID, .visitorID, .userIDHash: .identifier
        case .eventType, .source, .siteID, .referrerDomain, .deviceType, .countryCode, .region,
            .propDeviceSlug, .campaignID, .utmSource, .utmMedium, .utmCampaign, .utmTerm, .utmContent,
            .browser, .os, .userAgent:
            .lowCardinality
        case .pageURL, .pagePath, .properties, .pageTitle: .string
        }
    }

    /// Nullable columns carry a null bitmap. The rest hold "" (or 0) when absent, as
    /// ClickHouse's non-Nullable columns do.
    public var isNullable: Bool {
        switch self {
        case .propMappingID, .propPostID, .propDeviceSlug, .pageTitle, .campaignID, .utmSource, .utmMedium,
            .utmCampaign, .utmTerm, .utmContent, .userIDHash:
            true
        default: false
        }
    }

    /// The longest value accepted for a string column, in UTF-8 bytes. Longer values are
    /// rejected at ingest with a reason naming the field (never truncated silently).
    public var maxLength: Int {
        switch self {
        case .eventID, .sessionID, .visitorID, .userIDHash: 128
        case .pageURL, .referrerDomain: 2048
        case .pagePath, .pageTitle: 1024
        case .userAgent: 1024
        case .properties: 16384
        case .eventType, .source, .siteID: 128
        default: 256
        }
    }

    /// Position of the column among the columns of its storage class inside an `EventBatch`.
    @inlinable public var slot: Int { EventColumn.slots[rawValue] }

    @usableFromInline static let slots: [Int] = {
        var ints = 0
        var strings = 0
        return EventColumn.allCases.map { c in
            if c.kind == .int64 {
                defer { ints += 1 }
                return ints
            } else {
                defer { strings += 1 }
                return strings
            }
        }
    }()

    public static let int64Columns: [EventColumn] = allCases.filter { $0.kind == .int64 }
    public static let stringColumns: [EventColumn] = allCases.filter { $0.kind != .int64 }
}

/// The storage class of a column.
public enum ColumnKind: UInt8, Sendable {
    /// Signed 64-bit integers (timestamps in ms since the Unix epoch, UTC; ids; versions).
    case int64 = 1
    /// UTF-8 text of any cardinality.
    case string = 2
    /// UTF-8 text with few distinct values: dictionary-encoded in parts.
    case lowCardinality = 3
    /// Random identifiers (ULIDs, UUIDs, hex): stored as binary when every value in a block parses.
    case identifier = 4

    public var isString: Bool { self != .int64 }
}
