import Engine
import Foundation

/// Every setting of `tally serve`, from a JSON config file, the environment (`TALLY_<KEY>`) and
/// flags, in rising precedence. The table `TallySettings.all` is the one list; the README's
/// configuration section repeats it (a test checks that they agree).
public struct TallySettings: Sendable {
    public enum Kind: Sendable {
        case string, integer, list
    }

    public struct Spec: Sendable {
        /// The key in the config file; `TALLY_` + uppercased (dots as `_`) in the environment.
        public var key: String
        public var kind: Kind
        public var defaultValue: String
        public var help: String

        public var environmentName: String {
            "TALLY_" + key.uppercased().replacingOccurrences(of: ".", with: "_")
        }
    }

    public static let all: [Spec] = [
        Spec(key: "data", kind: .string, defaultValue: "./data", help: "Data directory: event parts, WAL, meta.sqlite."),
        Spec(key: "host", kind: .string, defaultValue: "127.0.0.1", help: "Address to listen on."),
        Spec(key: "port", kind: .integer, defaultValue: "8080", help: "Port to listen on."),
        Spec(key: "admin_token", kind: .string, defaultValue: "",
             help: "Bearer token for /v1/admin/...; empty disables the admin API."),
        Spec(key: "max_body_bytes", kind: .integer, defaultValue: "8388608", help: "Largest request body (413 above)."),
        Spec(key: "max_events", kind: .integer, defaultValue: "10000", help: "Most events per request (413 above)."),
        Spec(key: "retry_after_seconds", kind: .integer, defaultValue: "1",
             help: "Retry-After sent with 503 when ingest is over its buffer bound."),
        Spec(key: "overload_wait_ms", kind: .integer, defaultValue: "1000",
             help: "How long a request waits while the buffer is over 1.25 x flush_bytes (the flush is behind) before it goes on, or gets the 503 if the buffer is still over its bound; 0 = no wait."),
        Spec(key: "rate_limit_per_ip", kind: .integer, defaultValue: "1000",
             help: "Requests a minute per client address (429 above); 0 = no limit."),
        Spec(key: "rate_limit_per_key", kind: .integer, defaultValue: "0",
             help: "Requests a minute per write key (429 above); 0 = no limit."),
        Spec(key: "country_header", kind: .string, defaultValue: "",
             help: "Header a trusted proxy sets with the client's country, e.g. CF-IPCountry."),
        Spec(key: "default_origins", kind: .list, defaultValue: "*",
             help: "Allowed origins (CORS) of properties created without any, comma-separated; * = any."),
        Spec(key: "raw_retention_days", kind: .integer, defaultValue: "90",
             help: "Raw-event retention of properties created without one."),
        Spec(key: "rollup_retention_days", kind: .integer, defaultValue: "730",
             help: "Rollup retention of properties created without one."),
        Spec(key: "bot_patterns_file", kind: .string, defaultValue: "",
             help: "Extra bot User-Agent rules, in the format of Sources/Server/Resources/bot-patterns.txt."),
        Spec(key: "is_bot.always", kind: .list, defaultValue: "",
             help: "User-Agent substrings always filtered as bots (reason \"config\")."),
        Spec(key: "is_bot.never", kind: .list, defaultValue: "",
             help: "User-Agent substrings never filtered, whatever the rules say."),
        Spec(key: "query_timeout_ms", kind: .integer, defaultValue: "30000",
             help: "Wall time after which a report query stops with an error (422)."),
        Spec(key: "query_max_groups", kind: .integer, defaultValue: "1000000",
             help: "Most groups one report query may hold in memory (422 above)."),
        Spec(key: "flush_rows", kind: .integer, defaultValue: "1048576",
             help: "Buffered events that start a flush to a part (ingest answers 503 at twice the bound)."),
        Spec(key: "flush_bytes", kind: .integer, defaultValue: "16777216",
             help: "Buffered bytes that start a flush (503 at twice the bound)."),
        Spec(key: "flush_age_ms", kind: .integer, defaultValue: "10000",
             help: "Oldest buffered event's age that starts a flush."),
        Spec(key: "dedupe_window_hours", kind: .integer, defaultValue: "168",
             help: "How long an event id is remembered to drop duplicates."),
        Spec(key: "rollup_cache_bytes", kind: .integer, defaultValue: "67108864",
             help: "Decoded rollup rows kept in memory between queries (least recently used dropped first)."),
    ]

    /// Values as given (text; lists comma-separated), by key.
    public private(set) var values: [String: String] = [:]

    public init() {}

    /// Layers the config file (a JSON object; `is_bot` may be an object with `always`/`never`),
    /// then the environment, then `flags` (by key). An unknown key or a value of the wrong type
    /// is an error naming the file or variable and the key.
    public init(configFile: String?, environment: [String: String], flags: [String: String]) throws(SettingsError) {
        if let configFile { try load(file: configFile) }
        for spec in Self.all {
            if let v = environment[spec.environmentName] { try set(spec.key, v, source: spec.environmentName) }
        }
        for (key, value) in flags.sorted(by: { $0.key < $1.key }) { try set(key, value, source: "--\(key)") }
    }

    mutating func load(file path: String) throws(SettingsError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SettingsError(message: "\(path): cannot read the config file")
        }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw SettingsError(message: "\(path): not valid JSON (\(Self.reason(error)))")
        }
        guard let top = object as? [String: Any] else {
            throw SettingsError(message: "\(path): expected a JSON object of settings")
        }
        var flat: [(String, Any)] = []
        for (key, value) in top {
            if let nested = value as? [String: Any] {
                for (inner, v) in nested { flat.append((key + "." + inner, v)) }
            } else {
                flat.append((key, value))
            }
        }
        for (key, value) in flat.sorted(by: { $0.0 < $1.0 }) {
            guard let spec = Self.spec(key) else {
                throw SettingsError(message: "\(path): unknown setting \"\(key)\" (known: \(Self.all.map(\.key).joined(separator: ", ")))")
            }
            let text: String
            switch (spec.kind, value) {
            case (.string, let s as String): text = s
            case (.integer, let n as NSNumber) where Int(exactly: n.doubleValue) != nil: text = String(Int(n.doubleValue))
            case (.list, let a as [Any]):
                let strings = a.compactMap { $0 as? String }
                guard strings.count == a.count else {
                    throw SettingsError(message: "\(path): \"\(key)\" must be an array of strings")
                }
                text = strings.joined(separator: ",")
            case (.list, let s as String): text = s
            default:
                let expected = switch spec.kind { case .string: "a string"; case .integer: "an integer"; case .list: "an array of strings" }
                throw SettingsError(message: "\(path): \"\(key)\" must be \(expected)")
            }
            try set(key, text, source: path)
        }
    }

    mutating func set(_ key: String, _ value: String, source: String) throws(SettingsError) {
        guard let spec = Self.spec(key) else {
            throw SettingsError(message: "\(source): unknown setting \"\(key)\"")
        }
        if spec.kind == .integer, Int(value.trimmingCharacters(in: .whitespaces)) == nil {
            throw SettingsError(message: "\(source): \"\(key)\" must be an integer, not \"\(value)\"")
        }
        values[key] = value
    }

    static func spec(_ key: String) -> Spec? { all.first { $0.key == key } }

    static func reason(_ error: any Error) -> String {
        (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
    }

    // MARK: Typed access

    public func string(_ key: String) -> String {
        values[key] ?? Self.spec(key)?.defaultValue ?? ""
    }

    public func integer(_ key: String) -> Int {
        Int(string(key).trimmingCharacters(in: .whitespaces)) ?? 0
    }

    public func list(_ key: String) -> [String] {
        string(key).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    public var dataDirectory: String { string("data") }

    /// The server's configuration; reads the bot patterns file if one is set.
    public func serverConfiguration() throws(SettingsError) -> ServerConfiguration {
        var c = ServerConfiguration()
        c.host = string("host")
        c.port = integer("port")
        let token = string("admin_token")
        c.adminToken = token.isEmpty ? nil : token
        c.maxBodyBytes = integer("max_body_bytes")
        c.maxEventsPerRequest = integer("max_events")
        c.retryAfterSeconds = integer("retry_after_seconds")
        c.overloadWaitMilliseconds = integer("overload_wait_ms")
        c.requestsPerMinutePerIP = integer("rate_limit_per_ip")
        c.requestsPerMinutePerKey = integer("rate_limit_per_key")
        let header = string("country_header")
        c.countryHeader = header.isEmpty ? nil : header
        c.defaultOrigins = list("default_origins")
        c.defaultRawRetentionDays = integer("raw_retention_days")
        c.defaultRollupRetentionDays = integer("rollup_retention_days")
        var bots = BotRules.builtIn
        let file = string("bot_patterns_file")
        if !file.isEmpty {
            do { try bots.add(fileAt: file) } catch { throw SettingsError(message: "\(error)") }
        }
        bots.always = list("is_bot.always").map { $0.lowercased() }
        bots.never = list("is_bot.never").map { $0.lowercased() }
        c.bots = bots
        c.queryTimeoutMilliseconds = integer("query_timeout_ms")
        c.queryMaxGroups = integer("query_max_groups")
        for (key, value, minimum) in [("port", c.port, 0), ("max_body_bytes", c.maxBodyBytes, 1),
                                      ("max_events", c.maxEventsPerRequest, 1),
                                      ("retry_after_seconds", c.retryAfterSeconds, 0),
                                      ("overload_wait_ms", c.overloadWaitMilliseconds, 0),
                                      ("rate_limit_per_ip", c.requestsPerMinutePerIP, 0),
                                      ("rate_limit_per_key", c.requestsPerMinutePerKey, 0),
                                      ("query_timeout_ms", c.queryTimeoutMilliseconds, 1),
                                      ("query_max_groups", c.queryMaxGroups, 1)] where value < minimum {
            throw SettingsError(message: "\(key) must be at least \(minimum), not \(value)")
        }
        guard c.port <= 65535 else { throw SettingsError(message: "port must be at most 65535, not \(c.port)") }
        return c
    }

    /// The event store's options for the data directory.
    public func storeOptions() throws(SettingsError) -> StoreOptions {
        var o = StoreOptions(directory: dataDirectory)
        for key in ["flush_rows", "flush_bytes", "flush_age_ms", "dedupe_window_hours"] where integer(key) < 1 {
            throw SettingsError(message: "\(key) must be at least 1, not \(integer(key))")
        }
        o.flushRows = integer("flush_rows")
        o.flushBytes = integer("flush_bytes")
        o.flushAge = Int64(integer("flush_age_ms"))
        o.dedupeWindow = Int64(integer("dedupe_window_hours")) * 3_600_000
        guard integer("rollup_cache_bytes") >= 0 else {
            throw SettingsError(message: "rollup_cache_bytes must be at least 0, not \(integer("rollup_cache_bytes"))")
        }
        o.rollupCacheBytes = integer("rollup_cache_bytes")
        return o
    }
}

public struct SettingsError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}
