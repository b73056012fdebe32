/// A validated string in the input: the bytes between its quotes and its length once unescaped.
struct StringToken {
    /// First byte after the opening quote.
    var start: Int
    /// The closing quote.
    var end: Int
    /// Length in UTF-8 bytes after unescaping (`end - start` when there are no escapes).
    var length: Int

    @inline(__always) var hasEscapes: Bool { length != end &- start }
}

extension JSONScanner {
    /// Reads a string starting at the opening quote at `pos`, validating escapes, surrogate
    /// pairs and UTF-8, and leaves `pos` after the closing quote.
    ///
    /// Runs of plain ASCII are passed eight bytes at a time.
    @inline(__always) mutating func scanString() throws(JSONError) -> StringToken {
        pos &+= 1
        let start = pos
        // Bytes saved by unescaping (a `\n` is 2 bytes in, 1 byte out).
        var saved = 0
        while true {
            while pos &+ 8 <= end {
                let w = UInt64(littleEndian: UnsafeRawPointer(base + pos).loadUnaligned(as: UInt64.self))
                let special = JSONScanner.specialBytes(w)
                if special != 0 {
                    pos &+= special.trailingZeroBitCount >> 3
                    break
                }
                pos &+= 8
            }
            guard pos < end else { throw error(.unexpectedEnd) }
            let b = base[pos]
            if b == UInt8(ascii: "\"") {
                let token = StringToken(start: start, end: pos, length: pos &- start &- saved)
                pos &+= 1
                return token
            } else if b == UInt8(ascii: "\\") {
                saved &+= try scanEscape()
            } else if b >= 0x80 {
                try scanUTF8Sequence(b)
            } else if b < 0x20 {
                throw error(.controlCharacterInString(b))
            } else {
                pos &+= 1
            }
        }
    }

    /// A mask with the high bit set in each byte of `w` that is `"`, `\`, below 0x20 or above
    /// 0x7F. The lowest set bit is exact (borrows only cause false positives above a real hit).
    @inline(__always) static func specialBytes(_ w: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let q = w ^ (ones &* 0x22)
        let s = w ^ (ones &* 0x5C)
        let hasQuote = (q &- ones) & ~q
        let hasSlash = (s &- ones) & ~s
        let hasControl = (w &- ones &* 0x20) & ~w
        return (hasQuote | hasSlash | hasControl | w) & highs
    }

    /// Validates the escape at `pos` (a backslash) and passes over it. Returns how many bytes
    /// shorter its UTF-8 form is than the escape.
    private mutating func scanEscape() throws(JSONError) -> Int {
        guard pos &+ 1 < end else { throw error(.unexpectedEnd) }
        switch base[pos &+ 1] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
            UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            pos &+= 2
            return 1
        case UInt8(ascii: "u"):
            let unit = try hex4(at: pos &+ 2)
            if unit & 0xFC00 == 0xD800 {
                // A high surrogate must be followed by an escaped low surrogate.
                guard pos &+ 11 < end, base[pos &+ 6] == UInt8(ascii: "\\"), base[pos &+ 7] == UInt8(ascii: "u")
                else { throw error(.loneSurrogate) }
                let low = try hex4(at: pos &+ 8)
                guard low & 0xFC00 == 0xDC00 else { throw error(.loneSurrogate) }
                pos &+= 12
                return 12 - 4
            }
            if unit & 0xFC00 == 0xDC00 { throw error(.loneSurrogate) }
            pos &+= 6
            return unit < 0x80 ? 5 : unit < 0x800 ? 4 : 3
        default:
            throw error(.invalidEscape)
        }
    }

    /// The value of four hex digits at `at`.
    private func hex4(at: Int) throws(JSONError) -> UInt32 {
        guard at &+ 4 <= end else { throw JSONError(offset: pos, problem: .invalidUnicodeEscape) }
        var v: UInt32 = 0
        for i in 0..<4 {
            let d = JSONScanner.hexValue(base[at &+ i])
            guard d < 16 else { throw JSONError(offset: at &+ i, problem: .invalidUnicodeEscape) }
            v = v << 4 | UInt32(d)
        }
        return v
    }

    @inline(__always) static func hexValue(_ b: UInt8) -> UInt8 {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): b &- UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): b &- UInt8(ascii: "a") &+ 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): b &- UInt8(ascii: "A") &+ 10
        default: 0xFF
        }
    }

    /// Validates one multi-byte UTF-8 sequence whose lead byte `lead` is at `pos` (RFC 3629,
    /// section 4: no overlong forms, no surrogates, nothing above U+10FFFF).
    private mutating func scanUTF8Sequence(_ lead: UInt8) throws(JSONError) {
        let count: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: count = 2
        case 0xE0: count = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: count = 3
        case 0xED: count = 3; high = 0x9F
        case 0xF0: count = 4; low = 0x90
        case 0xF1...0xF3: count = 4
        case 0xF4: count = 4; high = 0x8F
        default: throw error(.invalidUTF8)
        }
        guard pos &+ count <= end else { throw error(.invalidUTF8) }
        let second = base[pos &+ 1]
        guard second >= low && second <= high else { throw error(.invalidUTF8) }
        var i = 2
        while i < count {
            guard base[pos &+ i] & 0xC0 == 0x80 else { throw error(.invalidUTF8) }
            i &+= 1
        }
        pos &+= count
    }
}

/// Turns a validated string's escapes into UTF-8.
enum JSONUnescaper {
    /// Writes the unescaped bytes of `base[start..<end]` (validated by `scanString`) to `out`,
    /// which must have room for the token's `length` bytes. Returns the number of bytes written.
    static func unescape(_ base: UnsafePointer<UInt8>, from start: Int, to end: Int,
                         into out: UnsafeMutablePointer<UInt8>) -> Int {
        var i = start
        var o = 0
        while i < end {
            let b = base[i]
            if b != UInt8(ascii: "\\") {
                out[o] = b
                o &+= 1
                i &+= 1
                continue
            }
            let e = base[i &+ 1]
            i &+= 2
            switch e {
            case UInt8(ascii: "b"): out[o] = 0x08
            case UInt8(ascii: "f"): out[o] = 0x0C
            case UInt8(ascii: "n"): out[o] = 0x0A
            case UInt8(ascii: "r"): out[o] = 0x0D
            case UInt8(ascii: "t"): out[o] = 0x09
            case UInt8(ascii: "u"):
                var scalar = hex4(base + i)
                i &+= 4
                if scalar & 0xFC00 == 0xD800 {
                    let low = hex4(base + (i &+ 2))
                    i &+= 6
                    scalar = 0x10000 &+ ((scalar &- 0xD800) << 10) &+ (low &- 0xDC00)
                }
                o &+= encodeUTF8(scalar, into: out + o)
                continue
            default: out[o] = e  // " \ /
            }
            o &+= 1
        }
        return o
    }

    @inline(__always) private static func hex4(_ p: UnsafePointer<UInt8>) -> UInt32 {
        var v: UInt32 = 0
        for k in 0..<4 { v = v << 4 | UInt32(JSONScanner.hexValue(p[k]) & 0x0F) }
        return v
    }

    private static func encodeUTF8(_ s: UInt32, into out: UnsafeMutablePointer<UInt8>) -> Int {
        switch s {
        case 0..<0x80:
            out[0] = UInt8(s)
            return 1
        case 0x80..<0x800:
            out[0] = UInt8(0xC0 | (s >> 6))
            out[1] = UInt8(0x80 | (s & 0x3F))
            return 2
        case 0x800..<0x10000:
            out[0] = UInt8(0xE0 | (s >> 12))
            out[1] = UInt8(0x80 | ((s >> 6) & 0x3F))
            out[2] = UInt8(0x80 | (s & 0x3F))
            return 3
        default:
            out[0] = UInt8(0xF0 | (s >> 18))
            out[1] = UInt8(0x80 | ((s >> 12) & 0x3F))
            out[2] = UInt8(0x80 | ((s >> 6) & 0x3F))
            out[3] = UInt8(0x80 | (s & 0x3F))
            return 4
        }
    }
}
