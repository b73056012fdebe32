/// Where a string member's value is in the input, and in what form.
struct SlotValue {
    enum State: UInt8 {
        /// The member was not sent.
        case absent
        /// The member was JSON null.
        case null
        /// The value's bytes are `start..<end` of the input as they are.
        case plain
        /// The value's bytes are `start..<end` of the input with escapes to turn into UTF-8.
        case escaped
    }

    var start: Int = 0
    var end: Int = 0
    /// UTF-8 length once unescaped.
    var length: Int = 0
    var state: State = .absent

    @inline(__always) var hasValue: Bool { state.rawValue >= State.plain.rawValue }

    @inline(__always) init() {}

    @inline(__always) init(_ token: StringToken) {
        start = token.start
        end = token.end
        length = token.length
        state = token.hasEscapes ? .escaped : .plain
    }

    /// A span of raw bytes stored as they are (`properties`).
    @inline(__always) init(raw start: Int, _ end: Int) {
        self.start = start
        self.end = end
        length = end &- start
        state = .plain
    }
}

/// One event's values while its object is being read. Nothing reaches the batch until the
/// whole object has been read and found valid, so a rejected event leaves no trace.
///
/// The slot storage is allocated once per request and reused for every event.
struct EventDraft {
    private let values: UnsafeMutablePointer<SlotValue>
    /// Each slot's `maxLength`, looked up once per request rather than once per member
    /// (`EventColumn.maxLength` is a call into another module).
    private let limits: UnsafeMutablePointer<Int>
    var eventVersion: Int64 = 1
    /// Milliseconds since the epoch, UTC; nil when the event has no usable time of its own.
    var occurredAt: Int64?
    var mappingID: Int64?
    var postID: Int64?
    /// The first problem found in the event, if any: the event will be rejected with it.
    var rejection: (field: String, reason: String)?

    init() {
        values = .allocate(capacity: DraftSlot.count)
        values.initialize(repeating: SlotValue(), count: DraftSlot.count)
        limits = .allocate(capacity: DraftSlot.count)
        for slot in DraftSlot.allCases { limits[slot.rawValue] = slot.maxLength }
    }

    func deallocate() {
        values.deallocate()
        limits.deallocate()
    }

    /// The longest value `slot` accepts, in UTF-8 bytes.
    @inline(__always) func limit(_ slot: DraftSlot) -> Int { limits[slot.rawValue] }

    @inline(__always) mutating func reset() {
        for i in 0..<DraftSlot.count { values[i].state = .absent }
        eventVersion = 1
        occurredAt = nil
        mappingID = nil
        postID = nil
        rejection = nil
    }

    @inline(__always) subscript(slot: DraftSlot) -> SlotValue {
        get { values[slot.rawValue] }
        nonmutating set { values[slot.rawValue] = newValue }
    }

    /// Marks the event rejected, keeping the first reason given.
    mutating func reject(_ field: String, _ reason: String) {
        if rejection == nil { rejection = (field, reason) }
    }
}
