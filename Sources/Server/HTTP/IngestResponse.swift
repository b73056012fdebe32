/// The answer to an ingest request: what was stored, what was refused and why.
struct IngestResponse: Encodable {
    struct Problem: Encodable {
        var index: Int
        var field: String
        var reason: String
    }

    var accepted: Int
    var rejected: Int
    var duplicates: Int
    /// Events from bots, crawlers and monitors: valid, not stored.
    var filtered: Int
    var errors: [Problem]
}
