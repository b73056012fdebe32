/// How many events of a property the server filtered as bots on one UTC day, and why.
public struct FilteredEventCount: Sendable, Hashable {
    public var propertyID: String
    /// `YYYY-MM-DD`, UTC.
    public var day: String
    /// The category of the rule that matched (`crawler`, `headless`, `monitor`, `library`,
    /// `preview`, or `config` for the configuration's `is_bot.always`).
    public var reason: String
    public var events: Int

    public init(propertyID: String, day: String, reason: String, events: Int) {
        self.propertyID = propertyID
        self.day = day
        self.reason = reason
        self.events = events
    }
}
