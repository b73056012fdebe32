/// A browser origin as a property's allow-list holds it: `scheme://host[:port]`, lowercased, or `*`.
enum Origin {
    /// `text` lowercased, or an error saying what is wrong with it. No path, query, user or
    /// trailing slash: a browser's `Origin` header never has them, so an entry with one would
    /// never match.
    static func normalize(_ text: String) throws(MetadataError) -> String {
        if text == "*" { return text }
        func invalid(_ why: String) -> MetadataError {
            MetadataError(.invalidArgument, "origin '\(text)' \(why); expected scheme://host[:port] or *")
        }
        let lower = text.lowercased()
        guard let separator = lower.range(of: "://") else { throw invalid("has no scheme") }
        let scheme = lower[..<separator.lowerBound]
        guard let first = scheme.first, first.isASCII, first.isLetter,
            scheme.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+.-".contains($0)) })
        else { throw invalid("has an invalid scheme") }

        var authority = lower[separator.upperBound...]
        if authority.contains(where: { "/?#@".contains($0) }) {
            throw invalid("has a path, query, fragment or user part")
        }
        var port: Substring?
        if authority.hasPrefix("[") {  // IPv6 literal: [::1]:8080
            guard let close = authority.firstIndex(of: "]") else { throw invalid("has an unclosed '['") }
            let address = authority[authority.index(after: authority.startIndex)..<close]
            guard !address.isEmpty, address.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                throw invalid("has an invalid IPv6 address")
            }
            let rest = authority[authority.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { throw invalid("has text after ']'") }
                port = rest.dropFirst()
            }
        } else {
            if let colon = authority.firstIndex(of: ":") {
                port = authority[authority.index(after: colon)...]
                authority = authority[..<colon]
            }
            guard isHostName(authority) else { throw invalid("has an invalid host") }
        }
        if let port {
            guard !port.isEmpty, port.count <= 5, port.allSatisfy({ $0.isASCII && $0.isNumber }),
                let n = Int(port), (1...65535).contains(n)
            else { throw invalid("has an invalid port") }
        }
        return lower
    }

    /// Dot-separated labels of letters, digits and hyphens, 1–63 characters each, 253 in all
    /// (RFC 1123); IPv4 addresses pass too.
    static func isHostName(_ host: Substring) -> Bool {
        guard !host.isEmpty, host.utf8.count <= 253 else { return false }
        return host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }
}
