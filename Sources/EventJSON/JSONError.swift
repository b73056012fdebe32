/// Why the reader stopped reading a document (or an NDJSON line): where, and what it found.
///
/// Internal: `EventReader` turns it into a `DocumentError` (whole document) or an
/// `IngestError` naming the line (NDJSON).
struct JSONError: Error {
    /// Byte offset in the request body.
    var offset: Int
    var problem: Problem

    enum Problem: Equatable {
        case unexpectedEnd
        case unexpectedByte(UInt8)
        case expectedKey
        case expectedColon
        case expectedCommaOrBrace
        case expectedCommaOrBracket
        case controlCharacterInString(UInt8)
        case invalidEscape
        case invalidUnicodeEscape
        case loneSurrogate
        case invalidUTF8
        case leadingZero
        case invalidNumber
        case invalidLiteral
        case tooDeep
        case trailingCharacters
        // Valid JSON of the wrong shape for a request.
        case expectedObjectOrArray
        case envelopeField(name: String, expected: String)
        case tooManyEvents(limit: Int)
    }

    var message: String {
        switch problem {
        case .unexpectedEnd: "unexpected end of input"
        case .unexpectedByte(let b): "unexpected \(JSONError.describe(b))"
        case .expectedKey: "expected a string key"
        case .expectedColon: "expected ':' after an object key"
        case .expectedCommaOrBrace: "expected ',' or '}' in an object"
        case .expectedCommaOrBracket: "expected ',' or ']' in an array"
        case .controlCharacterInString(let b): "unescaped control character \(JSONError.describe(b)) in a string"
        case .invalidEscape: "invalid escape sequence in a string"
        case .invalidUnicodeEscape: "invalid \\u escape (expected 4 hex digits)"
        case .loneSurrogate: "lone UTF-16 surrogate in a \\u escape"
        case .invalidUTF8: "invalid UTF-8 in a string"
        case .leadingZero: "leading zero in a number"
        case .invalidNumber: "invalid number"
        case .invalidLiteral: "invalid literal (expected true, false or null)"
        case .tooDeep: "nesting deeper than \(JSONScanner.maxDepth) levels"
        case .trailingCharacters: "unexpected characters after the JSON value"
        case .expectedObjectOrArray: "expected an object or an array at the top level"
        case .envelopeField(let name, let expected): "\(name) must be \(expected)"
        case .tooManyEvents(let limit): "more than \(limit) events in one request"
        }
    }

    static func describe(_ b: UInt8) -> String {
        if b >= 0x21 && b < 0x7F { return "'\(Character(Unicode.Scalar(b)))'" }
        let hex = String(b, radix: 16, uppercase: true)
        return "byte 0x" + (hex.count == 1 ? "0" + hex : hex)
    }
}
