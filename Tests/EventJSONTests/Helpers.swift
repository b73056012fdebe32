import Engine
import EventJSON
import Testing

/// 2023-11-14T22:13:20Z: the server clock in these tests.
let serverTime: Int64 = 1_700_000_000_000
let testOptions = IngestOptions(receivedAt: serverTime, defaultSiteID: "default-site")

func decode(_ json: String, options: IngestOptions = testOptions) throws(DocumentError) -> DecodeResult {
    try decode(bytes: Array(json.utf8), options: options)
}

func decode(bytes: [UInt8], options: IngestOptions = testOptions) throws(DocumentError) -> DecodeResult {
    let result = bytes.withUnsafeBytes { raw in
        Result { () throws(DocumentError) -> DecodeResult in try EventReader.decodeDocument(raw, options: options) }
    }
    let r = try result.get()
    expectWellFormed(r.batch)
    #expect(r.rejected == r.errors.count)
    return r
}

/// The error `decodeDocument` throws for `bytes`, or nil (recorded as a failure) if it does not.
func documentError(bytes: [UInt8], options: IngestOptions = testOptions, sourceLocation: SourceLocation = #_sourceLocation)
    -> DocumentError?
{
    do {
        let r = try decode(bytes: bytes, options: options)
        Issue.record("expected a document error, got \(r.accepted) accepted, errors \(r.errors)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

func documentError(_ json: String, options: IngestOptions = testOptions, sourceLocation: SourceLocation = #_sourceLocation)
    -> DocumentError?
{
    documentError(bytes: Array(json.utf8), options: options, sourceLocation: sourceLocation)
}

/// One flat event in a `{"events":[...]}` body; the single event's errors, if any.
func decodeEvent(_ eventJSON: String) throws(DocumentError) -> DecodeResult {
    try decode("{\"events\":[\(eventJSON)]}")
}

struct LinesResult {
    var batch: EventBatch
    var errors: [IngestError]
    var accepted: Int
    var rejected: Int
}

func decodeLines(_ text: String, firstIndex: Int = 0, options: IngestOptions = testOptions,
                 into batch: EventBatch = EventBatch()) -> LinesResult {
    var batch = batch
    var errors: [IngestError] = []
    let (a, r) = Array(text.utf8).withUnsafeBytes {
        EventReader.decodeLines($0, firstIndex: firstIndex, options: options, into: &batch, errors: &errors)
    }
    expectWellFormed(batch)
    return LinesResult(batch: batch, errors: errors, accepted: a, rejected: r)
}

/// Every column of the batch holds exactly `count` values (and nullable ones a bitmap as long).
func expectWellFormed(_ batch: EventBatch, sourceLocation: SourceLocation = #_sourceLocation) {
    for c in EventColumn.allCases {
        if c.kind == .int64 {
            let col = batch[int: c]
            #expect(col.count == batch.count, "\(c.name)", sourceLocation: sourceLocation)
            #expect((col.nulls?.count ?? batch.count) == batch.count, "\(c.name) nulls", sourceLocation: sourceLocation)
            #expect((col.nulls != nil) == c.isNullable, "\(c.name) nullability", sourceLocation: sourceLocation)
        } else {
            let col = batch[string: c]
            #expect(col.count == batch.count, "\(c.name)", sourceLocation: sourceLocation)
            #expect((col.nulls?.count ?? batch.count) == batch.count, "\(c.name) nulls", sourceLocation: sourceLocation)
            #expect((col.nulls != nil) == c.isNullable, "\(c.name) nullability", sourceLocation: sourceLocation)
            #expect(Int(col.ends.last ?? 0) == col.bytes.count, "\(c.name) ends", sourceLocation: sourceLocation)
        }
    }
}

extension EventBatch {
    func string(_ c: EventColumn, _ row: Int = 0) -> String? { self[string: c].string(at: row) }
    func int(_ c: EventColumn, _ row: Int = 0) -> Int64? { self[int: c].value(at: row) }
    func bytes(_ c: EventColumn, _ row: Int = 0) -> [UInt8] { self[string: c].withValue(row) { Array($0) } }
}
