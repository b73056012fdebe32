import Engine
import EventJSON
import Testing

@Suite("NDJSON")
struct NDJSONTests {
    @Test("one event per line, blank lines skipped, both shapes")
    func linesDecode() {
        let text = """
            {"event_type":"a","page_url":"https://a.com/1"}

            {"type":"b","context":{"page":{"url":"https://b.com/2"}},"identity":{"visitor_id":"v"}}
               \t
            {"event_type":"c"}\r
            """
        let r = decodeLines(text)
        #expect(r.errors == [])
        #expect(r.accepted == 3)
        #expect(r.rejected == 0)
        #expect(r.batch.count == 3)
        #expect(r.batch.string(.eventType, 0) == "a")
        #expect(r.batch.string(.pagePath, 0) == "/1")
        #expect(r.batch.string(.eventType, 1) == "b")
        #expect(r.batch.string(.pagePath, 1) == "/2")
        #expect(r.batch.string(.visitorID, 1) == "v")
        #expect(r.batch.string(.eventType, 2) == "c")
        #expect(r.batch.string(.siteID, 2) == "default-site")
    }

    @Test("a syntax error rejects only its line, giving the column")
    func syntaxErrorRejectsLine() {
        let text = """
            {"event_type":"a"}
            {"event_type":"b",}
            {"event_type":"c"}
            {"event_type":"d"} x
            [1,2]
            {"event_type":"e","bad":"\u{01}"}
            {"session_id":5}
            {"event_type":"f"
            """
        let r = decodeLines(text, firstIndex: 100)
        #expect(r.accepted == 2)
        #expect(r.rejected == 6)
        #expect(r.batch.string(.eventType, 0) == "a")
        #expect(r.batch.string(.eventType, 1) == "c")
        #expect(r.errors == [
            IngestError(index: 101, field: "json", reason: "invalid JSON at column 19: expected a string key"),
            IngestError(index: 103, field: "json",
                        reason: "invalid JSON at column 20: unexpected characters after the JSON value"),
            IngestError(index: 104, field: "", reason: "expected an event object, got an array"),
            IngestError(index: 105, field: "json",
                        reason: "invalid JSON at column 26: unescaped control character byte 0x01 in a string"),
            IngestError(index: 106, field: "session_id", reason: "expected a string, got a number"),
            IngestError(index: 107, field: "json", reason: "invalid JSON at column 18: expected ',' or '}' in an object"),
        ])
    }

    @Test("lines append to a batch that already has rows")
    func appendsToBatch() {
        let first = decodeLines(#"{"event_type":"a","page_title":"t"}"#)
        let second = decodeLines("{\"event_type\":\"b\"}\n{\"event_type\":\"c\",\"page_title\":\"u\"}", firstIndex: 1,
                                 into: first.batch)
        #expect(second.accepted == 2)
        #expect(second.batch.count == 3)
        #expect(second.batch.string(.eventType, 2) == "c")
        #expect(second.batch.string(.pageTitle, 0) == "t")
        #expect(second.batch.string(.pageTitle, 1) == nil)
        #expect(second.batch.string(.pageTitle, 2) == "u")
    }

    @Test("lines beyond the batch limit are rejected")
    func limit() {
        var options = testOptions
        options.maxEventsPerBatch = 2
        let r = decodeLines("{\"type\":\"a\"}\n{\"type\":\"b\"}\n{\"type\":\"c\"}\n", options: options)
        #expect(r.accepted == 2)
        #expect(r.errors == [IngestError(index: 2, field: "", reason: "more than 2 events in one batch")])
    }

    @Test("empty input decodes nothing")
    func empty() {
        let r = decodeLines("")
        #expect(r.accepted == 0 && r.rejected == 0 && r.batch.count == 0)
        #expect(decodeLines("\n\n  \n").batch.count == 0)
    }

    @Test("invalid UTF-8 on one line does not affect the next")
    func invalidUTF8Line() {
        var bytes = Array(#"{"event_type":"a"}"#.utf8) + [0x0A]
        bytes += Array(#"{"event_type":""#.utf8) + [0xC3, 0x28] + Array("\"}\n".utf8)
        bytes += Array(#"{"event_type":"c"}"#.utf8)
        var batch = EventBatch()
        var errors: [IngestError] = []
        let (a, r) = bytes.withUnsafeBytes {
            EventReader.decodeLines($0, firstIndex: 0, options: testOptions, into: &batch, errors: &errors)
        }
        #expect(a == 2 && r == 1)
        #expect(errors.first?.index == 1)
        #expect(errors.first?.reason == "invalid JSON at column 16: invalid UTF-8 in a string")
    }
}
