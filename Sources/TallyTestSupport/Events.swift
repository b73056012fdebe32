import Engine

/// Builds small event batches by hand for tests.
public struct EventRow: Sendable {
    public var values: [EventColumn: String?] = [:]
    public var ints: [EventColumn: Int64?] = [:]

    public init(site: String = "example.com", type: String = "page_view", at ms: Int64, visitor: String = "v1",
                session: String = "s1", id: String = "", path: String = "/") {
        values[.siteID] = site
        values[.eventType] = type
        values[.visitorID] = visitor
        values[.sessionID] = session
        values[.eventID] = id
        values[.pagePath] = path
        ints[.occurredAt] = ms
        ints[.receivedAt] = ms
        ints[.eventVersion] = 1
    }
}

extension EventBatch {
    /// A batch of whole events from rows; unset string columns are "" (or null when nullable).
    public static func of(_ rows: [EventRow]) -> EventBatch {
        var b = EventBatch()
        for r in rows {
            for c in EventColumn.allCases {
                if c.kind == .int64 {
                    if let v = r.ints[c], let v { b[int: c].append(v) } else if c.isNullable { b[int: c].appendNull() } else { b[int: c].append(0) }
                } else {
                    if let v = r.values[c], let v { b[string: c].append(v) } else { b[string: c].appendNull() }
                }
            }
            b.endRow()
        }
        return b
    }
}
