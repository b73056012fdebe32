/// Base62 (`0-9A-Za-z`) text for random bytes: no `-`, `_` or `+`, so a key is one word to
/// double-click and survives URLs, shells and YAML unquoted.
enum Base62 {
    static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    /// The big-endian number in `bytes`, in exactly `ceil(8 * bytes.count / log2(62))` digits
    /// (43 for 32 bytes), so every key of one kind has the same length.
    static func encode(_ bytes: some Collection<UInt8>) -> String {
        var number = Array(bytes)
        let width = Int((Double(number.count * 8) / 5.954196310386876).rounded(.up))  // log2(62)
        var digits = [UInt8](repeating: alphabet[0], count: width)
        var position = width
        // Schoolbook division by 62; 32 bytes is 43 passes over at most 32 bytes.
        while number.contains(where: { $0 != 0 }) {
            var remainder = 0
            for i in number.indices {
                let value = remainder << 8 | Int(number[i])
                number[i] = UInt8(value / 62)
                remainder = value % 62
            }
            position -= 1
            digits[position] = alphabet[remainder]
        }
        return String(decoding: digits, as: UTF8.self)
    }

    static func isDigit(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
    }
}
