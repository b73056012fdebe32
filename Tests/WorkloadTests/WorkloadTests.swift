import Engine
import Foundation
import Testing

@testable import Workload

// MARK: Helpers

private func ndjson(_ config: WorkloadConfig, chunk: Int = 1000) -> [UInt8] {
    var g = WorkloadGenerator(config)
    var out: [UInt8] = []
    while g.nextNDJSON(chunk, into: &out) > 0 {}
    return out
}

private func lines(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
    bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).dropLast().map { $0 }
}

private func objects(_ bytes: [UInt8]) throws -> [[String: Any]] {
    try lines(bytes).map { line in
        let o = try JSONSerialization.jsonObject(with: Data(line))
        return try #require(o as? [String: Any])
    }
}

private func batch(_ config: WorkloadConfig, chunk: Int = 1000) -> EventBatch {
    var g = WorkloadGenerator(config)
    var b = EventBatch()
    while g.nextEvents(chunk, into: &b) > 0 {}
    return b
}

nonisolated(unsafe) private let isoFormatter: ISO8601DateFormatter = {  // thread-safe in Foundation
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return f
}()

private func millis(_ iso: String) -> Int64? {
    isoFormatter.date(from: iso).map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) }
}

/// The 48-bit ms time of a ULID.
private func ulidTime(_ s: String) -> Int64? {
    let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
    guard s.count == 26 else { return nil }
    var t: Int64 = 0
    for ch in s.prefix(10) {
        guard let v = alphabet.firstIndex(of: ch) else { return nil }
        t = t << 5 | Int64(v)
    }
    for ch in s.dropFirst(10) where !alphabet.contains(ch) { return nil }
    return t
}

private func share(_ part: Int, _ whole: Int) -> Double { Double(part) / Double(max(whole, 1)) }

// MARK: Determinism

@Suite("Workload generator")
struct WorkloadTests {
    @Test("The same seed produces the same bytes, whatever the chunk size")
    func sameSeedSameBytes() {
        let config = WorkloadConfig(seed: 42, events: 4000)
        let a = ndjson(config, chunk: 1000)
        let b = ndjson(config, chunk: 1000)
        let c = ndjson(config, chunk: 7)
        let d = ndjson(config, chunk: 100_000)
        #expect(!a.isEmpty)
        #expect(a == b)
        #expect(a == c)
        #expect(a == d)
        #expect(batch(config, chunk: 3) == batch(config, chunk: 5000))
    }

    @Test("Seed 42 still produces the bytes it always did (golden checksum)")
    func golden() {
        // FNV-1a over the NDJSON of WorkloadConfig(seed: 42, events: 2000). The generator uses no
        // platform math, so this holds on every platform. A deliberate change to the model
        // changes it: update the constants and say so in the commit (old data sets differ).
        let bytes = ndjson(WorkloadConfig(seed: 42, events: 2000))
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        #expect(bytes.count == 1_494_623)
        #expect(h == 0xdd97_b91a_24ba_2413)
    }

    @Test("A different seed produces different events")
    func differentSeedDifferentBytes() throws {
        let a = ndjson(WorkloadConfig(seed: 1, events: 2000))
        let b = ndjson(WorkloadConfig(seed: 2, events: 2000))
        #expect(a != b)
        let ida = Set(try objects(a).map { $0["event_id"] as! String })
        let idb = Set(try objects(b).map { $0["event_id"] as! String })
        #expect(ida.isDisjoint(with: idb))
    }

    @Test("Exactly the requested number of events comes out, then nothing")
    func exactCount() {
        for n in [0, 1, 2, 17, 3000] {
            var g = WorkloadGenerator(WorkloadConfig(seed: 9, events: n, sites: 3, days: 2))
            var out: [UInt8] = []
            var total = 0
            while true {
                let k = g.nextNDJSON(64, into: &out)
                if k == 0 { break }
                total += k
            }
            #expect(total == n)
            #expect(g.isFinished)
            #expect(g.nextNDJSON(10, into: &out) == 0)
            #expect(out.filter { $0 == UInt8(ascii: "\n") }.count == n)
        }
    }

    @Test("Any number of sites gets unique site ids and domains")
    func manySites() throws {
        for sites in [1, 2, 21, 64] {
            var g = WorkloadGenerator(WorkloadConfig(seed: 4, events: 300, sites: sites, days: 1))
            #expect(Set(g.siteIDs).count == sites)
            let domains = Set(g.catalog.sites.map { g.catalog.string($0.domain) })
            #expect(domains.count == sites)
            var out: [UInt8] = []
            #expect(g.nextNDJSON(1000, into: &out) == 300)
            for o in try objects(out) { #expect(g.siteIDs.contains(o["site_id"] as! String)) }
        }
    }

    // MARK: NDJSON and columns agree

    @Test("NDJSON lines and EventBatch rows describe the same events, field by field")
    func ndjsonMatchesBatch() throws {
        let config = WorkloadConfig(seed: 7, events: 6000, sites: 8, days: 30, duplicateRate: 0.05)
        let text = ndjson(config)
        let raw = lines(text)
        let objs = try objects(text)
        let b = batch(config)
        #expect(objs.count == b.count)
        #expect(b.count > config.events)  // duplicates on top

        func s(_ c: EventColumn, _ i: Int) -> String? { b[string: c].string(at: i) }
        func n(_ c: EventColumn, _ i: Int) -> Int64? { b[int: c].value(at: i) }

        let required: [(String, EventColumn)] = [
            ("event_id", .eventID), ("event_type", .eventType), ("source", .source), ("site_id", .siteID),
            ("session_id", .sessionID), ("visitor_id", .visitorID), ("page_url", .pageURL), ("page_path", .pagePath),
            ("referrer_domain", .referrerDomain), ("user_agent", .userAgent), ("device_type", .deviceType),
            ("country_code", .countryCode), ("region", .region),
        ]
        let optional: [(String, EventColumn)] = [
            ("page_title", .pageTitle), ("campaign_id", .campaignID), ("utm_source", .utmSource),
            ("utm_medium", .utmMedium), ("utm_campaign", .utmCampaign),
        ]
        var previousReceived: Int64 = .min
        for (i, o) in objs.enumerated() {
            for (key, column) in required {
                #expect(o[key] as? String == s(column, i), "row \(i) \(key)")
            }
            for (key, column) in optional {
                #expect(o[key] as? String == s(column, i), "row \(i) \(key)")
            }
            // browser/os are non-nullable columns: "" when the line has none.
            #expect((o["browser"] as? String ?? "") == s(.browser, i))
            #expect((o["os"] as? String ?? "") == s(.os, i))
            #expect(
                b[string: .utmTerm].isNull(i) && b[string: .utmContent].isNull(i) && b[string: .userIDHash].isNull(i))
            #expect((o["event_version"] as? Int).map(Int64.init) == n(.eventVersion, i))
            let occurred = try #require(n(.occurredAt, i))
            #expect(millis(try #require(o["occurred_at"] as? String)) == occurred, "row \(i) occurred_at")
            let received = try #require(n(.receivedAt, i))
            #expect(received >= occurred && received - occurred < 120_000)
            #expect(received >= previousReceived)  // rows come in arrival order
            previousReceived = received
            #expect(ulidTime(o["event_id"] as! String) == occurred)
            #expect(ulidTime(o["session_id"] as! String) != nil && ulidTime(o["visitor_id"] as! String) != nil)

            // properties: the column holds exactly the object's text in the line.
            let props = try #require(s(.properties, i))
            let line = String(decoding: raw[i], as: UTF8.self)
            let written = "\"properties\":" + props
            #expect(line.contains(written + ",\"") || line.hasSuffix(written + "}"), "row \(i) properties text")
            let p = try #require(o["properties"] as? [String: Any])
            let fromColumn = try #require(
                try JSONSerialization.jsonObject(with: Data(props.utf8)) as? [String: Any])
            #expect(NSDictionary(dictionary: p).isEqual(to: fromColumn))
            #expect((p["mapping_id"] as? Int).map(Int64.init) == n(.propMappingID, i), "row \(i) prop_mapping_id")
            #expect((p["post_id"] as? Int).map(Int64.init) == n(.propPostID, i), "row \(i) prop_post_id")
            #expect(p["device_slug"] as? String == s(.propDeviceSlug, i), "row \(i) prop_device_slug")
            let url = o["page_url"] as! String
            #expect(url.hasPrefix("https://") && url.hasSuffix(o["page_path"] as! String))
        }
    }

    @Test("Widget and device events carry the properties seed 000 describes")
    func propertiesShape() throws {
        let objs = try objects(ndjson(WorkloadConfig(seed: 3, events: 8000)))
        var seen = Set<String>()
        for o in objs {
            let type = o["event_type"] as! String
            let p = o["properties"] as! [String: Any]
            seen.insert(type)
            switch type {
            case "widget_impression":
                #expect(Set(p.keys) == ["mapping_id", "post_id", "widget_index", "device_slug", "viewport_percent"])
                let v = p["viewport_percent"] as! Int
                #expect(v >= 50 && v <= 100)
                #expect(p["widget_index"] as! Int >= 0)
            case "widget_click":
                #expect(Set(p.keys) == ["mapping_id", "post_id", "device_slug", "click_target", "destination_url"])
                #expect(["buy_button", "specs_link", "price_link"].contains(p["click_target"] as! String))
                #expect((p["destination_url"] as! String).hasPrefix("https://"))
            case "device_page_view":
                let keys = Set(p.keys)
                #expect(keys.isSuperset(of: ["device_id", "device_slug", "brand", "view_source"]))
                let source = p["view_source"] as! String
                #expect(["widget_click", "direct", "search"].contains(source))
                #expect(keys.contains("referrer_mapping_id") == (source == "widget_click"))
                #expect(o["page_path"] as! String == "/devices/" + (p["device_slug"] as! String))
            case "page_view":
                #expect(p.isEmpty)
                #expect(o["page_title"] is String)
            default:
                break
            }
            if o["utm_source"] != nil {
                #expect(type == "page_view" && o["campaign_id"] is String && o["utm_medium"] is String)
            }
        }
        #expect(seen.isSuperset(of: ["page_view", "widget_impression", "widget_click", "device_page_view"]))
        #expect(seen.count >= 6)  // and some custom event types
    }

    @Test("Catalogue strings that need JSON escaping are written escaped and parse back")
    func escaping() throws {
        let catalog = Catalog(seed: 42, siteCount: 20, spanStart: 0, spanEnd: 86_400_000)
        var escapedSeen = 0
        var all: [JStr] = catalog.searchQueries + catalog.referrers
        for site in catalog.sites { all += site.pages.flatMap { [$0.title, $0.path] } }
        all += catalog.uas.map(\.ua)
        for j in all {
            let raw = catalog.string(j)
            let esc = String(
                decoding: UnsafeBufferPointer(start: catalog.ptr(j.esc), count: Int(j.esc.len)), as: UTF8.self)
            if esc != raw { escapedSeen += 1 }
            let parsed = try JSONSerialization.jsonObject(with: Data("[\"\(esc)\"]".utf8)) as! [String]
            #expect(parsed == [raw])
        }
        #expect(escapedSeen >= 4)  // quotes in titles and queries, a backslash, a tab
    }

    @Test("A projected batch gets only its columns")
    func projection() {
        var g = WorkloadGenerator(WorkloadConfig(seed: 5, events: 500))
        var b = EventBatch(columns: [.eventID, .occurredAt, .propPostID])
        #expect(g.nextEvents(500, into: &b) == 500)
        #expect(b.count == 500)
        #expect(
            b[string: .eventID].count == 500 && b[int: .occurredAt].count == 500 && b[int: .propPostID].count == 500)
        #expect(b[string: .pageURL].count == 0 && b[string: .properties].count == 0)
    }

    // MARK: Distributions

    @Test("Traffic looks like web analytics: skewed sites, multi-event sessions, the span, event mix")
    func distributions() throws {
        let config = WorkloadConfig(seed: 42, events: 40_000, sites: 20, days: 92)
        let objs = try objects(ndjson(config))
        #expect(objs.count == 40_000)

        var sites: [String: Int] = [:]
        var types: [String: Int] = [:]
        var sessions: [String: Int] = [:]
        var sessionVisitor: [String: String] = [:]
        var sessionReferrer: [String: String] = [:]
        var sources: [String: Int] = [:]
        var times: [Int64] = []
        for o in objs {
            sites[o["site_id"] as! String, default: 0] += 1
            types[o["event_type"] as! String, default: 0] += 1
            sources[o["source"] as! String, default: 0] += 1
            let sid = o["session_id"] as! String
            sessions[sid, default: 0] += 1
            sessionVisitor[sid] = (o["visitor_id"] as! String)
            sessionReferrer[sid] = (o["referrer_domain"] as! String)
            times.append(ulidTime(o["event_id"] as! String)!)
        }
        let n = objs.count

        // Sites: Zipf-skewed.
        #expect(sites.count == 20)
        let counts = sites.values.sorted()
        #expect(counts.last! > 4 * counts[counts.count / 2])
        #expect(share(counts.last!, n) > 0.2 && share(counts.last!, n) < 0.45)

        // Sessions of several events; returning visitors.
        let sizes = Array(sessions.values)
        let mean = share(n, sizes.count)
        #expect(mean > 3 && mean < 8)
        #expect(share(sizes.filter { $0 > 1 }.count, sizes.count) > 0.6)
        #expect(share(sizes.filter { $0 <= 10 }.count, sizes.count) > 0.8)
        let visitors = Set(sessionVisitor.values).count
        #expect(share(sessions.count, visitors) > 1.5)

        // Referrers: about 40 % of sessions direct.
        let direct = share(sessionReferrer.values.filter(\.isEmpty).count, sessionReferrer.count)
        #expect(direct > 0.3 && direct < 0.5)

        // Time span respected, roughly ordered.
        #expect(times.allSatisfy { $0 >= config.start && $0 < config.end })
        #expect(times.min()! - config.start < 86_400_000 && config.end - times.max()! < 86_400_000)
        var runningMax = Int64.min
        var maxBack: Int64 = 0
        var decreasing = 0
        for (i, t) in times.enumerated() {
            if i > 0 && t < times[i - 1] { decreasing += 1 }
            runningMax = max(runningMax, t)
            maxBack = max(maxBack, runningMax - t)
        }
        #expect(maxBack < 60_000)
        #expect(share(decreasing, n) < 0.3)
        // Diurnal shape: the busiest hour of day has well over the quietest.
        var hours = [Int](repeating: 0, count: 24)
        for t in times { hours[Int((t / 3_600_000) % 24)] += 1 }
        #expect(hours.max()! > 3 * hours.min()!)

        // Event mix near the targets (wide tolerances).
        #expect(abs(share(types["page_view"] ?? 0, n) - 0.45) < 0.06)
        #expect(abs(share(types["widget_impression"] ?? 0, n) - 0.40) < 0.06)
        #expect(abs(share(types["widget_click"] ?? 0, n) - 0.04) < 0.02)
        #expect(abs(share(types["device_page_view"] ?? 0, n) - 0.08) < 0.04)
        let custom =
            n - (types["page_view"] ?? 0) - (types["widget_impression"] ?? 0) - (types["widget_click"] ?? 0)
            - (types["device_page_view"] ?? 0)
        #expect(share(custom, n) > 0.01 && share(custom, n) < 0.06)

        // Sources.
        #expect(abs(share(sources["wordpress"] ?? 0, n) - 0.85) < 0.06)
        #expect((sources["mobile_app"] ?? 0) > 0 && (sources["api"] ?? 0) > 0)
    }

    @Test("Visitors keep their device, browser, OS and country across sessions")
    func consistentVisitors() throws {
        let objs = try objects(ndjson(WorkloadConfig(seed: 11, events: 10_000, sites: 5)))
        var profile: [String: String] = [:]
        for o in objs {
            let key = "\(o["site_id"]!)|\(o["visitor_id"]!)"
            let p =
                "\(o["user_agent"]!)|\(o["device_type"]!)|\(o["browser"] ?? "")|\(o["os"] ?? "")|\(o["country_code"]!)|\(o["region"]!)|\(o["source"]!)"
            if let old = profile[key] { #expect(old == p) } else { profile[key] = p }
        }
    }

    @Test("Sessions rotate after 30 minutes of inactivity")
    func sessionRotation() throws {
        let objs = try objects(ndjson(WorkloadConfig(seed: 12, events: 30_000, sites: 3, days: 7)))
        var times: [String: [Int64]] = [:]
        var visitorOf: [String: String] = [:]
        for o in objs {
            let sid = o["session_id"] as! String
            times[sid, default: []].append(ulidTime(o["event_id"] as! String)!)
            visitorOf[sid] = "\(o["site_id"]!)|\(o["visitor_id"]!)"
        }
        var spans: [String: [(Int64, Int64)]] = [:]
        for (sid, ts) in times {
            let sorted = ts.sorted()
            for (a, b) in zip(sorted, sorted.dropFirst()) { #expect(b - a < 30 * 60_000) }
            #expect(ulidTime(sid) == sorted.first)  // the session id carries the session start
            spans[visitorOf[sid]!, default: []].append((sorted.first!, sorted.last!))
        }
        var returning = 0
        for (_, list) in spans where list.count > 1 {
            returning += 1
            let sorted = list.sorted { $0.0 < $1.0 }
            for (a, b) in zip(sorted, sorted.dropFirst()) { #expect(b.0 - a.1 >= 30 * 60_000) }
        }
        #expect(returning > 100)
    }

    @Test("Duplicates repeat earlier events byte for byte, later")
    func duplicates() throws {
        let config = WorkloadConfig(seed: 21, events: 5000, duplicateRate: 0.1)
        var g = WorkloadGenerator(config)
        var out: [UInt8] = []
        while g.nextNDJSON(500, into: &out) > 0 {}
        let ls = lines(out)
        #expect(ls.count == g.rowsEmitted)
        #expect(ls.count == config.events + g.duplicatesEmitted)
        #expect(g.duplicatesEmitted > 350 && g.duplicatesEmitted < 650)
        var first: [String: ArraySlice<UInt8>] = [:]
        for l in ls {
            let id = String(decoding: l.dropFirst(13).prefix(26), as: UTF8.self)  // {"event_id":"<26>"
            if let f = first[id] { #expect(f == l) } else { first[id] = l }
        }
        #expect(first.count == config.events)

        // The distinct events are the same as without duplicates.
        let plain = Set(lines(ndjson(WorkloadConfig(seed: 21, events: 5000))).map { Array($0) })
        #expect(Set(first.values.map { Array($0) }) == plain)
    }

    @Test("The span follows --days and --end")
    func span() throws {
        let end = try #require(Civil.parse("2025-03-10T12:00:00Z"))
        let config = WorkloadConfig(seed: 1, events: 3000, sites: 4, days: 3, end: end)
        for o in try objects(ndjson(config)) {
            let t = try #require(millis(o["occurred_at"] as! String))
            #expect(t >= end - 3 * 86_400_000 && t < end)
        }
    }

    @Test("ISO-8601 formatting and parsing round-trip")
    func civil() {
        #expect(Civil.format(WorkloadConfig.defaultEnd) == "2026-11-01T00:00:00.000Z")
        #expect(Civil.parse("2026-11-01T00:00:00Z") == WorkloadConfig.defaultEnd)
        #expect(Civil.parse("2026-11-01") == WorkloadConfig.defaultEnd)
        #expect(Civil.parse("2026-11-01T03:00:00+03:00") == WorkloadConfig.defaultEnd)
        #expect(Civil.parse("2026-10-31T23:59:59.999Z") == WorkloadConfig.defaultEnd - 1)
        #expect(Civil.parse("2026-13-01") == nil)
        #expect(Civil.parse("yesterday") == nil)
        for ms: Int64 in [0, 951_782_400_123, 1_709_210_096_789, 4_102_444_799_999] {
            #expect(Civil.parse(Civil.format(ms)) == ms)
            #expect(millis(Civil.format(ms)) == ms)
        }
    }

    @Test("The deterministic math matches the platform's within 1e-12")
    func detMath() {
        for x in [1e-300, 1e-9, 0.001, 0.5, 0.9999, 1, 1.5, 2, 10, 12345.678, 1e300] {
            #expect(abs(DetMath.log(x) - Foundation.log(x)) <= 1e-12 * max(1, abs(Foundation.log(x))))
        }
        for x in [-700.0, -20, -1, -1e-9, 0, 1e-9, 0.3, 1, 2.5, 20, 700] {
            #expect(abs(DetMath.exp(x) - Foundation.exp(x)) <= 1e-12 * Foundation.exp(x))
        }
        #expect(abs(QuantileTable.normalQuantile(0.975) - 1.959963985) < 1e-6)
    }
}
