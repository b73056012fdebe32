/// Why one event of a request was rejected. The request's other events are still stored.
public struct IngestError: Sendable, Equatable, CustomStringConvertible {
    /// The event's position in the request (0-based; for NDJSON, the 0-based line index
    /// offset by `firstIndex`), or -1 for the whole document.
    public var index: Int
    /// The member at fault as the client named it (`event_type`, `context.page.url`, ...);
    /// "" for the event as a whole; "json" for an NDJSON line that is not valid JSON.
    public var field: String
    /// What is wrong with it, for a person: "missing", "longer than 2048 bytes", ...
    public var reason: String

    public init(index: Int, field: String, reason: String) {
        self.index = index
        self.field = field
        self.reason = reason
    }

    public var description: String {
        field.isEmpty ? "event \(index): \(reason)" : "event \(index): \(field): \(reason)"
    }
}
