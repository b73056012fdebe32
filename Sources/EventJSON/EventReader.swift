import Engine

/// The ingest JSON reader: request bytes straight into `EventBatch` columns.
///
/// Strict RFC 8259 (escapes, surrogate pairs, UTF-8, numbers, nesting up to 64 levels are all
/// validated), forward compatible (unknown members at any level are passed over), and
/// allocation-free per event: strings without escapes are copied from the request buffer to
/// their column, nothing else is copied.
///
/// An event is a flat seed-000 object (`event_type`, `occurred_at`, `page_url`, ...,
/// `properties`) or a seed-003 one (`type`, `ts`, `context.page`, `context.campaign`,
/// `identity`, `data`). See DESIGN.md ("JSON decoding") for why it is hand-written.
public enum EventReader {
    /// Reads a request body: seed 000's `{"events":[...]}`, seed 003's envelope
    /// `{"schema_version":1,"property_id":"...","sent_at":"...","events":[...]}`, a top-level
    /// array of events, or a single event object.
    ///
    /// Invalid events are rejected one by one (see `DecodeResult.errors`); a body that is not
    /// valid JSON, not one of those shapes, or carries more than
    /// `options.maxEventsPerBatch` events throws, and nothing of it is kept.
    public static func decodeDocument(_ bytes: UnsafeRawBufferPointer, options: IngestOptions) throws(DocumentError)
        -> DecodeResult
    {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count > 0 else {
            throw DocumentError(code: .syntax, offset: 0, message: "empty document")
        }
        var decoder = EventDecoder(bytes: base, count: bytes.count, options: options, batch: EventBatch(),
                                   defersSiteIDs: true)
        defer { decoder.release() }
        do {
            try decoder.readDocument()
        } catch {
            throw DocumentError(error)
        }
        decoder.writePendingSiteIDs()
        decoder.closeBatch()
        var propertyID: String?
        if decoder.envelopePropertyID.hasValue {
            let v = EventDecoder.bytes(of: decoder.envelopePropertyID, in: base, using: &decoder.urlScratch)
            propertyID = String(decoding: v, as: UTF8.self)
        }
        return DecodeResult(batch: decoder.batch, errors: decoder.errors, rejected: decoder.rejected,
                            envelopePropertyID: propertyID)
    }

    /// Reads NDJSON: one event object (flat or seed 003) per line, appended to `batch`.
    /// Blank lines are skipped. A line that is not valid JSON, not an object, not a valid
    /// event, or arrives when `batch` already holds `options.maxEventsPerBatch` rows is
    /// rejected on its own with index `firstIndex +` its 0-based line number; a syntax error's
    /// reason gives the column.
    ///
    /// Events name their own `site_id` or take `options.defaultSiteID` (there is no envelope).
    public static func decodeLines(
        _ bytes: UnsafeRawBufferPointer, firstIndex: Int, options: IngestOptions,
        into batch: inout EventBatch, errors: inout [IngestError]
    ) -> (accepted: Int, rejected: Int) {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count > 0 else {
            return (0, 0)
        }
        var decoder = EventDecoder(bytes: base, count: bytes.count, options: options, batch: EventBatch(columns: []),
                                   defersSiteIDs: false)
        defer { decoder.release() }
        swap(&decoder.batch, &batch)
        swap(&decoder.errors, &errors)
        decoder.initialCount = decoder.batch.count
        decoder.readLines(firstIndex: firstIndex)
        decoder.closeBatch()
        swap(&decoder.batch, &batch)
        swap(&decoder.errors, &errors)
        return (decoder.accepted, decoder.rejected)
    }
}
