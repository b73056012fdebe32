import Foundation

/// Which User-Agents are bots, and why: substring rules from `Resources/bot-patterns.txt`
/// (compiled in), plus a deployment's own file and its `is_bot` overrides.
public struct BotRules: Sendable {
    public struct Rule: Sendable, Equatable {
        /// Lowercased substring of the User-Agent.
        public var pattern: String
        /// What is reported: crawler, preview, headless, monitor, library, config, ...
        public var reason: String

        public init(pattern: String, reason: String) {
            self.pattern = pattern.lowercased()
            self.reason = reason
        }
    }

    public private(set) var rules: [Rule]
    /// Lowercased substrings that always mark a bot (`is_bot.always`), reason "config".
    public var always: [String] = []
    /// Lowercased substrings that never mark a bot (`is_bot.never`), winning over every rule.
    public var never: [String] = []

    public init(rules: [Rule]) {
        self.rules = rules
    }

    /// The list shipped with Tally.
    public static let builtIn: BotRules = {
        // The embedded file is part of the build and parsed by the tests, so it is well formed.
        BotRules(rules: (try? parse(String(decoding: PackageResources.bot_patterns_txt, as: UTF8.self),
                                        source: "bot-patterns.txt")) ?? [])
    }()

    /// Rules of the file format `REASON SUBSTRING` per line, `#` comments; an error names the
    /// source and line.
    public static func parse(_ text: String, source: String) throws -> [Rule] {
        var rules: [Rule] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard let space = trimmed.firstIndex(where: { $0 == " " || $0 == "\t" }) else {
                throw BotRulesError(message: "\(source):\(n + 1): expected 'REASON SUBSTRING', got '\(trimmed)'")
            }
            let reason = String(trimmed[..<space])
            let pattern = trimmed[space...].trimmingCharacters(in: .whitespaces).lowercased()
            guard !pattern.isEmpty else {
                throw BotRulesError(message: "\(source):\(n + 1): the rule has a reason but no substring")
            }
            rules.append(Rule(pattern: pattern, reason: reason))
        }
        return rules
    }

    /// Adds the rules of a file in the same format (checked before the built-in ones).
    public mutating func add(fileAt path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BotRulesError(message: "\(path): cannot read the bot patterns file")
        }
        rules = try Self.parse(String(decoding: data, as: UTF8.self), source: path) + rules
    }

    /// Why the client with this User-Agent is a bot (the rule's reason), or nil for a person.
    public func reason(forUserAgent userAgent: String) -> String? {
        reason(lowercased: userAgent.lowercased())
    }

    /// Why `ua` (already lowercased) is a bot, or nil.
    func reason(lowercased ua: String) -> String? {
        var ua = ua
        return ua.withUTF8 { reason(lowercasedBytes: UnsafeRawBufferPointer($0)) }
    }

    /// Why the user agent with these (lowercased UTF-8) bytes is a bot, or nil.
    func reason(lowercasedBytes ua: UnsafeRawBufferPointer) -> String? {
        if never.contains(where: { ByteSearch.contains(ua, $0) }) { return nil }
        if always.contains(where: { ByteSearch.contains(ua, $0) }) { return "config" }
        return rules.first { ByteSearch.contains(ua, $0.pattern) }?.reason
    }
}

public struct BotRulesError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
