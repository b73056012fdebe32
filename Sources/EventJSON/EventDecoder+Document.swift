#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The request shapes: a whole JSON document (envelope, array of events or one event) and
/// NDJSON (one event per line).
extension EventDecoder {
    /// Reads a whole document. Any syntax error, or a shape that is not a request, throws:
    /// after a syntax error nothing later in the document can be trusted.
    mutating func readDocument() throws(JSONError) {
        skipByteOrderMark()
        scanner.skipWhitespace()
        switch scanner.peek() {
        case UInt8(ascii: "{"):
            // An envelope or a single event: the same member table reads both. If `events`
            // turns up, it is an envelope and the members around it are not an event.
            draft.reset()
            try readObject(table: .document, depth: 1)
            if !isEnvelope {
                guard maxEvents > 0 else { throw JSONError(offset: 0, problem: .tooManyEvents(limit: maxEvents)) }
                eventsSeen = 1
                commit(index: 0)
            }
        case UInt8(ascii: "["):
            try readEventArray(depth: 1)
        default:
            guard scanner.pos < scanner.end else { throw scanner.error(.unexpectedEnd) }
            let start = scanner.pos
            try scanner.skipValue(depth: 0)
            throw JSONError(offset: start, problem: .expectedObjectOrArray)
        }
        scanner.skipWhitespace()
        guard scanner.pos == scanner.end else { throw scanner.error(.trailingCharacters) }
    }

    /// An array of events (the top level, or an envelope's `events`); `depth` is the array's
    /// nesting. An element that is not an object is rejected on its own.
    mutating func readEventArray(depth: Int) throws(JSONError) {
        guard try scanner.openArray(depth: depth) else { return }
        repeat {
            guard eventsSeen < maxEvents else { throw scanner.error(.tooManyEvents(limit: maxEvents)) }
            let index = eventsSeen
            eventsSeen += 1
            if scanner.peek() == UInt8(ascii: "{") {
                draft.reset()
                try readObject(table: .event, depth: depth + 1)
                commit(index: index)
            } else {
                let kind = scanner.valueKindName()
                try scanner.skipValue(depth: depth)
                reject(index, "", "expected an event object, got \(kind)")
            }
        } while try scanner.nextElement()
    }

    /// Reads NDJSON: one event object per line, blank lines skipped. A line that is not valid
    /// JSON is rejected on its own (field "json"), as is one that is not an object. Line `i`
    /// (0-based, blank lines counted) is event `firstIndex + i`.
    mutating func readLines(firstIndex: Int) {
        let base = scanner.base
        let count = scanner.end
        var lineStart = 0
        var line = 0
        if count >= 3 && base[0] == 0xEF && base[1] == 0xBB && base[2] == 0xBF { lineStart = 3 }
        while lineStart < count {
            let lineEnd: Int
            if let nl = memchr(base + lineStart, 0x0A, count - lineStart) {
                lineEnd = lineStart + (UnsafeRawPointer(nl) - UnsafeRawPointer(base + lineStart))
            } else {
                lineEnd = count
            }
            readLine(start: lineStart, end: lineEnd, index: firstIndex + line)
            lineStart = lineEnd + 1
            line += 1
        }
        scanner.pos = count
        scanner.end = count
    }

    private mutating func readLine(start: Int, end: Int, index: Int) {
        scanner.pos = start
        scanner.end = end
        scanner.skipWhitespace()
        if scanner.pos == end { return }  // a blank line
        if initialCount + accepted >= maxEvents {
            reject(index, "", "more than \(maxEvents) events in one batch")
            return
        }
        do throws(JSONError) {
            if scanner.peek() == UInt8(ascii: "{") {
                draft.reset()
                try readObject(table: .event, depth: 1)
                scanner.skipWhitespace()
                guard scanner.pos == end else { throw scanner.error(.trailingCharacters) }
                commit(index: index)
            } else {
                let kind = scanner.valueKindName()
                try scanner.skipValue(depth: 0)
                scanner.skipWhitespace()
                guard scanner.pos == end else { throw scanner.error(.trailingCharacters) }
                reject(index, "", "expected an event object, got \(kind)")
            }
        } catch {
            reject(index, "json", "invalid JSON at column \(error.offset - start + 1): \(error.message)")
        }
    }
}
