/// The text shapes of id strings (event_id, session_id, visitor_id) that Tally stores as
/// 16 binary bytes instead of their text.
///
/// Random 26–36-character ids compress only about 1.6x as text whatever the codec
/// (DESIGN.md, measured on 1M rows); as binary they take 16 bytes flat, before compression.
/// Each form accepts only its one canonical spelling, so decoding the 16 bytes gives back the
/// original text byte for byte; anything else stays text.
///
/// The raw value is stored on disk next to the binary values (FORMAT.md, "Identifier
/// forms"): values are never reused or renumbered. 0 is reserved for "plain text, no form".
public enum IdentifierForm: UInt8, Sendable, CaseIterable {
    /// A ULID: 26 characters of Crockford base32, uppercase only (`0-9`, `A-Z` without
    /// `I L O U`), first character `0`–`7` (26 × 5 = 130 bits, the top 2 must be zero).
    /// Binary: the 128-bit value big-endian (the ULID spec's binary layout: 48-bit ms
    /// timestamp, then 80 random bits), so binary order is text order is time order.
    case ulid = 1
    /// A UUID: 36 characters, lowercase hex in groups 8-4-4-4-12 separated by `-`; any
    /// version and variant. Binary: the 16 bytes in text order (RFC 9562 byte order).
    case uuid = 2
    /// 32 lowercase hex characters (a UUID without hyphens, a 128-bit token). Binary: the
    /// 16 bytes in text order.
    case hex32 = 3

    /// Characters in the canonical text.
    @inlinable public var textLength: Int {
        switch self {
        case .ulid: 26
        case .uuid: 36
        case .hex32: 32
        }
    }
}

/// Converts canonical id strings to and from their 16-byte binary form.
///
/// ```swift
/// let text = Array("01ARZ3NDEKTSV4RRFFQ69G5FAV".utf8)
/// var binary = [UInt8](repeating: 0, count: IdentifierCodec.binaryLength)
/// text.withUnsafeBytes { t in
///     binary.withUnsafeMutableBytes { b in
///         if let form = IdentifierCodec.detect(t) {   // .ulid
///             _ = IdentifierCodec.encode(t, form: form, into: b.baseAddress!)
///         }
///     }
/// }
/// var back: [UInt8] = []
/// binary.withUnsafeBytes { IdentifierCodec.decode($0, form: .ulid, into: &back) }  // == text
/// ```
///
/// Complexity: O(text length), one table lookup per character, no allocation.
public enum IdentifierCodec {
    /// Bytes of every binary form: 128 bits, the size of a ULID and of a UUID.
    public static let binaryLength = 16

    /// The canonical form `text` is in, or nil when it is in none (then store it as text).
    ///
    /// Exactly canonical: a lowercase ULID, an uppercase UUID, a ULID starting with `8`–`Z`,
    /// a ULID with `I`/`L`/`O`/`U`, or any other length are all nil, because they could not
    /// be rebuilt byte for byte from 16 bytes.
    public static func detect(_ text: UnsafeRawBufferPointer) -> IdentifierForm? {
        withUnsafeTemporaryAllocation(byteCount: binaryLength, alignment: 8) { scratch in
            encode(text, into: scratch.baseAddress!)
        }
    }

    /// Detects the form of `text` and writes its 16 binary bytes to `out` in one pass.
    ///
    /// - Returns: the form, or nil when `text` is in no canonical form (then the 16 bytes at
    ///   `out` are unspecified).
    public static func encode(_ text: UnsafeRawBufferPointer, into out: UnsafeMutableRawPointer) -> IdentifierForm? {
        // The three forms have three different lengths, so the length picks the only candidate.
        let form: IdentifierForm
        switch text.count {
        case 26: form = .ulid
        case 36: form = .uuid
        case 32: form = .hex32
        default: return nil
        }
        return encode(text, form: form, into: out) ? form : nil
    }

    /// Writes the 16 binary bytes of `text`, which must be canonical in `form`, to `out`.
    ///
    /// - Returns: false when `text` is not canonical in `form` (then the 16 bytes at `out`
    ///   are unspecified).
    public static func encode(_ text: UnsafeRawBufferPointer, form: IdentifierForm, into out: UnsafeMutableRawPointer) -> Bool {
        guard text.count == form.textLength else { return false }
        switch form {
        case .ulid: return encodeULID(text, out)
        case .uuid: return encodeHex(text, uuidHexOffsets, out) && hasUUIDHyphens(text)
        case .hex32: return encodeHex(text, hex32Offsets, out)
        }
    }

    /// Appends the canonical text of the 16 bytes `binary` in `form` to `text`.
    /// Calls `body` with the identifier's text form, built on the stack.
    @inline(__always)
    static func withText<R>(_ binary: UnsafeRawBufferPointer, form: IdentifierForm,
                            _ body: (UnsafeRawBufferPointer) -> R) -> R {
        precondition(binary.count == binaryLength, "an identifier is 16 bytes")
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 36) { buf in
            let out = buf.baseAddress!
            switch form {
            case .ulid: decodeULID(binary, out)
            case .uuid: decodeHex(binary, uuidHexOffsets, out, hyphens: true)
            case .hex32: decodeHex(binary, hex32Offsets, out, hyphens: false)
            }
            return body(UnsafeRawBufferPointer(start: out, count: form.textLength))
        }
    }

    /// `TallyHash` of the identifier's text form, without building the text anywhere but the stack.
    public static func hashOfText(_ binary: UnsafeRawBufferPointer, form: IdentifierForm) -> UInt64 {
        withText(binary, form: form) { TallyHash.hash($0) }
    }

    public static func decode(_ binary: UnsafeRawBufferPointer, form: IdentifierForm, into text: inout [UInt8]) {
        withText(binary, form: form) { text.append(contentsOf: $0) }
    }

    /// The canonical text of the 16 bytes `binary` in `form`, as a String.
    public static func string(_ binary: UnsafeRawBufferPointer, form: IdentifierForm) -> String {
        var text: [UInt8] = []
        text.reserveCapacity(form.textLength)
        decode(binary, form: form, into: &text)
        return String(decoding: text, as: UTF8.self)
    }

    // MARK: - ULID (Crockford base32)

    /// Crockford's base32 digits in value order: the digits and uppercase letters without
    /// I, L, O and U (ULID spec, "Encoding").
    static let crockfordDigits: [UInt8] = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    /// Byte → digit value for canonical ULID characters, 0xFF for everything else. Lowercase
    /// and the look-alikes Crockford's decoder tolerates (`i l o`…) are invalid here: they
    /// would not survive a round trip.
    static let crockfordValues: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (v, c) in crockfordDigits.enumerated() { t[Int(c)] = UInt8(v) }
        return t
    }()

    static func encodeULID(_ text: UnsafeRawBufferPointer, _ out: UnsafeMutableRawPointer) -> Bool {
        crockfordValues.withUnsafeBufferPointer { table in
            // The first digit carries only 3 bits (3 + 25 × 5 = 128), so it must be 0–7;
            // 0xFF (invalid) fails the same test.
            let first = table[Int(text[0])]
            var bad = first & 0xF8
            var hi: UInt64 = 0
            var lo = UInt64(first)
            for i in 1..<26 {
                let v = table[Int(text[i])]
                bad |= v & 0xE0  // valid digits are < 32; 0xFF has these bits
                hi = (hi &<< 5) | (lo &>> 59)
                lo = (lo &<< 5) | UInt64(v & 0x1F)
            }
            out.storeBytes(of: hi.bigEndian, toByteOffset: 0, as: UInt64.self)
            out.storeBytes(of: lo.bigEndian, toByteOffset: 8, as: UInt64.self)
            return bad == 0
        }
    }

    static func decodeULID(_ binary: UnsafeRawBufferPointer, _ out: UnsafeMutablePointer<UInt8>) {
        let hi = UInt64(bigEndian: binary.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        let lo = UInt64(bigEndian: binary.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        decodeULID(hi: hi, lo: lo, out)
    }

    /// Writes the 26 digits of the ULID whose 128 bits are `hi` (first 8 bytes, big-endian)
    /// and `lo` to `out`. The digits come from a string literal's static bytes: reading the
    /// `crockfordDigits` array here cost a lazy-global check per call (`swift_once`, 1.3 % of
    /// `top_referrers_30d`).
    @inline(__always)
    static func decodeULID(hi: UInt64, lo: UInt64, _ out: UnsafeMutablePointer<UInt8>) {
        let digits = ("0123456789ABCDEFGHJKMNPQRSTVWXYZ" as StaticString).utf8Start
        // Digit i holds bits [125 - 5i, 130 - 5i) of the 128-bit value: digit 0 the top 3
        // bits, digits 1–12 the rest of `hi`, digit 13 straddles the halves (bits 64..60),
        // digits 14–25 lie in `lo`.
        out[0] = digits[Int(hi &>> 61)]
        for i in 1...12 {
            out[i] = digits[Int((hi &>> UInt64(61 &- 5 &* i)) & 0x1F)]
        }
        out[13] = digits[Int(((hi &<< 4) | (lo &>> 60)) & 0x1F)]
        for i in 14...25 {
            out[i] = digits[Int((lo &>> UInt64(125 &- 5 &* i)) & 0x1F)]
        }
    }

    /// `TallyHash` of the text of the identifier whose 128 bits are `hi` (first 8 bytes,
    /// big-endian) and `lo` in `form`; a ULID's digits are made straight from them.
    @inline(__always)
    static func textHash(hi: UInt64, lo: UInt64, form: IdentifierForm) -> UInt64 {
        guard form == .ulid else {
            return withUnsafeTemporaryAllocation(byteCount: 16, alignment: 8) { binary in
                binary.storeBytes(of: hi.bigEndian, toByteOffset: 0, as: UInt64.self)
                binary.storeBytes(of: lo.bigEndian, toByteOffset: 8, as: UInt64.self)
                return hashOfText(UnsafeRawBufferPointer(binary), form: form)
            }
        }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 26) { buf in
            decodeULID(hi: hi, lo: lo, buf.baseAddress!)
            return TallyHash.hash(UnsafeRawBufferPointer(buf))
        }
    }

    // MARK: - Hex (UUID, hex32)

    /// Lowercase hex digits in value order.
    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Byte → value for `0-9a-f`, 0xFF for everything else, uppercase included (an uppercase
    /// id would come back lowercase).
    static let hexValues: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (v, c) in hexDigits.enumerated() { t[Int(c)] = UInt8(v) }
        return t
    }()

    /// Where the two hex digits of each of the 16 bytes start in a UUID's text: 8-4-4-4-12
    /// digits with a hyphen at 8, 13, 18 and 23.
    static let uuidHexOffsets: [Int] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34]

    /// Where each byte's two hex digits start in a hex32 text.
    static let hex32Offsets: [Int] = (0..<16).map { $0 * 2 }

    /// The UUID text positions that hold `-`.
    static let uuidHyphenOffsets: [Int] = [8, 13, 18, 23]

    static func hasUUIDHyphens(_ text: UnsafeRawBufferPointer) -> Bool {
        text[8] == UInt8(ascii: "-") && text[13] == UInt8(ascii: "-")
            && text[18] == UInt8(ascii: "-") && text[23] == UInt8(ascii: "-")
    }

    static func encodeHex(_ text: UnsafeRawBufferPointer, _ offsets: [Int], _ out: UnsafeMutableRawPointer) -> Bool {
        hexValues.withUnsafeBufferPointer { table in
            offsets.withUnsafeBufferPointer { offsets in
                var bad: UInt8 = 0
                for i in 0..<16 {
                    let o = offsets[i]
                    let h = table[Int(text[o])]
                    let l = table[Int(text[o &+ 1])]
                    bad |= (h | l) & 0xF0  // valid values are < 16; 0xFF has these bits
                    out.storeBytes(of: (h &<< 4) | (l & 0x0F), toByteOffset: i, as: UInt8.self)
                }
                return bad == 0
            }
        }
    }

    static func decodeHex(_ binary: UnsafeRawBufferPointer, _ offsets: [Int], _ out: UnsafeMutablePointer<UInt8>, hyphens: Bool) {
        hexDigits.withUnsafeBufferPointer { digits in
            offsets.withUnsafeBufferPointer { offsets in
                for i in 0..<16 {
                    let b = binary[i]
                    let o = offsets[i]
                    out[o] = digits[Int(b &>> 4)]
                    out[o &+ 1] = digits[Int(b & 0x0F)]
                }
            }
        }
        if hyphens {
            for o in uuidHyphenOffsets { out[o] = UInt8(ascii: "-") }
        }
    }
}
