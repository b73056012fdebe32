import Engine

/// What `EventReader.decodeDocument` made of a request body.
public struct DecodeResult: Sendable {
    /// The accepted events, one row each (`accepted` is `batch.count`). Events without an
    /// `event_id` have "" there: the engine assigns one.
    public var batch: EventBatch
    /// One entry per rejected event, in request order.
    public var errors: [IngestError]
    /// The number of rejected events (`errors.count`).
    public var rejected: Int
    /// The envelope's `property_id` (seed 003), when the body had one. The server checks it
    /// against the write key's property.
    public var envelopePropertyID: String?

    public var accepted: Int { batch.count }
}
