/// What the store knows about an API key: never the key itself, which is shown once at creation.
public struct APIKey: Sendable, Hashable {
    /// What a key may do. Its text starts with `tw_` (write) or `tr_` (read).
    public enum Kind: String, Sendable, CaseIterable {
        /// Posts events for its property.
        case write
        /// Reads reports of its property.
        case read

        var tag: String {
            switch self {
            case .write: "tw_"
            case .read: "tr_"
            }
        }
    }

    /// `key_` and 16 base62 characters; names the key in listings and `tally key revoke`.
    public var id: String
    public var propertyID: String
    public var kind: Kind
    /// The key's first 8 characters (`tw_AbCdE`), enough to recognise it in a listing.
    public var prefix: String
    /// Milliseconds since the Unix epoch.
    public var createdAt: Int64
    public var revokedAt: Int64?

    public var isRevoked: Bool { revokedAt != nil }

    public init(id: String, propertyID: String, kind: Kind, prefix: String, createdAt: Int64, revokedAt: Int64?) {
        self.id = id
        self.propertyID = propertyID
        self.kind = kind
        self.prefix = prefix
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }
}
