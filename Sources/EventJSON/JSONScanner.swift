/// A strict RFC 8259 tokenizer over bytes in memory.
///
/// It validates everything it passes over (strings, escapes, UTF-8, numbers, literals,
/// nesting) and hands back spans of the input rather than values, so callers copy bytes
/// straight from the request into columns. It never allocates.
///
/// Reads are unchecked: every read is preceded by a `pos < end` test, and `end` never
/// exceeds the buffer the scanner was made over. The fuzz target (Fuzz/) runs this under
/// AddressSanitizer.
struct JSONScanner {
    /// The deepest nesting of objects and arrays accepted, counting the top-level value.
    /// Requests are at most 4 levels deep (envelope, events, event, properties); 64 leaves room
    /// for any honest `properties` and bounds the recursion of `skipValue`.
    static let maxDepth = 64

    let base: UnsafePointer<UInt8>
    /// One past the last byte the scanner may read (a line's end when reading NDJSON).
    var end: Int
    /// The next byte to read.
    var pos: Int

    init(base: UnsafePointer<UInt8>, start: Int, end: Int) {
        self.base = base
        self.pos = start
        self.end = end
    }

    // MARK: Bytes

    /// The byte at `pos`, or 0 at the end (0 is never valid where a caller peeks).
    @inline(__always) func peek() -> UInt8 {
        pos < end ? base[pos] : 0
    }

    @inline(__always) func error(_ problem: JSONError.Problem) -> JSONError {
        JSONError(offset: pos, problem: problem)
    }

    /// The error for the byte at `pos`: the end of input, or that byte.
    func unexpected() -> JSONError {
        pos < end ? error(.unexpectedByte(base[pos])) : error(.unexpectedEnd)
    }

    @inline(__always) mutating func skipWhitespace() {
        while pos < end {
            let b = base[pos]
            guard b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 else { return }
            pos &+= 1
        }
    }

    // MARK: Objects and arrays

    /// Consumes `{` and the whitespace after it. Returns false (and consumes the `}`) when the
    /// object is empty. `depth` is the nesting of the object itself (1 for a top-level object).
    @inline(__always) mutating func openObject(depth: Int) throws(JSONError) -> Bool {
        if depth > JSONScanner.maxDepth { throw error(.tooDeep) }
        pos &+= 1
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            pos &+= 1
            return false
        }
        return true
    }

    /// Reads `"key"`, the `:` after it and the whitespace before the value.
    @inline(__always) mutating func readKey() throws(JSONError) -> StringToken {
        guard peek() == UInt8(ascii: "\"") else { throw error(.expectedKey) }
        let key = try scanString()
        if peek() != UInt8(ascii: ":") {
            skipWhitespace()
            guard peek() == UInt8(ascii: ":") else { throw error(.expectedColon) }
        }
        pos &+= 1
        skipWhitespace()
        return key
    }

    /// After a member's value: consumes `,` and the whitespace after it (true: another member
    /// follows) or `}` (false: the object is closed).
    @inline(__always) mutating func nextMember() throws(JSONError) -> Bool {
        skipWhitespace()
        let b = peek()
        if b == UInt8(ascii: ",") {
            pos &+= 1
            skipWhitespace()
            return true
        }
        if b == UInt8(ascii: "}") {
            pos &+= 1
            return false
        }
        throw error(.expectedCommaOrBrace)
    }

    /// Consumes `[` and the whitespace after it. Returns false (and consumes the `]`) when the
    /// array is empty.
    @inline(__always) mutating func openArray(depth: Int) throws(JSONError) -> Bool {
        if depth > JSONScanner.maxDepth { throw error(.tooDeep) }
        pos &+= 1
        skipWhitespace()
        if peek() == UInt8(ascii: "]") {
            pos &+= 1
            return false
        }
        return true
    }

    /// After an element: consumes `,` and whitespace (true) or `]` (false).
    @inline(__always) mutating func nextElement() throws(JSONError) -> Bool {
        skipWhitespace()
        let b = peek()
        if b == UInt8(ascii: ",") {
            pos &+= 1
            skipWhitespace()
            return true
        }
        if b == UInt8(ascii: "]") {
            pos &+= 1
            return false
        }
        throw error(.expectedCommaOrBracket)
    }

    // MARK: Any value

    /// Validates and passes over one value starting at `pos` (no leading whitespace).
    /// `depth` is the number of containers already open around it.
    mutating func skipValue(depth: Int) throws(JSONError) {
        switch peek() {
        case UInt8(ascii: "\""):
            _ = try scanString()
        case UInt8(ascii: "{"):
            if try openObject(depth: depth &+ 1) {
                repeat {
                    _ = try readKey()
                    try skipValue(depth: depth &+ 1)
                } while try nextMember()
            }
        case UInt8(ascii: "["):
            if try openArray(depth: depth &+ 1) {
                repeat {
                    try skipValue(depth: depth &+ 1)
                } while try nextElement()
            }
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            _ = try scanNumber()
        case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            _ = try scanLiteral()
        default:
            throw unexpected()
        }
    }

    /// The JSON type of the value at `pos`, for error messages.
    func valueKindName() -> String {
        switch peek() {
        case UInt8(ascii: "\""): "a string"
        case UInt8(ascii: "{"): "an object"
        case UInt8(ascii: "["): "an array"
        case UInt8(ascii: "t"), UInt8(ascii: "f"): "a boolean"
        case UInt8(ascii: "n"): "null"
        default: "a number"
        }
    }

    // MARK: Literals

    enum Literal { case `true`, `false`, null }

    /// Reads `true`, `false` or `null`.
    mutating func scanLiteral() throws(JSONError) -> Literal {
        let b = peek()
        let (word, literal): (StaticString, Literal) =
            b == UInt8(ascii: "t") ? ("true", .true) : b == UInt8(ascii: "f") ? ("false", .false) : ("null", .null)
        let n = word.utf8CodeUnitCount
        guard end &- pos >= n else { throw error(.invalidLiteral) }
        let w = word.utf8Start
        for i in 0..<n where base[pos &+ i] != w[i] {
            throw JSONError(offset: pos &+ i, problem: .invalidLiteral)
        }
        pos &+= n
        return literal
    }

    // MARK: Numbers

    /// A validated number. `value` is meaningful when `isInteger` (no fraction, no exponent,
    /// fits in Int64).
    struct NumberToken {
        var isInteger: Bool
        var value: Int64
    }

    /// Reads `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    mutating func scanNumber() throws(JSONError) -> NumberToken {
        var negative = false
        if peek() == UInt8(ascii: "-") {
            negative = true
            pos &+= 1
        }
        var magnitude: UInt64 = 0
        var fits = true
        let first = peek()
        if first == UInt8(ascii: "0") {
            pos &+= 1
            if isDigit(peek()) { throw error(.leadingZero) }
        } else if isDigit(first) {
            while pos < end {
                let d = base[pos] &- UInt8(ascii: "0")
                guard d < 10 else { break }
                let (m, o1) = magnitude.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(UInt64(d))
                if o1 || o2 { fits = false }
                magnitude = a
                pos &+= 1
            }
        } else {
            throw error(.invalidNumber)
        }
        var isInteger = true
        if peek() == UInt8(ascii: ".") {
            isInteger = false
            pos &+= 1
            guard isDigit(peek()) else { throw error(.invalidNumber) }
            while pos < end && isDigit(base[pos]) { pos &+= 1 }
        }
        let e = peek()
        if e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            isInteger = false
            pos &+= 1
            let sign = peek()
            if sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { pos &+= 1 }
            guard isDigit(peek()) else { throw error(.invalidNumber) }
            while pos < end && isDigit(base[pos]) { pos &+= 1 }
        }
        guard isInteger, fits else { return NumberToken(isInteger: false, value: 0) }
        if negative {
            guard magnitude <= UInt64(Int64.max) &+ 1 else { return NumberToken(isInteger: false, value: 0) }
            return NumberToken(isInteger: true, value: Int64(truncatingIfNeeded: 0 &- magnitude))
        }
        guard magnitude <= UInt64(Int64.max) else { return NumberToken(isInteger: false, value: 0) }
        return NumberToken(isInteger: true, value: Int64(magnitude))
    }

    @inline(__always) func isDigit(_ b: UInt8) -> Bool { b &- UInt8(ascii: "0") < 10 }
}
