import Engine
import EventJSON
import Testing

@Suite("EventReader API")
struct ReaderTests {
    @Test("an empty buffer is a syntax error for a document and nothing for NDJSON")
    func emptyBuffer() {
        let options = IngestOptions(receivedAt: 0)
        #expect(throws: DocumentError(code: .syntax, offset: 0, message: "empty document")) {
            try EventReader.decodeDocument(UnsafeRawBufferPointer(start: nil, count: 0), options: options)
        }
        var batch = EventBatch()
        var errors: [IngestError] = []
        let counts = EventReader.decodeLines(UnsafeRawBufferPointer(start: nil, count: 0), firstIndex: 0,
                                             options: options, into: &batch, errors: &errors)
        #expect(counts == (0, 0))
    }

    @Test("errors read as sentences naming the event, the field and the place")
    func descriptions() {
        #expect(IngestError(index: 3, field: "page_url", reason: "longer than 2048 bytes").description
            == "event 3: page_url: longer than 2048 bytes")
        #expect(IngestError(index: 0, field: "", reason: "expected an event object, got a number").description
            == "event 0: expected an event object, got a number")
        #expect(DocumentError(code: .tooManyEvents, offset: 17, message: "more than 2 events in one request").description
            == "more than 2 events in one request at byte 17")
        #expect(DocumentError.Code.unexpectedShape.description == "unexpectedShape")
    }

    @Test("a default site applies only where neither the event nor the envelope names one")
    func defaultSite() throws {
        let noDefault = IngestOptions(receivedAt: 0)
        #expect(try decode(#"[{"type":"a"}]"#, options: noDefault).batch.string(.siteID) == "")
        #expect(try decode(#"[{"type":"a"}]"#).batch.string(.siteID) == "default-site")
        #expect(try decode(#"{"property_id":"p\u00e9","events":[{"type":"a"}]}"#).batch.string(.siteID) == "pé")
        #expect(try decode(#"{"property_id":null,"events":[{"type":"a"}]}"#).batch.string(.siteID) == "default-site")
    }

    @Test("the accepted count is the batch's row count")
    func acceptedCount() throws {
        let r = try decode(#"[{"type":"a"},{},{"type":"b"}]"#)
        #expect(r.accepted == 2)
        #expect(r.rejected == 1)
    }
}
