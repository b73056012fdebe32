import Engine
import Foundation

/// Server-side enrichment of a decoded batch: device, browser and OS from the User-Agent
/// (the event's own, else the request's), country from a trusted proxy header, and bot
/// filtering. The client IP is never stored.
struct Enrichment: Sendable {
    let classifier: UserAgentClassifier
    /// Shared by the requests of one server (Enrichment is made once per handler).
    let cache = UserAgentCache()

    init(bots: BotRules = .builtIn) {
        classifier = UserAgentClassifier(bots: bots)
    }

    struct Outcome {
        var batch: EventBatch
        /// Rows (indices into the input batch) dropped as bots.
        var botRows: [Int]
        /// How many rows each bot reason dropped.
        var botReasons: [String: Int]
        /// Events whose occurred_at lay too far after received_at and was set to it.
        var clamped: Int
    }

    /// How far in the future (client clock ahead of the server's) an occurred_at may lie
    /// before it is taken as wrong and replaced by received_at.
    static let futureTolerance: Int64 = 5 * 60_000

    func apply(to batch: EventBatch, requestUserAgent: String?, country: String?) -> Outcome {
        var keep: [Int32] = []
        var bots: [Int] = []
        let countryValue = Array((country.map { String($0.prefix(2)).uppercased() } ?? "").utf8)
        let requestUA = Array((requestUserAgent ?? "").utf8.prefix(EventColumn.userAgent.maxLength))
        // Each column keeps the decoded one until a row needs a value its event did not carry
        // (`FilledColumn`). Rows of one request usually share a user agent, so a String is made
        // (and the cache asked) only when it changes.
        let ownUA = batch[string: .userAgent]
        var userAgent = FilledColumn(ownUA)
        var device = FilledColumn(batch[string: .deviceType])
        var browser = FilledColumn(batch[string: .browser])
        var os = FilledColumn(batch[string: .os])
        var countryColumn = FilledColumn(batch[string: .countryCode])
        var previousUA: [UInt8]?
        var result = UserAgentClassifier.Result(botReason: nil, device: "", browser: "", os: "")
        var derived = (device: [UInt8](), browser: [UInt8](), os: [UInt8]())
        var reasons: [String: Int] = [:]
        for row in 0..<batch.count {
            ownUA.withValue(row) { own in
                requestUA.withUnsafeBytes { fallback in
                    let ua = own.isEmpty ? fallback : own
                    if let previousUA, previousUA.withUnsafeBytes({ ByteOrder.equal($0, ua) }) {
                        // same user agent as the previous row: same result
                    } else {
                        result = cache.result(for: String(decoding: ua, as: UTF8.self), classify: classifier.classify)
                        derived = (Array(result.device.utf8), Array(result.browser.utf8), Array(result.os.utf8))
                        previousUA = Array(ua)
                    }
                }
            }
            userAgent.fill(row, requestUA)
            if let reason = result.botReason {
                bots.append(row)
                reasons[reason, default: 0] += 1
            } else {
                keep.append(Int32(row))
            }
            device.fill(row, derived.device)
            browser.fill(row, derived.browser)
            os.fill(row, derived.os)
            countryColumn.fill(row, countryValue)
        }
        var out = batch
        stripQueries(&out)
        var clamped = 0
        for row in 0..<out.count {
            let received = out[int: .receivedAt].values[row]
            if out[int: .occurredAt].values[row] > received + Self.futureTolerance {
                out[int: .occurredAt].values[row] = received
                clamped += 1
            }
        }
        out[string: .userAgent] = userAgent.column
        out[string: .deviceType] = device.column
        out[string: .browser] = browser.column
        out[string: .os] = os.column
        out[string: .countryCode] = countryColumn.column
        if !bots.isEmpty { out = out.gather(keep) }
        return Outcome(batch: out, botRows: bots, botReasons: reasons, clamped: clamped)
    }

    /// One of the columns enrichment fills in: each row's value is the event's own, else the
    /// derived one. The decoded column is kept as it is until a row needs a derived value; only
    /// then is a new column made, sized for the rest. (Built row by row from empty for every
    /// request, the five columns grew by doubling: ~200 bytes of heap per buffered event for
    /// ~165 of values, and the user agent, 120 of them, copied each time.)
    struct FilledColumn {
        let own: StringColumn
        private var built = StringColumn()
        private var isBuilt = false

        init(_ own: StringColumn) { self.own = own }

        var column: StringColumn { isBuilt ? built : own }

        mutating func fill(_ row: Int, _ derived: [UInt8]) {
            let start = own.start(row)
            let end = Int(own.ends[row])
            if end > start || derived.isEmpty {
                if isBuilt { built.append(from: own, row: row) }
                return
            }
            if !isBuilt {
                // Exactly: the event's own values, and the derived one for each row from here
                // on that has none.
                var missing = 0
                for r in row..<own.count where Int(own.ends[r]) == own.start(r) { missing += 1 }
                built.reserve(rows: own.count, bytes: own.bytes.count + missing * derived.count)
                built.bytes.append(contentsOf: own.bytes[0..<start])
                built.ends.append(contentsOf: own.ends[0..<row])
                isBuilt = true
            }
            derived.withUnsafeBytes { built.append($0) }
        }
    }

    static let utmColumns: [(String, EventColumn)] = [
        ("utm_source", .utmSource), ("utm_medium", .utmMedium), ("utm_campaign", .utmCampaign),
        ("utm_term", .utmTerm), ("utm_content", .utmContent),
    ]

    /// page_url keeps only its utm_* query parameters (seed 000: no PII in stored URLs), and
    /// utm_* columns the event left empty are taken from them.
    func stripQueries(_ batch: inout EventBatch) {
        let urls = batch[string: .pageURL]
        var needed = false
        for row in 0..<batch.count where urls.withValue(row, { $0.contains(UInt8(ascii: "?")) || $0.contains(UInt8(ascii: "#")) }) {
            needed = true
            break
        }
        guard needed else { return }
        var pageURL = StringColumn()
        pageURL.reserve(rows: batch.count, bytes: urls.bytes.count)
        var utm = Self.utmColumns.map { (_, column) in
            var c = StringColumn(nullable: true)
            c.reserve(rows: batch.count, bytes: batch[string: column].bytes.count)
            return c
        }
        for row in 0..<batch.count {
            let url = urls.string(at: row) ?? ""
            let (stripped, params) = Self.strip(url)
            pageURL.append(stripped)
            for (k, (name, column)) in Self.utmColumns.enumerated() {
                if let own = batch[string: column].string(at: row) {
                    utm[k].append(own)
                } else if let value = params[name], !value.isEmpty, value.utf8.count <= column.maxLength {
                    utm[k].append(value)
                } else {
                    utm[k].appendNull()
                }
            }
        }
        batch[string: .pageURL] = pageURL
        for (k, (_, column)) in Self.utmColumns.enumerated() { batch[string: column] = utm[k] }
    }

    /// The URL without its fragment and without query parameters other than utm_*, and the
    /// utm_* values (percent-decoded).
    static func strip(_ url: String) -> (String, [String: String]) {
        var base = url
        if let hash = base.firstIndex(of: "#") { base = String(base[..<hash]) }
        guard let q = base.firstIndex(of: "?") else { return (base, [:]) }
        let query = base[base.index(after: q)...]
        base = String(base[..<q])
        var kept: [Substring] = []
        var values: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = parts[0].lowercased()
            guard key.hasPrefix("utm_") else { continue }
            kept.append(pair)
            let raw = parts.count > 1 ? String(parts[1]).replacingOccurrences(of: "+", with: " ") : ""
            values[key] = raw.removingPercentEncoding ?? raw
        }
        return (kept.isEmpty ? base : base + "?" + kept.joined(separator: "&"), values)
    }
}
