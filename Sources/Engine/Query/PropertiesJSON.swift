/// Reads one top-level key of an event's properties JSON (the text stored in the
/// `properties` column) without building the document: for `props.<key>` dimensions and
/// filters and `sum:<key>` metrics.
enum PropertiesJSON {
    /// The value of `key` in the object `json`: strings unescaped, numbers as int or double,
    /// booleans as "true"/"false", nested objects and arrays as their JSON text, null and a
    /// missing key as nil. Malformed text gives nil.
    static func value(_ key: [UInt8], in json: UnsafeRawBufferPointer) -> QueryValue? {
        switch find(key, in: json) {
        case .plain(let bytes): .string(String(decoding: bytes, as: UTF8.self))
        case .other(let v): v
        }
    }

    /// `key`'s value in `json`: an ASCII string without escapes as its bytes in place (a props.*
    /// breakdown codes them without making a String: parsing was a fifth of
    /// `props_click_target_30d`), anything else as `value(_:in:)` gives it.
    enum Found {
        case plain(UnsafeRawBufferPointer)
        case other(QueryValue?)
    }

    static func find(_ key: [UInt8], in json: UnsafeRawBufferPointer) -> Found {
        var p = Parser(bytes: json)
        p.skipSpace()
        guard p.take(UInt8(ascii: "{")) else { return .other(nil) }
        p.skipSpace()
        if p.take(UInt8(ascii: "}")) { return .other(nil) }
        while true {
            p.skipSpace()
            guard let isKey = p.stringEquals(key) else { return .other(nil) }
            p.skipSpace()
            guard p.take(UInt8(ascii: ":")) else { return .other(nil) }
            p.skipSpace()
            if isKey {
                if p.peek == UInt8(ascii: "\"") {
                    // ASCII only: other bytes go through String, which repairs invalid UTF-8.
                    var j = p.i + 1
                    while j < json.count, json[j] != UInt8(ascii: "\""), json[j] != UInt8(ascii: "\\"), json[j] < 0x80 { j += 1 }
                    if j < json.count, json[j] == UInt8(ascii: "\"") { return .plain(UnsafeRawBufferPointer(rebasing: json[(p.i + 1)..<j])) }
                }
                return .other(p.value())
            }
            guard p.skip() else { return .other(nil) }
            p.skipSpace()
            if p.take(UInt8(ascii: ",")) { continue }
            return .other(nil)
        }
    }

    struct Parser {
        let bytes: UnsafeRawBufferPointer
        var i = 0

        init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

        mutating func skipSpace() {
            while let c = peek, c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { i += 1 }
        }

        mutating func take(_ c: UInt8) -> Bool {
            if peek == c {
                i += 1
                return true
            }
            return false
        }

        /// Reads a string and says whether its unescaped bytes are `key`; nil when malformed.
        /// Without escapes (the usual key) it compares in place, making nothing (a props.*
        /// breakdown parses every row's JSON: a byte array per key read was 40 % of it).
        mutating func stringEquals(_ key: [UInt8]) -> Bool? {
            guard peek == UInt8(ascii: "\"") else { return nil }
            let start = i + 1
            var j = start
            while j < bytes.count, bytes[j] != UInt8(ascii: "\""), bytes[j] != UInt8(ascii: "\\") { j += 1 }
            guard j < bytes.count else { return nil }
            if bytes[j] == UInt8(ascii: "\"") {
                i = j + 1
                return j - start == key.count && key.withUnsafeBytes { ByteOrder.equal($0, UnsafeRawBufferPointer(rebasing: bytes[start..<j])) }
            }
            return string().map { $0 == key }
        }

        /// Skips a string, escapes and all; false when malformed.
        mutating func skipString() -> Bool {
            guard take(UInt8(ascii: "\"")) else { return false }
            while i < bytes.count {
                let c = bytes[i]
                i += 1
                if c == UInt8(ascii: "\"") { return true }
                if c == UInt8(ascii: "\\") {
                    guard i < bytes.count else { return false }
                    i += 1
                    // As `string()`: \u takes four hex digits.
                    if bytes[i - 1] == UInt8(ascii: "u") && hex4() == nil { return false }
                }
            }
            return false
        }

        /// A string's unescaped UTF-8 bytes.
        mutating func string() -> [UInt8]? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            var out: [UInt8] = []
            while let c = peek {
                i += 1
                if c == UInt8(ascii: "\"") { return out }
                if c != UInt8(ascii: "\\") {
                    out.append(c)
                    continue
                }
                guard let e = peek else { return nil }
                i += 1
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"):
                    guard var scalar = hex4() else { return nil }
                    if (0xD800..<0xDC00).contains(scalar), take(UInt8(ascii: "\\")), take(UInt8(ascii: "u")),
                       let low = hex4(), (0xDC00..<0xE000).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    out.append(contentsOf: String(Character(Unicode.Scalar(scalar) ?? "\u{FFFD}")).utf8)
                default: out.append(e)
                }
            }
            return nil
        }

        mutating func hex4() -> UInt32? {
            guard i + 4 <= bytes.count else { return nil }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[i]
                i += 1
                let d: UInt8
                switch c {
                case 48...57: d = c - 48
                case 65...70: d = c - 55
                case 97...102: d = c - 87
                default: return nil
                }
                v = v << 4 | UInt32(d)
            }
            return v
        }

        mutating func value() -> QueryValue? {
            guard let c = peek else { return nil }
            switch c {
            case UInt8(ascii: "\""): return string().map { .string(String(decoding: $0, as: UTF8.self)) }
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let start = i
                guard skip() else { return nil }
                return .string(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self))
            case UInt8(ascii: "t"): return skip() ? .string("true") : nil
            case UInt8(ascii: "f"): return skip() ? .string("false") : nil
            case UInt8(ascii: "n"): return nil
            default:
                let start = i
                while let d = peek, (48...57).contains(d) || d == UInt8(ascii: "-") || d == UInt8(ascii: "+")
                    || d == UInt8(ascii: ".") || d == UInt8(ascii: "e") || d == UInt8(ascii: "E") { i += 1 }
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
                if let v = Int64(text) { return .int(v) }
                if let v = Double(text), v.isFinite { return .double(v) }
                return nil
            }
        }

        /// Skips one value; false when malformed.
        mutating func skip() -> Bool {
            guard let c = peek else { return false }
            switch c {
            case UInt8(ascii: "\""): return skipString()
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                var depth = 0
                while let d = peek {
                    if d == UInt8(ascii: "\"") {
                        guard skipString() else { return false }
                        continue
                    }
                    i += 1
                    if d == UInt8(ascii: "{") || d == UInt8(ascii: "[") { depth += 1 }
                    if d == UInt8(ascii: "}") || d == UInt8(ascii: "]") {
                        depth -= 1
                        if depth == 0 { return true }
                    }
                }
                return false
            default:
                while let d = peek, d != UInt8(ascii: ","), d != UInt8(ascii: "}"), d != UInt8(ascii: "]"),
                    d != 0x20, d != 0x0A, d != 0x0D, d != 0x09 { i += 1 }
                return true
            }
        }
    }
}
