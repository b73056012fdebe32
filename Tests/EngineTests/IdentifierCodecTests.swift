import Engine
import TallyTestSupport
import Testing

/// Canonical texts built character by character from the spec alphabets, independently
/// of the codec's own decoder.
private enum Texts {
    static let crockford = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)
    static let hex = Array("0123456789abcdef".utf8)

    static func ulid(_ rng: inout SeededRandom) -> [UInt8] {
        // The first character carries the top 3 of 128 bits: 0–7.
        [crockford[Int(rng.next() % 8)]] + (1..<26).map { _ in crockford[Int(rng.next() % 32)] }
    }

    static func hex32(_ rng: inout SeededRandom) -> [UInt8] {
        (0..<32).map { _ in hex[Int(rng.next() % 16)] }
    }

    static func uuid(_ rng: inout SeededRandom) -> [UInt8] {
        var t = hex32(&rng)
        for o in [8, 13, 18, 23] { t.insert(UInt8(ascii: "-"), at: o) }
        return t
    }
}

private func detect(_ text: [UInt8]) -> IdentifierForm? {
    text.withUnsafeBytes { IdentifierCodec.detect($0) }
}

private func detect(_ text: String) -> IdentifierForm? { detect(Array(text.utf8)) }

/// Encodes `text` in `form`; nil when the codec refuses it.
private func encode(_ text: [UInt8], _ form: IdentifierForm) -> [UInt8]? {
    var out = [UInt8](repeating: 0, count: IdentifierCodec.binaryLength)
    let ok = text.withUnsafeBytes { t in
        out.withUnsafeMutableBytes { IdentifierCodec.encode(t, form: form, into: $0.baseAddress!) }
    }
    return ok ? out : nil
}

private func decode(_ binary: [UInt8], _ form: IdentifierForm) -> [UInt8] {
    var text: [UInt8] = [0x2A]  // decode appends: keep a prefix to prove it
    binary.withUnsafeBytes { IdentifierCodec.decode($0, form: form, into: &text) }
    #expect(text.first == 0x2A)
    return Array(text.dropFirst())
}

@Suite("Identifier codec")
struct IdentifierCodecTests {
    @Test("random canonical ids of every form survive encode and decode byte for byte", arguments: IdentifierForm.allCases)
    func roundTrip(form: IdentifierForm) throws {
        var rng = SeededRandom(state: UInt64(form.rawValue))
        for _ in 0..<2_000 {
            let text: [UInt8]
            switch form {
            case .ulid: text = Texts.ulid(&rng)
            case .uuid: text = Texts.uuid(&rng)
            case .hex32: text = Texts.hex32(&rng)
            }
            #expect(detect(text) == form)
            let binary = try #require(encode(text, form))
            #expect(decode(binary, form) == text)
            // The one-pass detect-and-encode agrees.
            var out = [UInt8](repeating: 0, count: 16)
            let detected = text.withUnsafeBytes { t in out.withUnsafeMutableBytes { IdentifierCodec.encode(t, into: $0.baseAddress!) } }
            #expect(detected == form)
            #expect(out == binary)
        }
    }

    @Test("every 16-byte value decodes to text that encodes back to it", arguments: IdentifierForm.allCases)
    func binaryRoundTrip(form: IdentifierForm) throws {
        var rng = SeededRandom(state: 99)
        for _ in 0..<2_000 {
            let binary = (0..<16).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let text = decode(binary, form)
            #expect(text.count == form.textLength)
            #expect(detect(text) == form)
            #expect(try #require(encode(text, form)) == binary)
        }
    }

    @Test("non-canonical spellings are not identifiers, so they stay text")
    func nonCanonicalIsRejected() {
        let ulid = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
        let uuid = "0190a5b2-7c3d-4e8f-9a1b-2c3d4e5f6a7b"
        #expect(detect(ulid) == .ulid)
        #expect(detect(uuid) == .uuid)
        let rejected = [
            ulid.lowercased(),  // lowercase ULID would come back uppercase
            "01ARZ3NDEKTSV4RRFFQ69G5Fav",  // mixed case
            "01ARZ3NDEKTSV4RRFFQ69G5FAVX",  // 27 characters
            "01ARZ3NDEKTSV4RRFFQ69G5FA",  // 25 characters
            "01ARZ3NDEKTSV4RRFFQ69G5FAU",  // U is not a Crockford digit
            "01ARZ3NDEKTSV4RRFFQ69G5FAI",  // nor I (Crockford reads it as 1)
            "01ARZ3NDEKTSV4RRFFQ69G5FAL",  // nor L
            "01ARZ3NDEKTSV4RRFFQ69G5FAO",  // nor O (Crockford reads it as 0)
            "81ARZ3NDEKTSV4RRFFQ69G5FAV",  // first digit above 7 overflows 128 bits
            "ZZZZZZZZZZZZZZZZZZZZZZZZZZ",
            "01ARZ3NDEKTSV4RRFFQ69G5FA-",
            uuid.uppercased(),  // uppercase UUID would come back lowercase
            "0190A5B2-7c3d-4e8f-9a1b-2c3d4e5f6a7b",
            "{0190a5b2-7c3d-4e8f-9a1b-2c3d4e5f6a7b}",
            "0190a5b27-c3d-4e8f-9a1b-2c3d4e5f6a7b",  // hyphen moved
            "0190a5b2_7c3d_4e8f_9a1b_2c3d4e5f6a7b",
            "0190a5b2-7c3d-4e8f-9a1b-2c3d4e5f6a7g",  // not hex
            "0190a5b2-7c3d-4e8f-9a1b2c3d4e5f6a7b",  // 35 characters
            "0190a5b27c3d4e8f9a1b2c3d4e5f6a7B",  // uppercase hex32
            "0190a5b27c3d4e8f9a1b2c3d4e5f6a7",  // 31 characters
            "0190a5b27c3d4e8f9a1b2c3d4e5f6a7 ",
            "",
            "visitor-42",
        ]
        for text in rejected {
            #expect(detect(text) == nil, "\(text)")
        }
        // Bytes outside ASCII, at every length a form has.
        for n in [26, 32, 36] {
            #expect(detect([UInt8](repeating: 0xFF, count: n)) == nil)
        }
    }

    @Test("encoding in a form the text is not in fails")
    func wrongFormFails() {
        let ulid = Array("01ARZ3NDEKTSV4RRFFQ69G5FAV".utf8)
        let hex32 = Array("0190a5b27c3d4e8f9a1b2c3d4e5f6a7b".utf8)
        #expect(encode(ulid, .uuid) == nil)
        #expect(encode(ulid, .hex32) == nil)
        #expect(encode(hex32, .ulid) == nil)
        #expect(encode(hex32, .uuid) == nil)
    }

    /// If this test breaks, the storage format changed. Bytes computed independently in
    /// Python (base-32 digits to a 128-bit integer, big-endian).
    @Test("a ULID's binary form is its 128-bit value big-endian, timestamp first")
    func goldenULID() throws {
        let text = Array("01ARZ3NDEKTSV4RRFFQ69G5FAV".utf8)
        let binary = try #require(encode(text, .ulid))
        #expect(binary == [0x01, 0x56, 0x3e, 0x3a, 0xb5, 0xd3, 0xd6, 0x76, 0x4c, 0x61, 0xef, 0xb9, 0x93, 0x02, 0xbd, 0x5b])
        // The first 6 bytes are the 48-bit millisecond timestamp (2016-07-30T23:54:10.259Z).
        let ms = binary[0..<6].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        #expect(ms == 1_469_922_850_259)
        #expect(encode(Array("00000000000000000000000000".utf8), .ulid) == [UInt8](repeating: 0, count: 16))
        #expect(encode(Array("7ZZZZZZZZZZZZZZZZZZZZZZZZZ".utf8), .ulid) == [UInt8](repeating: 0xFF, count: 16))
    }

    /// If this test breaks, the storage format changed.
    @Test("a UUID's binary form is its 16 bytes in text order")
    func goldenUUID() throws {
        let text = Array("0190a5b2-7c3d-4e8f-9a1b-2c3d4e5f6a7b".utf8)
        let golden: [UInt8] = [0x01, 0x90, 0xa5, 0xb2, 0x7c, 0x3d, 0x4e, 0x8f, 0x9a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f, 0x6a, 0x7b]
        #expect(try #require(encode(text, .uuid)) == golden)
        // The same bytes without hyphens are the hex32 form of the same value.
        #expect(try #require(encode(Array("0190a5b27c3d4e8f9a1b2c3d4e5f6a7b".utf8), .hex32)) == golden)
        golden.withUnsafeBytes { b in
            #expect(IdentifierCodec.string(b, form: .uuid) == "0190a5b2-7c3d-4e8f-9a1b-2c3d4e5f6a7b")
            #expect(IdentifierCodec.string(b, form: .hex32) == "0190a5b27c3d4e8f9a1b2c3d4e5f6a7b")
        }
    }

    @Test("binary ULIDs sort in the same order as their text")
    func binaryOrderIsTextOrder() throws {
        var rng = SeededRandom(state: 5)
        let texts = (0..<500).map { _ in Texts.ulid(&rng) }
        let pairs = try texts.map { ($0, try #require(encode($0, .ulid))) }
        let byText = pairs.sorted { $0.0.lexicographicallyPrecedes($1.0) }.map(\.1)
        let byBinary = pairs.map(\.1).sorted { $0.lexicographicallyPrecedes($1) }
        #expect(byText == byBinary)
    }

    @Test("form numbers are fixed forever")
    func formNumbers() {
        #expect(IdentifierForm.ulid.rawValue == 1)
        #expect(IdentifierForm.uuid.rawValue == 2)
        #expect(IdentifierForm.hex32.rawValue == 3)
        #expect(IdentifierForm(rawValue: 0) == nil)
    }
}
