/// What the server knows about a request that its body does not say.
public struct IngestOptions: Sendable {
    /// When the server received the request: milliseconds since the epoch, UTC, by the
    /// server's clock. Every event's `received_at` (a client's value is ignored), and the
    /// `occurred_at` of events that carry no time of their own (seed 003: "prefer server time
    /// if `ts` is missing/invalid").
    public var receivedAt: Int64
    /// The `site_id` of events that name none and arrive without an envelope `property_id`
    /// (e.g. the property the write key belongs to). Trusted: not checked against the
    /// column's 128-byte limit.
    public var defaultSiteID: String?
    /// The most events one request may carry; more is a `DocumentError` (`tooManyEvents`).
    /// `decodeLines` rejects lines once the batch holds this many rows.
    public var maxEventsPerBatch: Int

    public init(receivedAt: Int64, defaultSiteID: String? = nil, maxEventsPerBatch: Int = 10_000) {
        self.receivedAt = receivedAt
        self.defaultSiteID = defaultSiteID
        self.maxEventsPerBatch = maxEventsPerBatch
    }
}
