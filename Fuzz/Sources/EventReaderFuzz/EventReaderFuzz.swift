import Engine
import EventJSON

/// libFuzzer entry point: every input is read as a whole document and as NDJSON, and the
/// results are checked against invariants that hold for any input. A broken invariant
/// traps (`precondition`), which libFuzzer reports as a crash with the input saved.
@_cdecl("LLVMFuzzerTestOneInput")
public func eventReaderFuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: size == 0 ? nil : data, count: size)
    checkDocument(bytes)
    checkLines(bytes)
    return 0
}

private let receivedAt: Int64 = 1_700_000_000_000
/// Small, so inputs of a few hundred bytes can reach the limit.
private let maxEvents = 16

private func checkDocument(_ bytes: UnsafeRawBufferPointer) {
    let options = IngestOptions(receivedAt: receivedAt, defaultSiteID: "fuzz-site", maxEventsPerBatch: maxEvents)
    let result: DecodeResult
    do {
        result = try EventReader.decodeDocument(bytes, options: options)
    } catch {
        precondition(error.offset >= 0 && error.offset <= bytes.count, "document error offset out of range")
        precondition(!error.message.isEmpty)
        return
    }
    checkBatch(result.batch)
    precondition(result.rejected == result.errors.count, "rejected != errors.count")
    let seen = result.batch.count + result.rejected
    precondition(seen <= maxEvents, "more events than the limit")
    var last = -1
    for e in result.errors {
        precondition(e.index > last && e.index < seen, "error indices not ascending within the events seen")
        precondition(!e.reason.isEmpty)
        last = e.index
    }
    // An independent count of the events in the (now known valid) document.
    var walker = EventCounter(bytes)
    precondition(walker.countEvents() == seen, "accepted + rejected != events in the document")
}

private func checkLines(_ bytes: UnsafeRawBufferPointer) {
    let options = IngestOptions(receivedAt: receivedAt, defaultSiteID: nil, maxEventsPerBatch: maxEvents)
    var batch = EventBatch()
    var errors: [IngestError] = []
    let lines = nonBlankLines(bytes)
    let first = 7
    let (a1, r1) = EventReader.decodeLines(bytes, firstIndex: first, options: options, into: &batch, errors: &errors)
    precondition(a1 + r1 == lines, "NDJSON: accepted + rejected != non-blank lines")
    precondition(batch.count == a1 && errors.count == r1)
    var last = first - 1
    for e in errors {
        precondition(e.index > last, "NDJSON error indices not ascending")
        last = e.index
    }
    checkBatch(batch)
    // Again into the same batch: rows append, and the limit counts the rows already there.
    let (a2, r2) = EventReader.decodeLines(bytes, firstIndex: 0, options: options, into: &batch, errors: &errors)
    precondition(a2 + r2 == lines && batch.count == a1 + a2 && batch.count <= max(maxEvents, a1))
    checkBatch(batch)
}

/// Every column holds `count` values, offsets are ordered, bytes are valid UTF-8, and the
/// values the reader computes are in range.
private func checkBatch(_ batch: EventBatch) {
    let n = batch.count
    for c in EventColumn.allCases {
        if c.kind == .int64 {
            let col = batch[int: c]
            precondition(col.count == n && (col.nulls?.count ?? n) == n, "int column \(c.name) has the wrong count")
        } else {
            let col = batch[string: c]
            precondition(col.count == n && (col.nulls?.count ?? n) == n, "string column \(c.name) has the wrong count")
            var previous: UInt32 = 0
            for e in col.ends {
                precondition(e >= previous, "ends of \(c.name) go backwards")
                previous = e
            }
            precondition(Int(previous) == col.bytes.count, "ends of \(c.name) miss bytes")
            precondition(String(validating: col.bytes, as: UTF8.self) != nil, "column \(c.name) is not UTF-8")
            for i in 0..<n where col.isNull(i) {
                precondition(col.start(i) == Int(col.ends[i]), "a null in \(c.name) has bytes")
            }
        }
    }
    for i in 0..<n {
        precondition(batch[int: .receivedAt].values[i] == receivedAt)
        precondition((0...255).contains(batch[int: .eventVersion].values[i]))
        let t = batch[int: .occurredAt].values[i]
        precondition(t >= -62_167_219_200_000 && t <= 253_402_300_799_999, "occurred_at out of range")
        precondition(batch[string: .eventType].withValue(i) { $0.count } > 0, "empty event_type accepted")
        for c in EventColumn.stringColumns {
            precondition(batch[string: c].withValue(i) { $0.count } <= c.maxLength, "\(c.name) longer than allowed")
        }
    }
}

/// Lines with something other than JSON whitespace (after a leading byte order mark).
private func nonBlankLines(_ bytes: UnsafeRawBufferPointer) -> Int {
    var start = 0
    if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { start = 3 }
    var count = 0
    var blank = true
    for i in start..<bytes.count {
        let b = bytes[i]
        if b == 0x0A {
            if !blank { count += 1 }
            blank = true
        } else if b != 0x20 && b != 0x09 && b != 0x0D {
            blank = false
        }
    }
    if !blank { count += 1 }
    return count
}

/// Counts the events of a valid JSON document, written apart from the reader: the elements
/// of every top-level `events` array of an object, 1 for an object without one, the
/// elements of a top-level array.
private struct EventCounter {
    let p: UnsafeRawBufferPointer
    var i = 0

    init(_ p: UnsafeRawBufferPointer) { self.p = p }

    mutating func countEvents() -> Int {
        if p.count >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF { i = 3 }
        whitespace()
        if p[i] == UInt8(ascii: "[") { return arrayCount() }
        precondition(p[i] == UInt8(ascii: "{"), "accepted a document that is not an object or array")
        i += 1
        var events = 0
        var envelope = false
        whitespace()
        if p[i] == UInt8(ascii: "}") { return 1 }
        while true {
            whitespace()
            let key = string()
            whitespace()
            i += 1  // :
            whitespace()
            if key == Array("events".utf8) {
                precondition(p[i] == UInt8(ascii: "["), "accepted an envelope whose events is not an array")
                envelope = true
                events += arrayCount()
            } else {
                skipValue()
            }
            whitespace()
            if p[i] == UInt8(ascii: ",") {
                i += 1
                continue
            }
            break
        }
        return envelope ? events : 1
    }

    mutating func whitespace() {
        while i < p.count && (p[i] == 0x20 || p[i] == 0x09 || p[i] == 0x0A || p[i] == 0x0D) { i += 1 }
    }

    mutating func arrayCount() -> Int {
        i += 1
        whitespace()
        if p[i] == UInt8(ascii: "]") {
            i += 1
            return 0
        }
        var n = 0
        while true {
            whitespace()
            skipValue()
            n += 1
            whitespace()
            let b = p[i]
            i += 1
            if b == UInt8(ascii: "]") { return n }
        }
    }

    mutating func skipValue() {
        switch p[i] {
        case UInt8(ascii: "\""): _ = string()
        case UInt8(ascii: "["): _ = arrayCount()
        case UInt8(ascii: "{"):
            i += 1
            whitespace()
            if p[i] == UInt8(ascii: "}") {
                i += 1
                return
            }
            while true {
                whitespace()
                _ = string()
                whitespace()
                i += 1
                whitespace()
                skipValue()
                whitespace()
                let b = p[i]
                i += 1
                if b == UInt8(ascii: "}") { return }
            }
        default:
            while i < p.count, "-+.0123456789eEtruefalsn".utf8.contains(p[i]) { i += 1 }
        }
    }

    /// The string at `i`, unescaped.
    mutating func string() -> [UInt8] {
        i += 1
        var out: [UInt8] = []
        while p[i] != UInt8(ascii: "\"") {
            if p[i] != UInt8(ascii: "\\") {
                out.append(p[i])
                i += 1
                continue
            }
            let e = p[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"): break
            default: out.append(e)  // " \ /
            }
            if e != UInt8(ascii: "u") { continue }
            var unit = hex(i)
            i += 4
            if unit >= 0xD800 && unit < 0xDC00 {
                unit = 0x10000 + ((unit - 0xD800) << 10) + (hex(i + 2) - 0xDC00)
                i += 6
            }
            out += Array(String(Character(Unicode.Scalar(unit)!)).utf8)
        }
        i += 1
        return out
    }

    func hex(_ at: Int) -> UInt32 {
        var v: UInt32 = 0
        for k in 0..<4 { v = v << 4 | UInt32(Character(Unicode.Scalar(p[at + k])).hexDigitValue!) }
        return v
    }
}
