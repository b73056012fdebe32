// Realistic user-agent strings with the device type, browser and OS a UA parser would report.

struct UserAgentSeed {
    enum Group { case web, app, sdk }
    let ua: String
    let device: String  // "desktop" | "mobile" | "tablet" | "" (unparsed)
    let browser: String?  // nil: not parsed (server SDKs)
    let os: String?
    let weight: Double
    let group: Group
}

enum UserAgents {
    /// A family of UA strings: `make(i)` builds the i-th (newest first), weights fall as 1/(i+1).
    private static func family(
        _ count: Int, share: Double, device: String, browser: String?, os: String?,
        group: UserAgentSeed.Group = .web, _ make: (Int) -> String
    ) -> [UserAgentSeed] {
        let w = (0..<count).map { 1.0 / Double($0 + 1) }
        let total = w.reduce(0, +)
        return (0..<count).map {
            UserAgentSeed(
                ua: make($0), device: device, browser: browser, os: os, weight: share * w[$0] / total, group: group)
        }
    }

    static let all: [UserAgentSeed] = build()

    private static func build() -> [UserAgentSeed] {
        var out: [UserAgentSeed] = []
        let chrome = Array((132...143).reversed())
        let iosVersions: [(os: String, version: String)] = [
            ("18_6", "26.1"), ("18_6", "26.0"), ("18_6_2", "18.6"), ("18_5", "18.5"), ("18_4_1", "18.4"),
            ("18_3_2", "18.3"), ("18_2", "18.2"), ("18_1_1", "18.1"), ("18_0", "18.0"), ("17_7", "17.7"),
            ("17_6_1", "17.6"), ("16_7_10", "16.6"),
        ]
        // Desktop.
        out += family(chrome.count, share: 0.16, device: "desktop", browser: "Chrome", os: "Windows") {
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/\(chrome[$0]).0.0.0 Safari/537.36"
        }
        out += family(chrome.count, share: 0.05, device: "desktop", browser: "Chrome", os: "macOS") {
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/\(chrome[$0]).0.0.0 Safari/537.36"
        }
        out += family(8, share: 0.012, device: "desktop", browser: "Chrome", os: "Linux") {
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/\(chrome[$0]).0.0.0 Safari/537.36"
        }
        out += family(chrome.count, share: 0.04, device: "desktop", browser: "Edge", os: "Windows") {
            let v = chrome[$0]
            return
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/\(v).0.0.0 Safari/537.36 Edg/\(v).0.\(3000 + v * 7).\(v % 90)"
        }
        out += family(11, share: 0.03, device: "desktop", browser: "Firefox", os: "Windows") {
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:\(145 - $0).0) Gecko/20100101 Firefox/\(145 - $0).0"
        }
        out += family(6, share: 0.006, device: "desktop", browser: "Firefox", os: "Linux") {
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:\(145 - $0).0) Gecko/20100101 Firefox/\(145 - $0).0"
        }
        out += family(6, share: 0.006, device: "desktop", browser: "Firefox", os: "macOS") {
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:\(145 - $0).0) Gecko/20100101 Firefox/\(145 - $0).0"
        }
        out += family(10, share: 0.035, device: "desktop", browser: "Safari", os: "macOS") {
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/\(iosVersions[$0].version) Safari/605.1.15"
        }
        out += family(9, share: 0.03, device: "desktop", browser: "Yandex Browser", os: "Windows") {
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/\(chrome[$0 + 1]).0.0.0 YaBrowser/25.\(10 - $0).0.0 Safari/537.36"
        }
        out += family(5, share: 0.01, device: "desktop", browser: "Opera", os: "Windows") {
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/\(chrome[$0 + 1]).0.0.0 Safari/537.36 OPR/\(chrome[$0 + 1] - 16).0.0.0"
        }
        // Mobile.
        out += family(iosVersions.count, share: 0.20, device: "mobile", browser: "Mobile Safari", os: "iOS") {
            let v = iosVersions[$0]
            return
                "Mozilla/5.0 (iPhone; CPU iPhone OS \(v.os) like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/\(v.version) Mobile/15E148 Safari/604.1"
        }
        out += family(6, share: 0.02, device: "mobile", browser: "Chrome", os: "iOS") {
            "Mozilla/5.0 (iPhone; CPU iPhone OS \(iosVersions[$0 + 2].os) like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/\(chrome[$0]).0.\(7000 - $0 * 91).\(40 + $0) Mobile/15E148 Safari/604.1"
        }
        out += family(chrome.count, share: 0.20, device: "mobile", browser: "Chrome Mobile", os: "Android") {
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/\(chrome[$0]).0.0.0 Mobile Safari/537.36"
        }
        let samsungModels = ["SM-S938B", "SM-S928B", "SM-S921B", "SM-A556B", "SM-A356B"]
        out += family(15, share: 0.06, device: "mobile", browser: "Samsung Internet", os: "Android") {
            let model = samsungModels[$0 % 5]
            let ver = 28 - $0 / 5
            return
                "Mozilla/5.0 (Linux; Android \(15 - $0 / 5); SAMSUNG \(model)) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/\(ver).0 Chrome/\(130 - $0 / 5 * 3).0.0.0 Mobile Safari/537.36"
        }
        let xiaomiModels = ["24129PN74G", "23116PN5BC", "2312DRA50G", "24069RA21G"]
        out += family(8, share: 0.05, device: "mobile", browser: "Yandex Browser", os: "Android") {
            "Mozilla/5.0 (Linux; Android \(15 - $0 / 4); \(xiaomiModels[$0 % 4])) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/\(chrome[$0 + 1]).0.0.0 YaBrowser/25.\(10 - $0).1.\(100 + $0 * 13).00 SA/3 Mobile Safari/537.36"
        }
        out += family(5, share: 0.01, device: "mobile", browser: "Firefox Mobile", os: "Android") {
            "Mozilla/5.0 (Android \(15 - $0 / 2); Mobile; rv:\(145 - $0).0) Gecko/\(145 - $0).0 Firefox/\(145 - $0).0"
        }
        out += family(4, share: 0.008, device: "mobile", browser: "Edge Mobile", os: "Android") {
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/\(chrome[$0]).0.0.0 Mobile Safari/537.36 EdgA/\(chrome[$0]).0.0.0"
        }
        out += family(3, share: 0.008, device: "mobile", browser: "MIUI Browser", os: "Android") {
            "Mozilla/5.0 (Linux; U; Android \(14 - $0); ru-ru; \(xiaomiModels[$0 + 1]) Build/UKQ1.231003.002) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/\(122 - $0 * 3).0.6261.119 Mobile Safari/537.36 XiaoMi/MiuiBrowser/14.\(30 - $0 * 4).0-gn"
        }
        // Tablets.
        out += family(6, share: 0.03, device: "tablet", browser: "Mobile Safari", os: "iPadOS") {
            let v = iosVersions[$0 + 2]
            return
                "Mozilla/5.0 (iPad; CPU OS \(v.os) like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/\(v.version) Mobile/15E148 Safari/604.1"
        }
        let tabletModels = ["SM-X910", "SM-X710", "SM-X520", "23043RP34G"]
        out += family(8, share: 0.02, device: "tablet", browser: "Chrome", os: "Android") {
            "Mozilla/5.0 (Linux; Android \(15 - $0 / 4); \(tabletModels[$0 % 4])) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/\(chrome[$0]).0.0.0 Safari/537.36"
        }
        // In-app web views (source "mobile_app").
        let appModels = ["SM-S928B", "SM-A556B", "Pixel 9", "24129PN74G", "CPH2581"]
        out += family(10, share: 0.6, device: "mobile", browser: "Android WebView", os: "Android", group: .app) {
            "Mozilla/5.0 (Linux; Android \(15 - $0 / 5); \(appModels[$0 % 5]) Build/AP3A.240905.015; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/\(chrome[$0 / 2]).0.\(6900 - $0 * 37).\(100 + $0) Mobile Safari/537.36"
        }
        out += family(7, share: 0.35, device: "mobile", browser: "WKWebView", os: "iOS", group: .app) {
            "Mozilla/5.0 (iPhone; CPU iPhone OS \(iosVersions[$0 + 1].os) like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
        }
        out += family(3, share: 0.05, device: "tablet", browser: "WKWebView", os: "iPadOS", group: .app) {
            "Mozilla/5.0 (iPad; CPU OS \(iosVersions[$0 + 2].os) like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
        }
        // Server-side SDKs (source "api"): not parsed into device/browser/os.
        let sdks = [
            "tally-php/1.4.2 (WordPress/6.8.3; PHP/8.3.12)", "tally-php/1.3.0 (WordPress/6.7.1; PHP/8.2.24)",
            "python-requests/2.32.3", "Go-http-client/2.0", "okhttp/4.12.0",
            "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
        ]
        out += family(sdks.count, share: 1, device: "", browser: nil, os: nil, group: .sdk) { sdks[$0] }
        return out
    }
}
