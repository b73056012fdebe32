import Engine
import Foundation

/// Checks of what a user gives for a new property, each error naming the value.
enum PropertyValidation {
    /// Property ids appear in URLs, file names and events' `site_id`, so they are kept to a safe
    /// alphabet and to the longest `site_id` ingest accepts (128 bytes).
    static let maximumIDLength = EventColumn.siteID.maxLength
    static let maximumNameLength = 256

    static func id(_ id: String) throws(MetadataError) -> String {
        let u = id.utf8
        guard !u.isEmpty, u.count <= maximumIDLength,
            u.allSatisfy({
                Base62.isDigit($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-")
            })
        else {
            throw MetadataError(
                .invalidArgument,
                "property id '\(id)' is invalid: use 1–\(maximumIDLength) characters of A-Z a-z 0-9 . _ -").about("id")
        }
        return id
    }

    static func name(_ name: String, id: String) throws(MetadataError) -> String {
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty, trimmed.count <= maximumNameLength,
            !trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            throw MetadataError(
                .invalidArgument,
                "name of property '\(id)' is invalid: use 1–\(maximumNameLength) printable characters").about("name")
        }
        return trimmed
    }

    /// `identifier` when it names an IANA time zone (`Europe/Berlin`, `UTC`). Kept as given:
    /// Foundation on Linux reports `UTC`'s identifier as `GMT`.
    static func timezone(_ identifier: String, id: String) throws(MetadataError) -> String {
        guard TimeZone(identifier: identifier) != nil else {
            throw MetadataError(
                .invalidArgument,
                "timezone '\(identifier)' of property '\(id)' is not a known IANA time zone (e.g. UTC, Europe/Berlin)").about("timezone")
        }
        return identifier
    }

    /// Each origin normalized, duplicates dropped, order kept.
    static func origins(_ origins: [String]) throws(MetadataError) -> [String] {
        var result: [String] = []
        for o in origins {
            let n: String
            do { n = try Origin.normalize(o) } catch { throw error.about("origins") }
            if !result.contains(n) { result.append(n) }
        }
        return result
    }
}

extension PropertyValidation {
    /// Raw events are kept 1 day to 10 years; rollups at least as long as raw events.
    static func retention(raw: Int, rollup: Int, id: String) throws(MetadataError) -> (Int, Int) {
        guard (1...3650).contains(raw) else {
            throw MetadataError(.invalidArgument, "raw_retention_days of property '\(id)' must be 1–3650, not \(raw)").about("raw_retention_days")
        }
        guard (raw...36500).contains(rollup) else {
            throw MetadataError(
                .invalidArgument,
                "rollup_retention_days of property '\(id)' must be at least raw_retention_days (\(raw)), not \(rollup)")
                .about("rollup_retention_days")
        }
        return (raw, rollup)
    }
}
