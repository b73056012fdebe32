/// What a User-Agent string says about the client: bot or not, device type, browser, OS.
///
/// Rules are data (the tables below, first match wins), checked on the lowercased string.
/// They cover the browsers and bots that make up nearly all traffic; anything unknown is
/// "Other" and counted, never guessed.
struct UserAgentClassifier: Sendable {
    let bots: BotRules

    init(bots: BotRules = .builtIn) {
        self.bots = bots
    }

    struct Result: Equatable, Sendable {
        /// Why the client counts as a bot (the matching rule's reason), nil for a person.
        var botReason: String?
        var isBot: Bool { botReason != nil }
        var device: String
        var browser: String
        var os: String
    }

    /// (substring, browser) — order matters: Edge and Opera carry "chrome/", Chrome carries "safari/".
    static let browsers: [(String, String)] = [
        ("edg/", "Edge"), ("edga/", "Edge"), ("edgios/", "Edge"), ("opr/", "Opera"), ("opera", "Opera"),
        ("samsungbrowser/", "Samsung Internet"), ("yabrowser/", "Yandex Browser"), ("ucbrowser/", "UC Browser"),
        ("firefox/", "Firefox"), ("fxios/", "Firefox"), ("crios/", "Chrome"), ("chrome/", "Chrome"),
        ("chromium/", "Chromium"), ("version/", "Safari"), ("safari/", "Safari"), ("msie ", "Internet Explorer"),
        ("trident/", "Internet Explorer"),
    ]

    /// (substring, os) — iOS before macOS (iPad user agents may say "Mac OS X").
    static let systems: [(String, String)] = [
        ("iphone", "iOS"), ("ipad", "iOS"), ("ipod", "iOS"), ("android", "Android"), ("cros", "ChromeOS"),
        ("windows", "Windows"), ("mac os x", "macOS"), ("macintosh", "macOS"), ("linux", "Linux"),
    ]

    func classify(_ userAgent: String) -> Result {
        var lowercased = userAgent.lowercased()
        if lowercased.isEmpty { return Result(botReason: nil, device: "", browser: "", os: "") }
        return lowercased.withUTF8 { utf8 in
            let ua = UnsafeRawBufferPointer(utf8)
            func has(_ s: String) -> Bool { ByteSearch.contains(ua, s) }
            let botReason = bots.reason(lowercasedBytes: ua)
            let browser = Self.browsers.first { has($0.0) }?.1 ?? "Other"
            let os = Self.systems.first { has($0.0) }?.1 ?? "Other"
            let device: String
            if has("ipad") || has("tablet") || (has("android") && !has("mobile")) {
                device = "tablet"
            } else if has("mobi") || has("iphone") || has("ipod") || has("android") {
                device = "mobile"
            } else {
                device = "desktop"
            }
            return Result(botReason: botReason, device: device, browser: browser, os: os)
        }
    }
}
