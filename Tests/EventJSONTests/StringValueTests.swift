import Engine
import EventJSON
import Testing

@Suite("String values")
struct StringValueTests {
    @Test("multi-byte UTF-8 is stored byte for byte")
    func multiByteUTF8() throws {
        let title = "Привет, 世界 — café 🎉 𝄞"
        let r = try decodeEvent(#"{"event_type":"é","page_title":"\#(title)","region":"Москва"}"#)
        #expect(r.errors == [])
        #expect(r.batch.string(.pageTitle) == title)
        #expect(r.batch.bytes(.pageTitle) == Array(title.utf8))
        #expect(r.batch.string(.eventType) == "é")
        #expect(r.batch.string(.region) == "Москва")
    }

    @Test("escapes are turned into UTF-8", arguments: [
        (#"a\"b"#, "a\"b"),
        (#"back\\slash"#, "back\\slash"),
        (#"\/path"#, "/path"),
        (#"\b\f\n\r\t"#, "\u{08}\u{0C}\n\r\t"),
        (#"\u0041\u00e9\u4e16"#, "Aé世"),
        (#"\u0000"#, "\u{0}"),
        (#"\uD83C\uDF89 party"#, "🎉 party"),
        (#"\ud834\udd1e"#, "𝄞"),
        (#"\uDBFF\uDFFF"#, "\u{10FFFF}"),
        (#"mixed é \u00e9 \n end"#, "mixed é é \n end"),
    ])
    func escapes(json: String, expected: String) throws {
        let r = try decodeEvent(#"{"event_type":"e","page_title":"\#(json)","user_agent":"\#(json)"}"#)
        #expect(r.errors == [])
        #expect(r.batch.string(.pageTitle) == expected)
        #expect(r.batch.bytes(.userAgent) == Array(expected.utf8))
    }

    @Test("an escaped member name is matched by its unescaped text")
    func escapedKey() throws {
        let r = try decodeEvent(#"{"event\u005ftype":"e","\u0070age_url":"https://a.com/x"}"#)
        #expect(r.errors == [])
        #expect(r.batch.string(.eventType) == "e")
        #expect(r.batch.string(.pagePath) == "/x")
    }

    @Test("derived values are read from the unescaped URL")
    func derivedFromEscapedURL() throws {
        let r = try decodeEvent(#"{"event_type":"e","page_url":"https:\/\/a.com\/p\u00e9?x","referrer":"https:\/\/B.com\/"}"#)
        #expect(r.batch.string(.pageURL) == "https://a.com/pé?x")
        #expect(r.batch.string(.pagePath) == "/pé")
        #expect(r.batch.string(.referrerDomain) == "b.com")
    }

    @Test("properties keep their exact source text, escapes and whitespace included")
    func propertiesRaw() throws {
        let raw = #"{ "a" : "\u00e9\n" , "b":[ 1 ,2 ] }"#
        let r = try decodeEvent(#"{"event_type":"e","properties":\#(raw)}"#)
        #expect(r.batch.string(.properties) == raw)
    }

    @Test("a value of exactly the column's maximum length is accepted and one byte more is rejected",
          arguments: EventColumn.allCases.filter { $0.kind != .int64 && $0 != .properties && $0 != .propDeviceSlug })
    func maxLengthBoundary(column: EventColumn) throws {
        let max = column.maxLength
        let exact = String(repeating: "a", count: max)
        let over = exact + "a"
        let type = column == .eventType ? "" : #""event_type":"e","#
        let r = try decode("[{\(type)\"\(column.name)\":\"\(exact)\"},{\(type)\"\(column.name)\":\"\(over)\"}]")
        #expect(r.batch.count == 1)
        #expect(r.batch.string(column, 0) == exact)
        #expect(r.errors == [IngestError(index: 1, field: column.name, reason: "longer than \(max) bytes")])
    }

    @Test("the maximum length counts UTF-8 bytes after unescaping")
    func maxLengthCountsUnescapedBytes() throws {
        // 64 two-byte characters written as 6-byte escapes: 128 bytes stored, 384 in the request.
        let escaped = String(repeating: #"\u00e9"#, count: 64)
        let r = try decodeEvent(#"{"event_type":"e","session_id":"\#(escaped)"}"#)
        #expect(r.errors == [])
        #expect(r.batch.bytes(.sessionID).count == 128)
        let r2 = try decodeEvent(#"{"event_type":"e","session_id":"\#(escaped)a"}"#)
        #expect(r2.errors.first?.field == "session_id")
        // 32 four-byte characters: exactly 128 bytes.
        let emoji = String(repeating: "🎉", count: 32)
        #expect(try decodeEvent(#"{"event_type":"e","session_id":"\#(emoji)"}"#).batch.count == 1)
        #expect(try decodeEvent(#"{"event_type":"e","session_id":"\#(emoji)a"}"#).batch.count == 0)
    }

    @Test("properties may be 16384 bytes of source text, not more")
    func propertiesMaxLength() throws {
        let filler = { (n: Int) in #"{"x":""# + String(repeating: "p", count: n - 8) + #""}"# }
        #expect(filler(16384).utf8.count == 16384)
        let r = try decode(#"[{"event_type":"e","properties":\#(filler(16384))},{"event_type":"e","properties":\#(filler(16385))}]"#)
        #expect(r.batch.count == 1)
        #expect(r.errors == [IngestError(index: 1, field: "properties", reason: "longer than 16384 bytes")])
    }

    @Test("a device_slug longer than its column rejects the event, naming the member")
    func deviceSlugMaxLength() throws {
        let r = try decodeEvent(#"{"type":"e","data":{"device_slug":"\#(String(repeating: "d", count: 257))"}}"#)
        #expect(r.errors == [IngestError(index: 0, field: "data.device_slug", reason: "longer than 256 bytes")])
    }

    @Test("over-long nested seed-003 members are named by their path")
    func nestedNames() throws {
        let long = String(repeating: "u", count: 2049)
        let r = try decodeEvent(#"{"type":"e","context":{"page":{"url":"\#(long)"}}}"#)
        #expect(r.errors == [IngestError(index: 0, field: "context.page.url", reason: "longer than 2048 bytes")])
    }
}
