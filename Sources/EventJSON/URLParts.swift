/// The two pieces of a URL the reader derives: the path (for `page_path`) and the host (for
/// `referrer_domain`). RFC 3986's generic syntax, read loosely: no percent-decoding, no
/// normalisation beyond what is said here.
enum URLParts {
    /// Where the authority (`user@host:port`) starts: after `scheme://` or a leading `//`.
    static func authorityStart(_ p: UnsafePointer<UInt8>, count n: Int) -> Int? {
        if n >= 2 && p[0] == UInt8(ascii: "/") && p[1] == UInt8(ascii: "/") { return 2 }
        guard n > 0, isAlpha(p[0]) else { return nil }
        var i = 1
        while i < n {
            let b = p[i]
            if isAlpha(b) || (b &- UInt8(ascii: "0")) < 10 || b == UInt8(ascii: "+") || b == UInt8(ascii: "-")
                || b == UInt8(ascii: ".")
            {
                i += 1
                continue
            }
            if b == UInt8(ascii: ":") && i + 2 < n && p[i + 1] == UInt8(ascii: "/") && p[i + 2] == UInt8(ascii: "/") {
                return i + 3
            }
            return nil
        }
        return nil
    }

    /// The path of `url`: from the end of the authority (or the start, for a URL that begins
    /// with `/`) to the first `?` or `#`. Nil means "/" (an authority with an empty path).
    /// A URL with neither an authority nor a leading `/` has an empty path.
    static func path(_ p: UnsafePointer<UInt8>, count n: Int) -> Range<Int>? {
        var start = 0
        if let a = authorityStart(p, count: n) {
            start = firstIndex(p, from: a, to: n) { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }
        } else if n == 0 || p[0] != UInt8(ascii: "/") {
            return 0..<0
        }
        let end = firstIndex(p, from: start, to: n) { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }
        return start == end ? nil : start..<end
    }

    /// The host of `url` without user info or port. A string without a scheme is read as
    /// `host[/...]` (as in `google.com/search`) unless it starts with `/` or has a `:` before
    /// the first `/`, `?` or `#` (`about:blank`), which have no host.
    static func host(_ p: UnsafePointer<UInt8>, count n: Int) -> Range<Int> {
        let start: Int
        if let a = authorityStart(p, count: n) {
            start = a
        } else {
            guard n > 0, p[0] != UInt8(ascii: "/") else { return 0..<0 }
            start = 0
        }
        let end = firstIndex(p, from: start, to: n) {
            $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") || $0 == UInt8(ascii: "\\")
        }
        var hostStart = start
        var i = start
        while i < end {
            if p[i] == UInt8(ascii: "@") { hostStart = i + 1 }
            i += 1
        }
        if start == 0 && hostStart == 0 {
            // No scheme: a colon means this is not `host/...` but something like `about:blank`.
            if firstIndex(p, from: 0, to: end, where: { $0 == UInt8(ascii: ":") }) != end { return 0..<0 }
        }
        if hostStart < end && p[hostStart] == UInt8(ascii: "[") {
            // An IP literal: `[::1]:8080`.
            let close = firstIndex(p, from: hostStart, to: end) { $0 == UInt8(ascii: "]") }
            return close < end ? hostStart..<(close + 1) : hostStart..<end
        }
        let colon = firstIndex(p, from: hostStart, to: end) { $0 == UInt8(ascii: ":") }
        return hostStart..<colon
    }

    @inline(__always) private static func isAlpha(_ b: UInt8) -> Bool { (b | 0x20) &- UInt8(ascii: "a") < 26 }

    @inline(__always) private static func firstIndex(
        _ p: UnsafePointer<UInt8>, from: Int, to: Int, where match: (UInt8) -> Bool
    ) -> Int {
        var i = from
        while i < to && !match(p[i]) { i += 1 }
        return i
    }
}
