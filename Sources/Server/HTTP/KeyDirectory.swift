/// What a write key may do: which property it writes to and from which browser origins.
public struct WriteScope: Sendable {
    public var propertyID: String
    /// `scheme://host[:port]` origins, or `*` for any.
    public var allowedOrigins: [String]
    /// The property's raw retention: events older than this many days are refused (nil: the
    /// store's retention decides).
    public var rawRetentionDays: Int?
    /// Drop events of browsers that send Do Not Track or Global Privacy Control.
    public var respectPrivacySignals: Bool

    public init(propertyID: String, allowedOrigins: [String], rawRetentionDays: Int? = nil,
                respectPrivacySignals: Bool = false) {
        self.respectPrivacySignals = respectPrivacySignals
        self.propertyID = propertyID
        self.allowedOrigins = allowedOrigins
        self.rawRetentionDays = rawRetentionDays
    }

    /// Whether a browser's Origin header may post with this key.
    public func allows(origin: String) -> Bool {
        if allowedOrigins.contains("*") { return true }
        let o = origin.lowercased()
        return allowedOrigins.contains { $0.lowercased() == o }
    }
}

/// Resolves API keys to the property they belong to. `MetadataStore` is the real one; tests
/// may use their own.
public protocol KeyDirectory: Sendable {
    /// The scope of the live (unrevoked) write key `key`, or nil.
    func writeScope(forKey key: String) throws -> WriteScope?
    /// The property of the live read key `key`, or nil.
    func readProperty(forKey key: String) throws -> Property?
}

extension KeyDirectory {
    public func readProperty(forKey key: String) throws -> Property? { nil }
}
