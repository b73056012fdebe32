/// A site or app whose events Tally stores: what `site_id` / `property_id` name in events.
public struct Property: Sendable, Hashable {
    /// 1–128 characters of `[A-Za-z0-9._-]`.
    public var id: String
    public var name: String
    /// An IANA identifier (`Europe/Berlin`) for day boundaries in reports.
    public var timezone: String
    /// Origins (`scheme://host[:port]`, lowercased) browsers may post from; `*` allows any.
    public var allowedOrigins: [String]
    public var rawRetentionDays: Int
    public var rollupRetentionDays: Int
    /// Milliseconds since the Unix epoch.
    public var createdAt: Int64
    /// Whether events sent by a browser with Do Not Track (`DNT: 1`) or Global Privacy Control
    /// (`Sec-GPC: 1`) are dropped (counted as filtered, reason `privacy_signal`, not stored).
    public var respectPrivacySignals: Bool

    public init(id: String, name: String, timezone: String, allowedOrigins: [String], rawRetentionDays: Int,
                rollupRetentionDays: Int, createdAt: Int64, respectPrivacySignals: Bool = false) {
        self.respectPrivacySignals = respectPrivacySignals
        self.id = id
        self.name = name
        self.timezone = timezone
        self.allowedOrigins = allowedOrigins
        self.rawRetentionDays = rawRetentionDays
        self.rollupRetentionDays = rollupRetentionDays
        self.createdAt = createdAt
    }

    /// Whether a browser's `Origin` header is one of this property's allowed origins.
    /// An empty list allows none (server-side senders send no `Origin`).
    public func allowsOrigin(_ origin: String) -> Bool {
        if allowedOrigins.contains("*") { return true }
        guard let normalized = try? Origin.normalize(origin) else { return false }
        return allowedOrigins.contains(normalized)
    }
}
