import Engine
import EventJSON
import Testing

/// RFC 8259 strictness. Each bad fragment is placed where an event member's value (or the
/// document) would be; any of them makes the whole document invalid.
@Suite("RFC 8259 strictness")
struct SyntaxTests {
    static func inEvent(_ value: [UInt8]) -> [UInt8] {
        Array(#"{"events":[{"event_type":"e","page_title":"#.utf8) + value + Array("}]}".utf8)
    }

    static func inEvent(_ value: String) -> [UInt8] { inEvent(Array(value.utf8)) }

    @Test("invalid escapes are rejected", arguments: [#""\x""#, #""\u12""#, #""\u12G4""#, #""\'""#, #""\U0041""#, #""\"#, #""\u""#])
    func invalidEscapes(value: String) {
        #expect(documentError(bytes: SyntaxTests.inEvent(value))?.code == .syntax)
    }

    @Test("unescaped control characters in strings are rejected", arguments: [0x00, 0x01, 0x09, 0x0A, 0x0D, 0x1F] as [UInt8])
    func controlCharacters(byte: UInt8) {
        let e = documentError(bytes: SyntaxTests.inEvent([0x22, 0x61, byte, 0x62, 0x22]))
        #expect(e?.code == .syntax)
        #expect(e?.offset == 44)
    }

    @Test("DEL and other printable ASCII need no escape")
    func delIsFine() throws {
        let r = try decode(bytes: SyntaxTests.inEvent([0x22, 0x7F, 0x20, 0x7E, 0x22]))
        #expect(r.batch.bytes(.pageTitle) == [0x7F, 0x20, 0x7E])
    }

    @Test("lone or invalid surrogates are rejected", arguments: [
        #""\ud800""#, #""\ud800x""#, #""\uD800\u0041""#, #""\udc00""#, #""\uDFFF\uD800""#, #""\ud800\ud800""#,
        #""\ud800\""#, #""\ud800\n""#, #""a\udbff""#,
    ])
    func loneSurrogates(value: String) {
        #expect(documentError(bytes: SyntaxTests.inEvent(value))?.code == .syntax)
    }

    @Test("invalid UTF-8 in strings is rejected", arguments: [
        [0xFF], [0xFE], [0x80], [0xBF], [0xC0, 0x80], [0xC1, 0xBF], [0xE0, 0x80, 0x80], [0xE0, 0x9F, 0xBF],
        [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF], [0xF0, 0x80, 0x80, 0x80], [0xF0, 0x8F, 0xBF, 0xBF],
        [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xE2, 0x82], [0xE2, 0x82, 0x41], [0xC3],
        [0xF0, 0x9F, 0x8E], [0xC3, 0xC3],
    ] as [[UInt8]])
    func invalidUTF8(bytes: [UInt8]) {
        #expect(documentError(bytes: SyntaxTests.inEvent([0x22] + bytes + [0x22]))?.code == .syntax)
        // Also as the last bytes of the input, where a sequence runs past the end.
        #expect(documentError(bytes: Array(#"[{"type":""#.utf8) + bytes)?.code == .syntax)
    }

    @Test("valid UTF-8 at the edges of each range is accepted", arguments: [
        [0xC2, 0x80], [0xDF, 0xBF], [0xE0, 0xA0, 0x80], [0xED, 0x9F, 0xBF], [0xEE, 0x80, 0x80], [0xEF, 0xBF, 0xBF],
        [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF],
    ] as [[UInt8]])
    func validUTF8Edges(bytes: [UInt8]) throws {
        let r = try decode(bytes: SyntaxTests.inEvent([0x22] + bytes + [0x22]))
        #expect(r.batch.bytes(.pageTitle) == bytes)
    }

    @Test("bad numbers are rejected", arguments: [
        "01", "-01", "00", "1.", ".5", "+1", "1e", "1e+", "1E-", "-", "0x10", "NaN", "Infinity", "-Infinity", "1.5.3",
        "--1", "1.e5", "- 1", "0.", "1ee5",
    ])
    func badNumbers(number: String) {
        #expect(documentError(bytes: SyntaxTests.inEvent(number))?.code == .syntax)
        let asVersion = #"[{"event_type":"e","event_version":\#(number)}]"#
        #expect(documentError(asVersion)?.code == .syntax)
    }

    @Test("good numbers in unknown members are accepted", arguments: [
        "0", "-0", "1", "-1", "0.5", "-0.5e-10", "1E5", "1e+5", "123456789012345678901234567890", "1.7976931348623157e308",
    ])
    func goodNumbers(number: String) throws {
        #expect(try decode(#"[{"event_type":"e","n":\#(number),"m":[\#(number)]}]"#).batch.count == 1)
    }

    @Test("structural mistakes are rejected", arguments: [
        #"{"events":[{"event_type":"e"}]}x"#, #"{"events":[]} []"#, #"{"events":[]},"#, #"[{"event_type":"e"},]"#,
        #"[{"event_type":"e",}]"#, #"[{"event_type" "e"}]"#, #"[{"event_type":"e" "page_url":"x"}]"#, #"[{event_type:"e"}]"#,
        #"[{'event_type':'e'}]"#, #"[{"event_type":"e"}"#, #"[{"event_type":"e""#, #"[{"event_type":"e"]"#,
        #"[{"event_type":"e"}}"#, #"{"events":[] // comment"#, #"[{"event_type":tru}]"#, #"[{"x":nul}]"#,
        #"[{"x":True}]"#, #"[{"x":nulll}]"#, #"[{"x":}]"#, #"[{"x"}]"#, #"[{,}]"#, #"[,]"#, #"[{"x":1}{"y":2}]"#,
        "\u{FEFF}[]" + "x", "[\u{0B}]", "[\u{0C}]", "[\u{A0}]",
    ])
    func structural(json: String) {
        #expect(documentError(json)?.code == .syntax)
    }

    @Test("bytes outside strings must be JSON tokens")
    func strayBytes() {
        #expect(documentError(bytes: [0x5B, 0xFF, 0x5D])?.code == .syntax)
        #expect(documentError(bytes: [0x5B, 0x00, 0x5D])?.code == .syntax)
        #expect(documentError(bytes: Array("[]".utf8) + [0x00])?.code == .syntax)
    }

    @Test("a UTF-8 byte order mark and surrounding whitespace are allowed")
    func byteOrderMark() throws {
        #expect(try decode(bytes: [0xEF, 0xBB, 0xBF] + Array(" \t\r\n[{\"type\":\"a\"}] \n".utf8)).batch.count == 1)
    }

    /// Request (1) ▸ events (2) ▸ event (3) ▸ properties (4) ▸ n nested arrays.
    static func nested(_ arrays: Int) -> String {
        #"{"events":[{"event_type":"e","properties":{"x":"# + String(repeating: "[", count: arrays)
            + String(repeating: "]", count: arrays) + "}}]}"
    }

    @Test("nesting of 64 levels is accepted and 65 is rejected")
    func nestingLimit() throws {
        #expect(try decode(SyntaxTests.nested(60)).batch.count == 1)
        let e = documentError(SyntaxTests.nested(61))
        #expect(e?.code == .syntax)
        #expect(e?.message == "nesting deeper than 64 levels")
        // Objects count as arrays do, in unknown members too.
        let objects = String(repeating: #"{"a":"#, count: 62) + "1" + String(repeating: "}", count: 62)
        #expect(try decode(#"[{"event_type":"e","u":\#(objects)}]"#).batch.count == 1)
        let deeper = String(repeating: #"{"a":"#, count: 63) + "1" + String(repeating: "}", count: 63)
        #expect(documentError(#"[{"event_type":"e","u":\#(deeper)}]"#)?.code == .syntax)
        // Very deep input fails without exhausting the stack.
        #expect(documentError(String(repeating: "[", count: 100_000))?.code == .syntax)
    }

    @Test("a syntax error inside one event fails the whole document, with the byte offset")
    func syntaxErrorFailsDocument() {
        let json = #"{"events":[{"event_type":"ok"},{"event_type":"e","x":01}]}"#
        let e = documentError(json)
        #expect(e?.code == .syntax)
        #expect(e?.offset == 54)
        #expect(e?.message == "leading zero in a number")
        #expect(e?.description == "leading zero in a number at byte 54")
    }

    @Test("errors name the position of an unexpected end")
    func unexpectedEnd() {
        let e = documentError(#"{"events":[{"event_type":"e""#)
        #expect(e?.message == "expected ',' or '}' in an object")
        #expect(e?.offset == 28)
        #expect(documentError(#"{"events":[{"event_type":"e"#)?.message == "unexpected end of input")
    }
}
