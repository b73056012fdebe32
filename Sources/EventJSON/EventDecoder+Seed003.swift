import Engine

/// Seed 003's shapes: the envelope (`property_id`, `events`) and an event's nested
/// `context.page`, `context.campaign(.utm)` and `identity` objects.
///
/// An event is read with one table that knows both shapes' members, so a seed-003 event
/// (`type`, `ts`, `context`, `identity`, `data`) and a flat seed-000 event need no separate
/// pass to tell them apart; where both name the same column (`event_type`/`type`,
/// `occurred_at`/`ts`, `properties`/`data`, `page_url`/`context.page.url`) the member read
/// last wins. `ts` differs from `occurred_at` only in that a bad value is ignored (the event
/// takes the server's time) rather than rejected.
extension EventDecoder {
    /// `context`, `context.page`, `context.campaign`, `context.campaign.utm`, `identity`: an
    /// object whose known members fill the draft, or null.
    mutating func readNested(_ field: InputField, table: KeyTable, depth: Int) throws(JSONError) {
        switch scanner.peek() {
        case UInt8(ascii: "{"):
            try readObject(table: table, depth: depth + 1)
        case UInt8(ascii: "n"):
            _ = try scanner.scanLiteral()
        default:
            draft.reject(field.name, "expected an object, got \(scanner.valueKindName())")
            try scanner.skipValue(depth: depth)
        }
    }

    /// The envelope's `events`: an array of event objects. `depth` is the envelope's nesting.
    mutating func readEnvelopeEvents(depth: Int) throws(JSONError) {
        guard scanner.peek() == UInt8(ascii: "[") else {
            // A syntax error in the value says more than its type.
            let at = scanner.pos
            try scanner.skipValue(depth: depth)
            throw JSONError(offset: at, problem: .envelopeField(name: "events", expected: "an array of event objects"))
        }
        isEnvelope = true
        try readEventArray(depth: depth + 1)
    }

    /// The envelope's `property_id`: the `site_id` of events that name none.
    mutating func readPropertyID() throws(JSONError) {
        switch scanner.peek() {
        case UInt8(ascii: "\""):
            let at = scanner.pos
            let token = try scanner.scanString()
            let limit = EventColumn.siteID.maxLength
            guard token.length <= limit else {
                throw JSONError(offset: at, problem: .envelopeField(name: "property_id",
                                                                    expected: "at most \(limit) bytes long"))
            }
            envelopePropertyID = SlotValue(token)
        case UInt8(ascii: "n"):
            _ = try scanner.scanLiteral()
            envelopePropertyID = SlotValue()
        default:
            let at = scanner.pos
            try scanner.skipValue(depth: 1)
            throw JSONError(offset: at, problem: .envelopeField(name: "property_id", expected: "a string"))
        }
    }
}
