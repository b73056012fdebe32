import Engine
import EventJSON
import Testing

@Suite("Event validation")
struct ValidationTests {
    @Test("invalid events are rejected one by one, naming the field, and the others are stored")
    func rejectsOneByOne() throws {
        let r = try decode("""
            {"events":[
              {"event_type":"ok0","page_url":"https://a.com/0"},
              {"page_url":"https://a.com/missing-type"},
              {"event_type":"","page_url":"https://a.com/empty-type"},
              {"event_type":"ok3"},
              {"event_type":"bad-time","occurred_at":"2024-02-30T00:00:00Z"},
              {"event_type":"bad-version","event_version":256},
              {"event_type":"bad-type","session_id":42},
              {"event_type":"bad-props","properties":[1,2]},
              {"event_type":"bad-context","context":"x"},
              "not an object",
              {"event_type":"ok10","visitor_id":"v"},
              {"type":null},
              {"event_type":7},
              {"event_type":"bad-url","page_url":{"u":1}},
              {"event_type":"bad-page","context":{"page":{"title":true}}}
            ]}
            """)
        #expect(r.batch.count == 3)
        #expect(r.batch.string(.eventType, 0) == "ok0")
        #expect(r.batch.string(.eventType, 1) == "ok3")
        #expect(r.batch.string(.eventType, 2) == "ok10")
        #expect(r.batch.string(.visitorID, 2) == "v")
        #expect(r.batch.string(.pagePath, 0) == "/0")
        #expect(r.rejected == 12)
        let fields = r.errors.map { "\($0.index):\($0.field)" }
        #expect(fields == [
            "1:event_type", "2:event_type", "4:occurred_at", "5:event_version", "6:session_id", "7:properties",
            "8:context", "9:", "11:event_type", "12:event_type", "13:page_url", "14:context.page.title",
        ])
    }

    @Test("reasons say what was wrong", arguments: [
        (#"{"page_url":"x"}"#, "event_type", "missing"),
        (#"{"event_type":""}"#, "event_type", "missing"),
        (#"{"type":null}"#, "event_type", "missing"),
        (#"{"event_type":7}"#, "event_type", "expected a string, got a number"),
        (#"{"type":["a"]}"#, "type", "expected a string, got an array"),
        (#"{"event_type":"e","event_version":1.5}"#, "event_version", "expected an integer from 0 to 255"),
        (#"{"event_type":"e","event_version":-1}"#, "event_version", "expected an integer from 0 to 255"),
        (#"{"event_type":"e","event_version":"1"}"#, "event_version", "expected an integer from 0 to 255, got a string"),
        (#"{"event_type":"e","occurred_at":"2024-13-01T00:00:00Z"}"#, "occurred_at", "month out of range"),
        (#"{"event_type":"e","occurred_at":true}"#, "occurred_at",
         "expected an ISO-8601 string or epoch milliseconds, got a boolean"),
        (#"{"event_type":"e","occurred_at":1.5e12}"#, "occurred_at", "expected epoch milliseconds as an integer"),
        (#"{"event_type":"e","properties":"{}"}"#, "properties", "expected an object, got a string"),
        (#"{"type":"e","data":5}"#, "data", "expected an object, got a number"),
        (#"{"type":"e","identity":[]}"#, "identity", "expected an object, got an array"),
        (#"{"type":"e","context":{"campaign":{"utm":{"source":1}}}}"#, "context.campaign.utm.source",
         "expected a string, got a number"),
        (#"{"type":"e","identity":{"visitor_id":false}}"#, "identity.visitor_id", "expected a string, got a boolean"),
        (#"{"event_type":"e","referrer":{}}"#, "referrer", "expected a string, got an object"),
    ])
    func reasons(event: String, field: String, reason: String) throws {
        let r = try decodeEvent(event)
        #expect(r.batch.count == 0)
        #expect(r.errors == [IngestError(index: 0, field: field, reason: reason)])
    }

    @Test("a derived value longer than its column rejects the event, naming the member it came from")
    func derivedTooLong() throws {
        let longPath = "/" + String(repeating: "p", count: 1024)
        let r = try decode("""
            [{"event_type":"e","page_url":"https://a.com\(longPath)?q"},
             {"event_type":"e","page_url":"https://a.com\(longPath.dropLast())?q"},
             {"event_type":"e","referrer":"https://\(String(repeating: "h", count: 2049))/"},
             {"event_type":"e","referrer":"https://\(String(repeating: "h", count: 2048))/"}]
            """)
        #expect(r.errors == [
            IngestError(index: 0, field: "page_url", reason: "path longer than 1024 bytes"),
            IngestError(index: 2, field: "referrer", reason: "host longer than 2048 bytes"),
        ])
        #expect(r.batch.string(.pagePath, 0)?.utf8.count == 1024)
        #expect(r.batch.string(.referrerDomain, 1)?.utf8.count == 2048)
    }

    @Test("only the first problem of an event is reported")
    func firstProblemOnly() throws {
        let r = try decodeEvent(#"{"session_id":1,"visitor_id":2}"#)
        #expect(r.errors == [IngestError(index: 0, field: "session_id", reason: "expected a string, got a number")])
    }

    @Test("more events than the limit is a document error")
    func tooManyEvents() throws {
        var options = testOptions
        options.maxEventsPerBatch = 3
        #expect(try decode(#"[{"type":"a"},{"type":"b"},{"type":"c"}]"#, options: options).batch.count == 3)
        let e = documentError(#"{"events":[{"type":"a"},{"type":"b"},{"type":"c"},{"type":"d"}]}"#, options: options)
        #expect(e?.code == .tooManyEvents)
        #expect(e?.message == "more than 3 events in one request")
        // Rejected events count too.
        #expect(documentError(#"[1,2,3,4]"#, options: options)?.code == .tooManyEvents)
    }

    @Test("a body of the wrong shape is a document error")
    func wrongShapes() {
        #expect(documentError(#""just a string""#)?.code == .unexpectedShape)
        #expect(documentError(#"42"#)?.code == .unexpectedShape)
        #expect(documentError(#"null"#)?.code == .unexpectedShape)
        #expect(documentError(#"{"events":{"type":"a"}}"#)?.code == .unexpectedShape)
        #expect(documentError(#"{"events":null}"#)?.message == "events must be an array of event objects")
        #expect(documentError(#"{"property_id":5,"events":[]}"#)?.code == .unexpectedShape)
        let long = String(repeating: "p", count: 129)
        #expect(documentError(#"{"property_id":"\#(long)","events":[]}"#)?.code == .unexpectedShape)
        #expect(documentError("")?.code == .syntax)
        #expect(documentError("   ")?.code == .syntax)
    }
}
