import Engine
import EventJSON
import Foundation
import Testing

/// The reader against Foundation's `JSONSerialization` on seeded random documents: random key
/// order, whitespace, escapes (short, \u, surrogate pairs), Unicode from every UTF-8 length,
/// numbers of every form, and unknown members nested at random.
@Suite("Agreement with JSONSerialization")
struct FoundationComparisonTests {
    static let documentCount = 3000

    @Test("whenever JSONSerialization accepts a random document, the reader stores the same strings")
    func validDocumentsAgree() throws {
        var g = RandomJSON(seed: 0x7A11_E5EE_D000_0001)
        var accepted = 0
        for n in 0..<FoundationComparisonTests.documentCount {
            let doc = g.document()
            let parsed = try? JSONSerialization.jsonObject(with: Data(doc.bytes))
            guard let parsed else {
                Issue.record("JSONSerialization refused generated document \(n): \(String(decoding: doc.bytes, as: UTF8.self))")
                continue
            }
            let events = (parsed as? [String: Any])?["events"] as? [Any] ?? []
            #expect(events.count == doc.events.count)
            let r: DecodeResult
            do {
                r = try decode(bytes: doc.bytes)
            } catch {
                Issue.record("document \(n): \(error)\n\(String(decoding: doc.bytes, as: UTF8.self))")
                continue
            }
            #expect(r.errors == [], "document \(n)")
            #expect(r.batch.count == doc.events.count)
            guard r.batch.count == doc.events.count else { continue }
            for (i, event) in doc.events.enumerated() {
                let oracle = events[i] as? [String: Any] ?? [:]
                for (column, path) in event.strings {
                    let expected = FoundationComparisonTests.value(at: path, in: oracle)
                    let got = r.batch.string(column, i)
                    switch expected {
                    case let s as String: #expect(got == s, "document \(n) event \(i) \(column.name)")
                    case is NSNull where column == .siteID || column == .pagePath:
                        break  // null takes the default site, or the path derived from the URL
                    case is NSNull: #expect(got == (column.isNullable ? nil : ""), "document \(n) \(column.name)")
                    default: Issue.record("document \(n): no value at \(path)")
                    }
                }
                #expect(r.batch.string(.properties, i) == event.propertiesText, "document \(n) event \(i)")
                #expect(r.batch.int(.propPostID, i) == event.postID, "document \(n) event \(i)")
                if let postID = event.postID {
                    let oracleProps = FoundationComparisonTests.value(at: [event.propertiesKey], in: oracle) as? [String: Any]
                    #expect((oracleProps?["post_id"] as? NSNumber)?.int64Value == postID)
                }
            }
            accepted += 1
        }
        #expect(accepted == FoundationComparisonTests.documentCount)
    }

    @Test("documents broken in ways both parsers must refuse are refused by both")
    func invalidDocumentsAgree() throws {
        var g = RandomJSON(seed: 0xBAD0_5EED)
        var checked = 0
        for n in 0..<FoundationComparisonTests.documentCount / 2 {
            let (bytes, how) = g.brokenDocument()
            let foundation = (try? JSONSerialization.jsonObject(with: Data(bytes))) != nil
            #expect(!foundation, "JSONSerialization accepted document \(n) (\(how))")
            let reader: Bool
            do {
                _ = try decode(bytes: bytes)
                reader = true
            } catch {
                reader = false
                #expect(error.code == .syntax, "document \(n) (\(how)): \(error)")
            }
            #expect(!reader, "the reader accepted document \(n) (\(how)):\n\(String(decoding: bytes, as: UTF8.self))")
            checked += 1
        }
        #expect(checked == FoundationComparisonTests.documentCount / 2)
    }

    static func value(at path: [String], in object: [String: Any]) -> Any? {
        var current: Any = object
        for key in path {
            guard let dict = current as? [String: Any], let next = dict[key] else { return nil }
            current = next
        }
        return current
    }
}

/// Seeded generator of request bodies, with a model of what each event should store.
struct RandomJSON {
    struct Event {
        /// Column and the member path holding its value (a string or null).
        var strings: [(EventColumn, [String])] = []
        var propertiesText = "{}"
        var propertiesKey = "properties"
        var postID: Int64?
    }

    struct Document {
        var bytes: [UInt8]
        var events: [Event]
    }

    private var state: UInt64
    private var out: [UInt8] = []

    init(seed: UInt64) { state = seed }

    // SplitMix64.
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func chance(_ percent: Int) -> Bool { int(100) < percent }

    static let flatColumns: [EventColumn] = [
        .eventID, .source, .siteID, .sessionID, .visitorID, .pageURL, .pagePath, .referrerDomain, .userAgent,
        .deviceType, .countryCode, .region, .pageTitle, .campaignID, .utmSource, .utmMedium, .utmCampaign, .utmTerm,
        .utmContent, .userIDHash, .browser, .os,
    ]

    static let seed003Paths: [(EventColumn, [String])] = [
        (.eventID, ["event_id"]), (.pageURL, ["context", "page", "url"]), (.pagePath, ["context", "page", "path"]),
        (.pageTitle, ["context", "page", "title"]), (.campaignID, ["context", "campaign", "campaign_id"]),
        (.utmSource, ["context", "campaign", "utm", "source"]), (.utmMedium, ["context", "campaign", "utm", "medium"]),
        (.utmCampaign, ["context", "campaign", "utm", "campaign"]), (.utmTerm, ["context", "campaign", "utm", "term"]),
        (.utmContent, ["context", "campaign", "utm", "content"]), (.visitorID, ["identity", "visitor_id"]),
        (.sessionID, ["identity", "session_id"]), (.userIDHash, ["identity", "user_id_hash"]),
    ]

    static let knownNames: Set<String> = Set(
        flatColumns.map(\.name) + [
            "event_type", "event_version", "occurred_at", "received_at", "properties", "referrer", "type", "ts", "data",
            "context", "identity", "events", "property_id", "schema_version", "sent_at", "page", "campaign", "utm",
            "url", "path", "title", "source", "medium", "term", "content", "mapping_id", "post_id", "device_slug",
        ])

    // MARK: Documents

    mutating func document() -> Document {
        out.removeAll(keepingCapacity: true)
        var events: [Event] = []
        let count = int(8)
        let seed003 = chance(50)
        open("{")
        if seed003 && chance(70) {
            key("property_id")
            string("prop_" + String(int(1000)))
            comma()
        }
        if chance(30) {
            key(unknownKey())
            value(depth: 2)
            comma()
        }
        key("events")
        open("[")
        for i in 0..<count {
            if i > 0 { comma() }
            events.append(seed003 || chance(20) ? seed003Event() : flatEvent())
        }
        close("]")
        close("}")
        return Document(bytes: out, events: events)
    }

    /// A document with one defect every RFC 8259 parser must refuse.
    mutating func brokenDocument() -> ([UInt8], String) {
        var bytes = document().bytes
        let poisons: [(String, [UInt8])] = [
            ("control character", [0x22, 0x61, UInt8(1 + int(31)), 0x22]),
            ("lone high surrogate", Array(#""\ud83d""#.utf8)),
            ("lone low surrogate", Array(#""x\udc00y""#.utf8)),
            ("high surrogate then not low", Array(#""\ud83d\u0041""#.utf8)),
            ("invalid byte", [0x22, 0xFF, 0x22]),
            ("overlong", [0x22, 0xC0, 0xAF, 0x22]),
            ("encoded surrogate", [0x22, 0xED, 0xA0, 0x80, 0x22]),
            ("truncated sequence", [0x22, 0xE2, 0x82, 0x22]),
            ("above U+10FFFF", [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22]),
            ("bad escape", Array(#""\q""#.utf8)),
            ("short \\u", Array(#""\u00e""#.utf8)),
            ("leading zero", Array("012".utf8)),
            ("bare minus", Array("-".utf8)),
            ("dot without digits", Array("1.".utf8)),
            ("exponent without digits", Array("2e+".utf8)),
            ("bad literal", Array("nulL".utf8)),
            ("single quotes", Array("'x'".utf8)),
        ]
        let choice = int(poisons.count + 2)
        if choice == poisons.count {
            bytes += Array((chance(50) ? " x" : "{}").utf8)
            return (bytes, "trailing garbage")
        }
        if choice == poisons.count + 1 {
            // Cut before the closing brace (and any whitespace after it).
            let last = bytes.lastIndex(of: UInt8(ascii: "}"))!
            return (Array(bytes[..<int(last)]), "truncated")
        }
        // Replace the value of `events` with an event carrying the poison.
        let (name, poison) = poisons[choice]
        let event = Array(#"{"events":[{"event_type":"e","x":"#.utf8) + poison + Array("}]}".utf8)
        if chance(50) { return (event, name) }
        // Or append it as an extra event to a valid document.
        let close = bytes.lastIndex(of: UInt8(ascii: "]"))!
        let before = bytes[..<close].lastIndex { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }!
        let extra = Array(#",{"event_type":"e","y":["#.utf8) + poison + Array("]}".utf8)
        bytes.insert(contentsOf: bytes[before] == UInt8(ascii: "[") ? Array(extra.dropFirst()) : extra, at: close)
        return (bytes, name)
    }

    private mutating func flatEvent() -> Event {
        var event = Event()
        var pairs: [(String, (inout RandomJSON) -> Void)] = []
        pairs.append(("event_type", { g in g.string("type_" + g.text(maxScalars: 8)) }))
        for c in RandomJSON.flatColumns where chance(50) {
            if chance(10) {
                pairs.append((c.name, { g in g.literal("null") }))
            } else {
                pairs.append((c.name, { g in g.string(g.text(maxScalars: 12)) }))
            }
            event.strings.append((c, [c.name]))
        }
        if chance(70) {
            pairs.append(("properties", { _ in }))  // written by writeObject, which records its text
        }
        for _ in 0..<int(4) { pairs.append((unknownKey(), { g in g.value(depth: 4) })) }
        event.strings.append((.eventType, ["event_type"]))
        writeObject(pairs, into: &event)
        return event
    }

    private mutating func seed003Event() -> Event {
        var event = Event()
        event.propertiesKey = "data"
        // Group the nested members by their parent path.
        var tree = Node()
        tree.set(["type"], .text("t_" + text(maxScalars: 8)))
        event.strings.append((.eventType, ["type"]))
        for (c, path) in RandomJSON.seed003Paths where chance(50) {
            tree.set(path, chance(10) ? .null : .text(text(maxScalars: 12)))
            event.strings.append((c, path))
        }
        if chance(50) { tree.set(["ts"], .text("2026-01-24T18:12:33Z")) }
        for _ in 0..<int(3) { tree.set([unknownKey()], .random) }
        if chance(30) { tree.set(["context", unknownKey()], .random) }
        if chance(70) { tree.set(["data"], .properties) }
        writeNode(tree, into: &event)
        return event
    }

    private indirect enum Leaf { case text(String), null, random, properties }

    private struct Node {
        var children: [(String, Node)] = []
        var leaf: Leaf?

        mutating func set(_ path: [String], _ value: Leaf) {
            guard let first = path.first else { return }
            if let i = children.firstIndex(where: { $0.0 == first }) {
                if path.count == 1 { children[i].1.leaf = value } else { children[i].1.set(Array(path.dropFirst()), value) }
            } else {
                var child = Node()
                if path.count == 1 { child.leaf = value } else { child.set(Array(path.dropFirst()), value) }
                children.append((first, child))
            }
        }
    }

    private mutating func writeNode(_ node: Node, into event: inout Event) {
        var order = Array(node.children.indices)
        shuffle(&order)
        open("{")
        for (n, i) in order.enumerated() {
            if n > 0 { comma() }
            let (name, child) = node.children[i]
            key(name)
            switch child.leaf {
            case .text(let s)?: string(s)
            case .null?: literal("null")
            case .random?: value(depth: 4)
            case .properties?:
                let start = out.count
                propertiesBody(into: &event)
                event.propertiesText = RandomJSON.trimmed(out[start...])
            case nil: writeNode(child, into: &event)
            }
        }
        close("}")
    }

    private mutating func writeObject(_ pairs: [(String, (inout RandomJSON) -> Void)], into event: inout Event) {
        var order = Array(pairs.indices)
        shuffle(&order)
        open("{")
        for (n, i) in order.enumerated() {
            if n > 0 { comma() }
            key(pairs[i].0)
            if pairs[i].0 == "properties" {
                let start = out.count
                propertiesBody(into: &event)
                event.propertiesText = RandomJSON.trimmed(out[start...])
            } else {
                pairs[i].1(&self)
            }
        }
        close("}")
    }

    private mutating func propertiesBody(into event: inout Event) {
        open("{")
        var first = true
        if chance(60) {
            let id = Int64(int(2_000_000)) - 1_000_000
            key("post_id")
            out += Array(String(id).utf8)
            event.postID = id
            first = false
        }
        for _ in 0..<int(5) {
            if !first { comma() }
            first = false
            key(unknownKey())
            value(depth: 5)
        }
        close("}")
    }

    /// The object's text without the whitespace the generator put around it.
    static func trimmed(_ bytes: ArraySlice<UInt8>) -> String {
        let ws: [UInt8] = [0x20, 0x09, 0x0A, 0x0D]
        let first = bytes.firstIndex { !ws.contains($0) } ?? bytes.endIndex
        let last = bytes.lastIndex { !ws.contains($0) } ?? first
        return String(decoding: bytes[first...last], as: UTF8.self)
    }

    // MARK: Tokens

    private mutating func whitespace() {
        guard chance(25) else { return }
        for _ in 0..<(1 + int(3)) { out.append([0x20, 0x09, 0x0A, 0x0D][int(4)]) }
    }

    private mutating func open(_ bracket: String) {
        whitespace()
        out += Array(bracket.utf8)
        whitespace()
    }

    private mutating func close(_ bracket: String) {
        whitespace()
        out += Array(bracket.utf8)
        whitespace()
    }

    private mutating func comma() {
        whitespace()
        out.append(UInt8(ascii: ","))
        whitespace()
    }

    private mutating func key(_ name: String) {
        string(name)
        whitespace()
        out.append(UInt8(ascii: ":"))
        whitespace()
    }

    private mutating func literal(_ s: String) { out += Array(s.utf8) }

    private mutating func unknownKey() -> String {
        while true {
            let k = text(maxScalars: 10)
            if !RandomJSON.knownNames.contains(k) { return k }
        }
    }

    mutating func value(depth: Int) {
        switch int(depth > 0 ? 9 : 6) {
        case 0: string(text(maxScalars: 20))
        case 1, 2: number()
        case 3: literal("true")
        case 4: literal("false")
        case 5: literal("null")
        case 6, 7:
            open("[")
            for i in 0..<int(4) {
                if i > 0 { comma() }
                value(depth: depth - 1)
            }
            close("]")
        default:
            open("{")
            for i in 0..<int(4) {
                if i > 0 { comma() }
                key(text(maxScalars: 6))
                value(depth: depth - 1)
            }
            close("}")
        }
    }

    private mutating func number() {
        var s = chance(30) ? "-" : ""
        switch int(4) {
        case 0: s += "0"
        case 1: s += String(1 + int(9)) + String(int(1_000_000))
        case 2: s += String(next() >> 1)  // up to 19 digits
        default: s += String(1 + int(9))
        }
        if chance(30) { s += "." + String(int(100_000)) }
        if chance(20) { s += ["e", "E"][int(2)] + ["", "+", "-"][int(3)] + String(int(280)) }  // 19 digits × 1e279 stays finite
        out += Array(s.utf8)
    }

    /// Random text drawing from every UTF-8 length and the characters that must be escaped.
    mutating func text(maxScalars: Int) -> String {
        var s = String.UnicodeScalarView()
        for _ in 0..<int(maxScalars + 1) {
            let v: UInt32
            switch int(12) {
            case 0...4: v = 0x20 + UInt32(int(0x5F))  // printable ASCII, " \ / included
            case 5: v = UInt32(int(0x20))  // control characters
            case 6: v = 0x80 + UInt32(int(0x780))  // two bytes
            // Not U+FEFF: swift-corelibs-foundation's JSONSerialization drops a raw U+FEFF at the
            // start of a string or right after an escape (it decodes each run as if it began a
            // file, BOM and all). The reader keeps it, as RFC 8259 says.
            case 7: v = [0x0430, 0x4E16, 0x00E9, 0x20AC, 0xFFFD, 0xFFFF][int(6)]
            case 8: v = 0x800 + UInt32(int(0xD000 - 0x800))  // three bytes below the surrogates
            case 9: v = 0xE000 + UInt32(int(0x1000))  // three bytes above them (below U+FEFF)
            case 10: v = 0x10000 + UInt32(int(0x100000))  // four bytes (surrogate pairs when escaped)
            default: v = [0x22, 0x5C, 0x2F, 0x7F, 0x00][int(5)]
            }
            s.append(Unicode.Scalar(v)!)
        }
        return String(s)
    }

    /// Writes `s` as a JSON string, choosing at random among raw UTF-8 and the escapes.
    mutating func string(_ s: String) {
        out.append(0x22)
        for scalar in s.unicodeScalars {
            let v = scalar.value
            let mustEscape = v < 0x20 || v == 0x22 || v == 0x5C
            if !mustEscape && !chance(15) {
                out += Array(String(scalar).utf8)
                continue
            }
            let short: [UInt32: String] = [0x22: "\\\"", 0x5C: "\\\\", 0x2F: "\\/", 0x08: "\\b", 0x0C: "\\f",
                                           0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"]
            if let e = short[v], chance(60) {
                out += Array(e.utf8)
            } else if v >= 0x10000 {
                let u = v - 0x10000
                hexEscape(0xD800 + (u >> 10))
                hexEscape(0xDC00 + (u & 0x3FF))
            } else {
                hexEscape(v)
            }
        }
        out.append(0x22)
    }

    private mutating func hexEscape(_ unit: UInt32) {
        let digits = chance(50) ? Array("0123456789abcdef".utf8) : Array("0123456789ABCDEF".utf8)
        out += [0x5C, UInt8(ascii: "u")]
        for shift in stride(from: 12, through: 0, by: -4) { out.append(digits[Int((unit >> UInt32(shift)) & 0xF)]) }
    }

    private mutating func shuffle(_ a: inout [Int]) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, int(i + 1)) }
    }
}
