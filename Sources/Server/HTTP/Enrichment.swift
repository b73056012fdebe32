import Engine

/// Server-side enrichment of a decoded batch: device, browser and OS from the User-Agent
/// (the event's own, else the request's), country from a trusted proxy header, and bot
/// filtering. The client IP is never stored.
struct Enrichment: Sendable {
    let classifier = UserAgentClassifier()

    struct Outcome {
        var batch: EventBatch
        /// Rows (indices into the input batch) dropped as bots.
        var botRows: [Int]
    }

    func apply(to batch: EventBatch, requestUserAgent: String?, country: String?) -> Outcome {
        var userAgent = StringColumn()
        var device = StringColumn()
        var browser = StringColumn()
        var os = StringColumn()
        var countryColumn = StringColumn()
        var cache: [String: UserAgentClassifier.Result] = [:]
        var keep: [Int32] = []
        var bots: [Int] = []
        let countryValue = country.map { String($0.prefix(2)).uppercased() }
        for row in 0..<batch.count {
            var ua = batch[string: .userAgent].string(at: row) ?? ""
            if ua.isEmpty, let requestUserAgent { ua = String(decoding: requestUserAgent.utf8.prefix(EventColumn.userAgent.maxLength), as: UTF8.self) }
            let result: UserAgentClassifier.Result
            if let cached = cache[ua] { result = cached } else {
                result = classifier.classify(ua)
                cache[ua] = result
            }
            if result.isBot { bots.append(row) } else { keep.append(Int32(row)) }
            userAgent.append(ua)
            func fill(_ c: EventColumn, _ derived: String, into column: inout StringColumn) {
                let own = batch[string: c].string(at: row) ?? ""
                column.append(own.isEmpty ? derived : own)
            }
            fill(.deviceType, result.device, into: &device)
            fill(.browser, result.browser, into: &browser)
            fill(.os, result.os, into: &os)
            fill(.countryCode, countryValue ?? "", into: &countryColumn)
        }
        var out = batch
        out[string: .userAgent] = userAgent
        out[string: .deviceType] = device
        out[string: .browser] = browser
        out[string: .os] = os
        out[string: .countryCode] = countryColumn
        if !bots.isEmpty { out = out.gather(keep) }
        return Outcome(batch: out, botRows: bots)
    }
}
