import Engine

/// Reads the events of one request body (or one chunk of NDJSON) into an `EventBatch`.
///
/// A value type driven by mutating methods: no class, no locks, no dynamic exclusivity
/// checks on the hot path. Its buffers are allocated once per request and freed by
/// `release()`.
struct EventDecoder {
    var scanner: JSONScanner
    var draft = EventDraft()
    var batch: EventBatch
    /// The new rows, until `closeBatch` moves them into `batch`.
    let columns: ColumnBuffers
    var errors: [IngestError] = []
    var accepted = 0
    var rejected = 0
    /// Events met so far in a document (accepted or rejected): the next event's index.
    var eventsSeen = 0
    /// Rows the batch held before this decoder added any.
    var initialCount: Int
    let receivedAt: Int64
    let maxEvents: Int
    /// Room to unescape a URL (or a timestamp, or a key) before reading parts of it.
    var urlScratch = ScratchBuffer()
    var referrerScratch = ScratchBuffer()

    /// Document mode: the envelope's `property_id` may come after its events, so each
    /// accepted row's `site_id` is kept here and written by `writePendingSiteIDs`.
    let defersSiteIDs: Bool
    var pendingSiteIDs: [SlotValue] = []
    /// Line mode: the `site_id` of rows that name none.
    var defaultSiteID: [UInt8]
    /// Whether the top-level object had `events` (it is an envelope, not one event).
    var isEnvelope = false
    var envelopePropertyID = SlotValue()

    init(bytes base: UnsafePointer<UInt8>, count: Int, options: IngestOptions, batch: EventBatch, defersSiteIDs: Bool) {
        scanner = JSONScanner(base: base, start: 0, end: count)
        self.batch = batch
        initialCount = batch.count
        receivedAt = options.receivedAt
        maxEvents = options.maxEventsPerBatch
        self.defersSiteIDs = defersSiteIDs
        defaultSiteID = Array((options.defaultSiteID ?? "").utf8)
        // Events are rarely under ~200 bytes; the buffers double when there are more rows.
        columns = ColumnBuffers(expectedRows: min(count / 200 + 1, max(options.maxEventsPerBatch, 1)))
    }

    /// Frees the decoder's buffers. Call once, when done with it.
    func release() {
        draft.deallocate()
        columns.deallocate()
        urlScratch.deallocate()
        referrerScratch.deallocate()
    }

    /// Records the rejection of event `index`.
    mutating func reject(_ index: Int, _ field: String, _ reason: String) {
        errors.append(IngestError(index: index, field: field, reason: reason))
        rejected += 1
    }

    /// Passes over a UTF-8 byte order mark at the start of the input (RFC 8259 §8.1 lets a
    /// parser ignore one).
    mutating func skipByteOrderMark() {
        let s = scanner
        if s.end - s.pos >= 3 && s.base[s.pos] == 0xEF && s.base[s.pos + 1] == 0xBB && s.base[s.pos + 2] == 0xBF {
            scanner.pos += 3
        }
    }

    /// Sets the batch's row count once every column holds the new rows.
    mutating func closeBatch() {
        columns.flush(into: &batch)
        batch.setCount(initialCount + accepted)
    }

    /// The bytes of a string value: in the input as they are, or unescaped into `scratch`.
    static func bytes(of v: SlotValue, in base: UnsafePointer<UInt8>, using scratch: inout ScratchBuffer)
        -> UnsafeRawBufferPointer
    {
        if v.state == .plain { return UnsafeRawBufferPointer(start: base + v.start, count: v.length) }
        scratch.reserve(v.length)
        let n = JSONUnescaper.unescape(base, from: v.start, to: v.end, into: scratch.pointer)
        return UnsafeRawBufferPointer(start: scratch.pointer, count: n)
    }
}

/// A growable byte buffer reused across events, for values that must be unescaped before
/// they are read (URLs whose parts are derived, escaped timestamps).
struct ScratchBuffer {
    private(set) var pointer: UnsafeMutablePointer<UInt8>
    private(set) var capacity: Int

    init(capacity: Int = 256) {
        self.capacity = capacity
        pointer = .allocate(capacity: capacity)
    }

    mutating func reserve(_ n: Int) {
        guard n > capacity else { return }
        pointer.deallocate()
        capacity = max(n, capacity * 2)
        pointer = .allocate(capacity: capacity)
    }

    func deallocate() { pointer.deallocate() }
}
