import Engine

/// A member the reader knows, at any level of a request: flat seed-000 event fields, seed-003
/// event fields and their nested `context`/`identity` members, envelope fields, and the
/// `properties` members copied to their own columns.
enum InputField: UInt8 {
    // A flat event's members (seed 000), named as their columns.
    case eventID, eventType, eventVersion, occurredAt, receivedAt, source, siteID, sessionID, visitorID
    case pageURL, pagePath, referrerDomain, referrer, userAgent, deviceType, countryCode, region, properties
    case pageTitle, campaignID, utmSource, utmMedium, utmCampaign, utmTerm, utmContent, userIDHash, browser, os
    // A seed-003 event's members.
    case type, ts, data, context, identity
    // The envelope's members (seed 003), at the top level of a document.
    case events, propertyID, schemaVersion, sentAt
    // context.*
    case contextPage, contextCampaign
    case contextPageURL, contextPagePath, contextPageTitle, contextPageReferrer
    case contextCampaignID, contextCampaignUTM
    case utmSourceNested, utmMediumNested, utmCampaignNested, utmTermNested, utmContentNested
    // identity.*
    case identityVisitorID, identitySessionID, identityUserIDHash
    // properties.* (and data.*)
    case mappingID, postID, deviceSlug

    /// The name a user sees in an error: the member's path in a seed-003 event.
    var name: String {
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
        case .referrer: "referrer"
        case .userAgent: "user_agent"
        case .deviceType: "device_type"
        case .countryCode: "country_code"
        case .region: "region"
        case .properties: "properties"
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
        case .type: "type"
        case .ts: "ts"
        case .data: "data"
        case .context: "context"
        case .identity: "identity"
        case .events: "events"
        case .propertyID: "property_id"
        case .schemaVersion: "schema_version"
        case .sentAt: "sent_at"
        case .contextPage: "context.page"
        case .contextCampaign: "context.campaign"
        case .contextPageURL: "context.page.url"
        case .contextPagePath: "context.page.path"
        case .contextPageTitle: "context.page.title"
        case .contextPageReferrer: "context.page.referrer"
        case .contextCampaignID: "context.campaign.campaign_id"
        case .contextCampaignUTM: "context.campaign.utm"
        case .utmSourceNested: "context.campaign.utm.source"
        case .utmMediumNested: "context.campaign.utm.medium"
        case .utmCampaignNested: "context.campaign.utm.campaign"
        case .utmTermNested: "context.campaign.utm.term"
        case .utmContentNested: "context.campaign.utm.content"
        case .identityVisitorID: "identity.visitor_id"
        case .identitySessionID: "identity.session_id"
        case .identityUserIDHash: "identity.user_id_hash"
        case .mappingID: "mapping_id"
        case .postID: "post_id"
        case .deviceSlug: "device_slug"
        }
    }

    /// The draft slot a string-valued member fills, or nil for members read another way.
    var slot: DraftSlot? {
        switch self {
        case .eventID: .eventID
        case .eventType, .type: .eventType
        case .source: .source
        case .siteID: .siteID
        case .sessionID, .identitySessionID: .sessionID
        case .visitorID, .identityVisitorID: .visitorID
        case .pageURL, .contextPageURL: .pageURL
        case .pagePath, .contextPagePath: .pagePath
        case .referrerDomain: .referrerDomain
        case .referrer, .contextPageReferrer: .referrer
        case .userAgent: .userAgent
        case .deviceType: .deviceType
        case .countryCode: .countryCode
        case .region: .region
        case .pageTitle, .contextPageTitle: .pageTitle
        case .campaignID, .contextCampaignID: .campaignID
        case .utmSource, .utmSourceNested: .utmSource
        case .utmMedium, .utmMediumNested: .utmMedium
        case .utmCampaign, .utmCampaignNested: .utmCampaign
        case .utmTerm, .utmTermNested: .utmTerm
        case .utmContent, .utmContentNested: .utmContent
        case .userIDHash, .identityUserIDHash: .userIDHash
        case .browser: .browser
        case .os: .os
        default: nil
        }
    }
}

/// A string an event carries, held as a span of the input until the event is known to be
/// valid and is written to its column.
enum DraftSlot: Int, CaseIterable {
    case eventID, eventType, source, siteID, sessionID, visitorID, pageURL, pagePath, referrerDomain, referrer
    case userAgent, deviceType, countryCode, region, properties, propDeviceSlug, pageTitle, campaignID
    case utmSource, utmMedium, utmCampaign, utmTerm, utmContent, userIDHash, browser, os

    /// The number of slots (`allCases.count` builds an array).
    static let count = DraftSlot.os.rawValue + 1

    /// The column the slot is written to; `referrer` has none (only its host is kept).
    var column: EventColumn? {
        switch self {
        case .eventID: .eventID
        case .eventType: .eventType
        case .source: .source
        case .siteID: .siteID
        case .sessionID: .sessionID
        case .visitorID: .visitorID
        case .pageURL: .pageURL
        case .pagePath: .pagePath
        case .referrerDomain: .referrerDomain
        case .referrer: nil
        case .userAgent: .userAgent
        case .deviceType: .deviceType
        case .countryCode: .countryCode
        case .region: .region
        case .properties: .properties
        case .propDeviceSlug: .propDeviceSlug
        case .pageTitle: .pageTitle
        case .campaignID: .campaignID
        case .utmSource: .utmSource
        case .utmMedium: .utmMedium
        case .utmCampaign: .utmCampaign
        case .utmTerm: .utmTerm
        case .utmContent: .utmContent
        case .userIDHash: .userIDHash
        case .browser: .browser
        case .os: .os
        }
    }

    /// The longest value accepted, in UTF-8 bytes: the column's limit. A referrer is not
    /// stored, so it has none (its host is checked against `referrer_domain`'s).
    var maxLength: Int { column?.maxLength ?? Int.max }
}

extension KeyTable {
    private static let eventMembers: [(String, InputField)] = [
        ("event_id", .eventID), ("event_type", .eventType), ("event_version", .eventVersion),
        ("occurred_at", .occurredAt), ("received_at", .receivedAt), ("source", .source), ("site_id", .siteID),
        ("session_id", .sessionID), ("visitor_id", .visitorID), ("page_url", .pageURL), ("page_path", .pagePath),
        ("referrer_domain", .referrerDomain), ("referrer", .referrer), ("user_agent", .userAgent),
        ("device_type", .deviceType), ("country_code", .countryCode), ("region", .region),
        ("properties", .properties), ("page_title", .pageTitle), ("campaign_id", .campaignID),
        ("utm_source", .utmSource), ("utm_medium", .utmMedium), ("utm_campaign", .utmCampaign),
        ("utm_term", .utmTerm), ("utm_content", .utmContent), ("user_id_hash", .userIDHash),
        ("browser", .browser), ("os", .os),
        ("type", .type), ("ts", .ts), ("data", .data), ("context", .context), ("identity", .identity),
    ]

    /// An event object's members, flat and seed-003 alike.
    static let event = KeyTable(eventMembers)
    /// A top-level object's members: it is an envelope (with `events`) or a single event.
    static let document = KeyTable(
        eventMembers + [
            ("events", .events), ("property_id", .propertyID), ("schema_version", .schemaVersion),
            ("sent_at", .sentAt),
        ])
    static let context = KeyTable([("page", .contextPage), ("campaign", .contextCampaign)])
    static let page = KeyTable([
        ("url", .contextPageURL), ("path", .contextPagePath), ("title", .contextPageTitle),
        ("referrer", .contextPageReferrer),
    ])
    static let campaign = KeyTable([("campaign_id", .contextCampaignID), ("utm", .contextCampaignUTM)])
    static let utm = KeyTable([
        ("source", .utmSourceNested), ("medium", .utmMediumNested), ("campaign", .utmCampaignNested),
        ("term", .utmTermNested), ("content", .utmContentNested),
    ])
    static let identity = KeyTable([
        ("visitor_id", .identityVisitorID), ("session_id", .identitySessionID),
        ("user_id_hash", .identityUserIDHash),
    ])
    static let properties = KeyTable([("mapping_id", .mappingID), ("post_id", .postID), ("device_slug", .deviceSlug)])
}
