import Engine

private let quote = UInt8(ascii: "\"")

/// Reading an event object's members into the draft: a wrong type or an over-long value
/// marks the event rejected (naming the member) and reading goes on, so the next event can
/// be found; a syntax error throws.
extension EventDecoder {
    /// Reads the object at `pos` member by member. `depth` is the object's own nesting.
    mutating func readObject(table: KeyTable, depth: Int) throws(JSONError) {
        guard try scanner.openObject(depth: depth) else { return }
        repeat {
            let key = try scanner.readKey()
            if let field = table.lookup(key, in: scanner.base, end: scanner.end) {
                try readMember(field, depth: depth)
            } else {
                try scanner.skipValue(depth: depth)
            }
        } while try scanner.nextMember()
    }

    /// Reads the value of a known member of an object nested `depth` deep.
    mutating func readMember(_ field: InputField, depth: Int) throws(JSONError) {
        switch field {
        case .eventVersion: try readEventVersion(depth: depth)
        case .occurredAt: try readTime(field, strict: true, depth: depth)
        case .ts: try readTime(field, strict: false, depth: depth)
        case .receivedAt, .schemaVersion, .sentAt: try scanner.skipValue(depth: depth)
        case .properties, .data: try readProperties(field, depth: depth)
        case .context: try readNested(field, table: .context, depth: depth)
        case .contextPage: try readNested(field, table: .page, depth: depth)
        case .contextCampaign: try readNested(field, table: .campaign, depth: depth)
        case .contextCampaignUTM: try readNested(field, table: .utm, depth: depth)
        case .identity: try readNested(field, table: .identity, depth: depth)
        case .events: try readEnvelopeEvents(depth: depth)
        case .propertyID: try readPropertyID()
        default:
            if let slot = field.slot {
                try readString(field, into: slot, depth: depth)
            } else {
                try scanner.skipValue(depth: depth)
            }
        }
    }

    /// A string member: its span goes to `slot`; null leaves the column null (or "").
    @inline(__always)
    mutating func readString(_ field: InputField, into slot: DraftSlot, depth: Int) throws(JSONError) {
        let b = scanner.peek()
        if b == quote {
            let token = try scanner.scanString()
            let limit = draft.limit(slot)
            if token.length > limit {
                draft.reject(field.name, "longer than \(limit) bytes")
            } else {
                draft[slot] = SlotValue(token)
            }
        } else if b == UInt8(ascii: "n") {
            _ = try scanner.scanLiteral()
            var null = SlotValue()
            null.state = .null
            draft[slot] = null
        } else {
            draft.reject(field.name, "expected a string, got \(scanner.valueKindName())")
            try scanner.skipValue(depth: depth)
        }
    }

    /// `event_version`: an integer 0...255; null or absent is 1.
    mutating func readEventVersion(depth: Int) throws(JSONError) {
        let b = scanner.peek()
        if b == UInt8(ascii: "-") || scanner.isDigit(b) {
            let n = try scanner.scanNumber()
            if n.isInteger && n.value >= 0 && n.value <= 255 {
                draft.eventVersion = n.value
            } else {
                draft.reject(InputField.eventVersion.name, "expected an integer from 0 to 255")
            }
        } else if b == UInt8(ascii: "n") {
            _ = try scanner.scanLiteral()
            draft.eventVersion = 1
        } else {
            draft.reject(InputField.eventVersion.name,
                         "expected an integer from 0 to 255, got \(scanner.valueKindName())")
            try scanner.skipValue(depth: depth)
        }
    }

    /// `occurred_at` (strict: a bad value rejects the event) or seed 003's `ts` (lenient: a bad
    /// value leaves the event to take the server's time). Null or absent: the server's time.
    mutating func readTime(_ field: InputField, strict: Bool, depth: Int) throws(JSONError) {
        let b = scanner.peek()
        if b == quote {
            let token = try scanner.scanString()
            do throws(Timestamp.Problem) {
                if token.hasEscapes {
                    urlScratch.reserve(token.length)
                    let n = JSONUnescaper.unescape(scanner.base, from: token.start, to: token.end,
                                                   into: urlScratch.pointer)
                    draft.occurredAt = try Timestamp.parse(urlScratch.pointer, count: n)
                } else {
                    draft.occurredAt = try Timestamp.parse(scanner.base + token.start, count: token.length)
                }
            } catch {
                if strict { draft.reject(field.name, error.reason) }
            }
        } else if b == UInt8(ascii: "-") || scanner.isDigit(b) {
            let n = try scanner.scanNumber()
            guard n.isInteger else {
                if strict { draft.reject(field.name, "expected epoch milliseconds as an integer") }
                return
            }
            do throws(Timestamp.Problem) {
                draft.occurredAt = try Timestamp.epochMillis(n.value)
            } catch {
                if strict { draft.reject(field.name, error.reason) }
            }
        } else if b == UInt8(ascii: "n") {
            _ = try scanner.scanLiteral()
            if strict { draft.occurredAt = nil }
        } else {
            if strict {
                draft.reject(field.name,
                             "expected an ISO-8601 string or epoch milliseconds, got \(scanner.valueKindName())")
            }
            try scanner.skipValue(depth: depth)
        }
    }

    /// `properties` (or seed 003's `data`): an object, stored as its exact source text, whose
    /// `mapping_id` and `post_id` (integers) and `device_slug` (a string) are also copied to
    /// their own columns. Null or absent is stored as `{}`.
    mutating func readProperties(_ field: InputField, depth: Int) throws(JSONError) {
        let b = scanner.peek()
        draft.mappingID = nil
        draft.postID = nil
        draft[.propDeviceSlug] = SlotValue()
        if b == UInt8(ascii: "{") {
            let start = scanner.pos
            let inner = depth + 1
            if try scanner.openObject(depth: inner) {
                repeat {
                    let key = try scanner.readKey()
                    switch KeyTable.properties.lookup(key, in: scanner.base, end: scanner.end) {
                    case .mappingID?: draft.mappingID = try readExtractedInteger(depth: inner)
                    case .postID?: draft.postID = try readExtractedInteger(depth: inner)
                    case .deviceSlug?: try readDeviceSlug(field, depth: inner)
                    default: try scanner.skipValue(depth: inner)
                    }
                } while try scanner.nextMember()
            }
            let limit = EventColumn.properties.maxLength
            if scanner.pos - start > limit {
                draft.reject(field.name, "longer than \(limit) bytes")
            } else {
                draft[.properties] = SlotValue(raw: start, scanner.pos)
            }
        } else if b == UInt8(ascii: "n") {
            _ = try scanner.scanLiteral()
            draft[.properties] = SlotValue()
        } else {
            draft.reject(field.name, "expected an object, got \(scanner.valueKindName())")
            try scanner.skipValue(depth: depth)
        }
    }

    /// `properties.mapping_id` / `post_id`: the value when it is an integer that fits in
    /// Int64, else nil (any other value is kept in `properties` only).
    private mutating func readExtractedInteger(depth: Int) throws(JSONError) -> Int64? {
        let b = scanner.peek()
        if b == UInt8(ascii: "-") || scanner.isDigit(b) {
            let n = try scanner.scanNumber()
            return n.isInteger ? n.value : nil
        }
        try scanner.skipValue(depth: depth)
        return nil
    }

    /// `properties.device_slug`: the string, or null for any other value. Longer than the
    /// column allows rejects the event, as for any other column.
    private mutating func readDeviceSlug(_ parent: InputField, depth: Int) throws(JSONError) {
        guard scanner.peek() == quote else {
            try scanner.skipValue(depth: depth)
            draft[.propDeviceSlug] = SlotValue()
            return
        }
        let token = try scanner.scanString()
        let limit = EventColumn.propDeviceSlug.maxLength
        if token.length > limit {
            draft.reject(parent.name + ".device_slug", "longer than \(limit) bytes")
        } else {
            draft[.propDeviceSlug] = SlotValue(token)
        }
    }
}
