import AsyncHTTPClient
import NIOCore
import Foundation
import NIOHTTP1
import Server
import TallyTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

enum Chromium {
    static let driver = "/usr/bin/chromedriver"
    static let binary = "/usr/bin/chromium"
    static var installed: Bool {
        FileManager.default.isExecutableFile(atPath: driver) && FileManager.default.isExecutableFile(atPath: binary)
    }
}

/// The tracker in a real browser: headless Chromium driven over WebDriver (chromedriver), a
/// `tally serve` child on loopback, test pages served from another loopback port (so the
/// tracker posts cross-origin, as on a customer's site). `scripts/test` installs Chromium and
/// chromedriver (Debian `chromium`, `chromium-driver`); without them these tests do not run.
@Suite("Tracker in a browser", .serialized, .enabled(if: Chromium.installed))
struct BrowserTests {
    static let chromedriver = Chromium.driver
    static let chromium = Chromium.binary

    // MARK: HTTP

    struct HTTPFailure: Error, CustomStringConvertible {
        var description: String
    }

    static let client = HTTPClient(eventLoopGroupProvider: .singleton)

    /// One request, synchronously (from a thread that may block): status and JSON body (nil: no answer).
    static func call(_ method: String, _ url: String, json: Any? = nil, bearer: String? = nil, timeout: Int64 = 30)
        -> (status: Int, body: Any?)?
    {
        guard var request = try? HTTPClient.Request(url: url, method: HTTPMethod(rawValue: method)) else { return nil }
        if let json, let data = try? JSONSerialization.data(withJSONObject: json) {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(data)
        }
        if let bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        let response: HTTPClient.Response
        do {
            response = try client.execute(request: request, deadline: .now() + .seconds(timeout)).wait()
        } catch {
            return nil
        }
        let body = response.body.flatMap { b in try? JSONSerialization.jsonObject(with: Data(buffer: b), options: [.fragmentsAllowed]) }
        return (Int(response.status.code), body)
    }

    static func freePort() -> Int { try! LoopbackPort.free() }


    // MARK: The server

    final class Tally: @unchecked Sendable {
        let process = Process()
        let port: Int
        let data: String
        private(set) var writeKey = ""
        private(set) var readKey = ""

        init(data: String, port: Int) throws {
            self.data = data
            self.port = port
            try start()
        }

        func start() throws {
            let output = Pipe()
            let process = Process()
            process.executableURL = TallyBinary.url
            process.arguments = ["serve", "--data", data, "--port", String(port)]
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            running = process
            var text = ""
            let handle = output.fileHandleForReading
            while !text.contains("Tally listening") {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
            }
            for line in text.split(separator: "\n") {
                if line.contains("write key:"), let k = line.split(separator: " ").last { writeKey = String(k) }
                if line.contains("read key:"), let k = line.split(separator: " ").last { readKey = String(k) }
            }
            guard text.contains("Tally listening") else { throw HTTPFailure(description: "tally serve did not start: \(text)") }
        }

        private(set) var running: Process?

        func stop() {
            guard let p = running else { return }
            kill(p.processIdentifier, SIGTERM)
            p.waitUntilExit()
            running = nil
        }

        /// The stored events of the default property over the last week (newest first).
        func events() -> [[String: Any]] {
            let url = "http://127.0.0.1:\(port)/v1/events?period=7d&limit=1000&columns=event_id,event_type,page_path,properties,visitor_id,session_id"
            guard let (status, body) = BrowserTests.call("GET", url, bearer: readKey), status == 200 else { return [] }
            return (body as? [String: Any])?["data"] as? [[String: Any]] ?? []
        }

        /// Polls the stored events until `done` holds for them (or 30 s pass).
        func eventsWhen(_ done: ([[String: Any]]) -> Bool) -> [[String: Any]] {
            var events: [[String: Any]] = []
            for _ in 0..<150 {
                events = self.events()
                if done(events) { break }
                usleep(200_000)
            }
            return events
        }
    }

    // MARK: Test pages

    /// Every path answers the same page: the tracker tag, a widget below the fold, another far
    /// below (`storage: false`: the tag says data-storage="false").
    static func page(tally: Tally, storage: Bool = true) -> String {
        """
        <!doctype html><html><head><meta charset="utf-8"><title>Tracker test</title>
        <script defer src="http://127.0.0.1:\(tally.port)/t.js" data-key="\(tally.writeKey)"\(storage ? "" : " data-storage=\"false\"")></script></head>
        <body style="margin:0">
        <div style="height:2500px">top of the page</div>
        <div id="w1" data-widget-tracking data-mapping-id="7" data-post-id="42" data-widget-index="1"
             data-device-slug="pixel-9" style="height:300px;background:#eee">widget one</div>
        <div style="height:6000px"></div>
        <div id="w2" data-widget-tracking data-mapping-id="8" style="height:300px">widget two</div>
        </body></html>
        """
    }

    /// Runs blocking `body` (WebDriver and HTTP calls that wait) on a thread of its own, so that
    /// it never holds one of the few threads Swift concurrency (and the page server) runs on.
    static func onThread(_ body: @escaping @Sendable () throws -> Void) async throws {
        try await onOwnThread(body)
    }

    /// A tiny HTTP server for the test pages on its own thread (blocking sockets): it must not
    /// need Swift concurrency's few threads, which other tests' servers wait on. Paths under
    /// /other/ get `other`, every other path `html`.
    final class PageServer: @unchecked Sendable {
        let port: Int
        private let listener: Int32
        private let stopped = NSLock()
        private var isStopped = false

        init(html: String, other: String) throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            listener = fd
            var yes: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
            var bound = -1
            var chosen = 0
            for _ in 0..<20 where bound != 0 {
                chosen = BrowserTests.freePort()
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = in_port_t(UInt16(chosen).bigEndian)
                address.sin_addr.s_addr = inet_addr("127.0.0.1")
                bound = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Int(bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))) }
                }
            }
            guard bound == 0, listen(fd, 64) == 0 else {
                close(fd)
                throw HTTPFailure(description: "test page server: cannot listen")
            }
            port = chosen
            let pages = (html: Array(html.utf8), other: Array(other.utf8))
            Thread { [self] in
                while true {
                    let client = accept(fd, nil, nil)
                    if client < 0 { if stopped.withLock({ isStopped }) { return } else { continue } }
                    var request: [UInt8] = []
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    while !request.suffix(4).elementsEqual([13, 10, 13, 10]) {
                        let n = read(client, &buffer, buffer.count)
                        if n <= 0 { break }
                        request += buffer[0..<n]
                    }
                    let line = String(decoding: request.prefix { $0 != 13 }, as: UTF8.self)
                    let path = line.split(separator: " ").dropFirst().first.map(String.init) ?? "/"
                    let body = path.hasPrefix("/other/") ? pages.other : pages.html
                    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
                    let response = Array(head.utf8) + body
                    _ = response.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
                    close(client)
                }
            }.start()
        }

        func stop() {
            stopped.withLock { isStopped = true }
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
        }
    }

    // MARK: WebDriver

    final class Browser: @unchecked Sendable {
        let driver = Process()
        let port = BrowserTests.freePort()
        let profile = TemporaryDirectory("tally-chromium")
        var session = ""

        init() throws {
            driver.executableURL = URL(fileURLWithPath: BrowserTests.chromedriver)
            driver.arguments = ["--port=\(port)"]
            _ = FileManager.default.createFile(atPath: profile.path + "/chromedriver.log", contents: nil)
            let log = FileHandle(forWritingAtPath: profile.path + "/chromedriver.log")
            driver.standardOutput = log
            driver.standardError = log
            try driver.run()
            for _ in 0..<100 {
                if BrowserTests.call("GET", "http://127.0.0.1:\(port)/status", timeout: 2) != nil { break }
                usleep(100_000)
            }
            let capabilities: [String: Any] = ["capabilities": ["alwaysMatch": [
                "browserName": "chrome",
                "goog:chromeOptions": [
                    "binary": BrowserTests.chromium,
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                             "--window-size=1000,800", "--user-data-dir=\(profile.path)",
                             // Headless Chromium says "HeadlessChrome", which the server filters as a bot.
                             "--user-agent=Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"],
                ],
            ]]]
            guard let (status, body) = BrowserTests.call("POST", "http://127.0.0.1:\(port)/session", json: capabilities, timeout: 60),
                  status == 200, let value = (body as? [String: Any])?["value"] as? [String: Any],
                  let id = value["sessionId"] as? String
            else {
                kill(driver.processIdentifier, SIGKILL)
                let answer = BrowserTests.call("GET", "http://127.0.0.1:\(port)/status", timeout: 2)
                throw HTTPFailure(description: "chromedriver did not start a Chromium session (status: \(String(describing: answer)))")
            }
            session = id
        }

        @discardableResult
        func command(_ method: String, _ path: String, _ json: Any? = nil) throws -> Any? {
            let url = "http://127.0.0.1:\(port)/session/\(session)\(path)"
            guard let (status, body) = BrowserTests.call(method, url, json: json, timeout: 60) else {
                throw HTTPFailure(description: "\(method) \(path): no answer from chromedriver")
            }
            let value = (body as? [String: Any])?["value"]
            guard status == 200 else { throw HTTPFailure(description: "\(method) \(path): \(status) \(value ?? "")") }
            return value
        }

        func open(_ url: String) throws { try command("POST", "/url", ["url": url]) }

        @discardableResult
        func run(_ script: String) throws -> Any? {
            try command("POST", "/execute/sync", ["script": script, "args": [] as [Any]])
        }

        /// Runs `script` until it returns true (or 20 s pass).
        func waitFor(_ script: String) throws -> Bool {
            for _ in 0..<100 {
                if try run(script) as? Bool == true { return true }
                usleep(200_000)
            }
            return false
        }

        /// The WebDriver reference of the element `script` returns.
        func element(_ script: String) throws -> String? {
            let value = try run(script) as? [String: Any]
            return value?["element-6066-11e4-a52e-4f735466cecf"] as? String
        }

        func click(_ element: String) throws { try command("POST", "/element/\(element)/click", [:] as [String: Any]) }

        func type(_ text: String, into element: String) throws {
            try command("POST", "/element/\(element)/value", ["text": text])
        }

        func screenshot() throws -> Data? {
            (try command("GET", "/screenshot") as? String).flatMap { Data(base64Encoded: $0) }
        }

        deinit {
            _ = try? command("DELETE", "")
            // chromedriver does not always exit on SIGTERM; its browser is closed by now.
            kill(driver.processIdentifier, SIGKILL)
            driver.waitUntilExit()
        }
    }

    /// Checks made on the browser-driving thread (outside the test's task, where `#expect`
    /// cannot tell which test it belongs to); recorded as issues of the test when it ends.
    final class Problems: @unchecked Sendable {
        private let lock = NSLock()
        private var list: [String] = []
        func check(_ condition: Bool, _ message: @autoclosure () -> String = "", line: Int = #line) {
            if !condition { lock.withLock { list.append("line \(line): \(message())") } }
        }

        /// Records every failed check as an issue of the running test (call from its task).
        func record() {
            for p in lock.withLock({ list }) { Issue.record(Comment(rawValue: p)) }
        }
    }

    static func count(_ events: [[String: Any]], _ type: String, path: String? = nil) -> Int {
        events.filter { $0["event_type"] as? String == type && (path == nil || $0["page_path"] as? String == path) }.count
    }

    // MARK: Tests

    @Test("pageviews (also SPA routes), a widget seen and clicked, a custom event, the beacon on page hide: each stored once; a retry is dropped; events tracked while the server is down arrive once; without storage no ids")
    func tracker() async throws {
        let problems = Problems()
        defer { problems.record() }
        try await Self.onThread {
            let dir = TemporaryDirectory("tally-browser")
            let tally = try Tally(data: dir.path + "/data", port: Self.freePort())
            defer { tally.stop() }
            let pages = try PageServer(html: Self.page(tally: tally), other: Self.page(tally: tally, storage: false))
            defer { pages.stop() }
            let pagePort = pages.port
            let browser = try Browser()
            let site = "http://127.0.0.1:\(pagePort)"
            try browser.open(site + "/")
            problems.check(try browser.waitFor("return !!window.tally"))
            try browser.run("document.getElementById('w1').scrollIntoView({block: 'center'})")
            problems.check(try browser.waitFor(
                "return JSON.parse(localStorage.getItem('tally_queue') || '[]').some(e => e.event_type === 'widget_impression')"))
            try browser.run("document.getElementById('w1').click()")
            try browser.run("history.pushState({}, '', '/spa/route')")
            try browser.run("tally.track('signup', {plan: 'pro'})")
            // Leaving the page sends what is queued with sendBeacon.
            try browser.open("about:blank")

            var events = tally.eventsWhen { $0.count >= 5 }
            problems.check(Self.count(events, "page_view", path: "/") == 1)
            problems.check(Self.count(events, "page_view", path: "/spa/route") == 1)
            problems.check(Self.count(events, "widget_impression") == 1)
            problems.check(Self.count(events, "widget_click") == 1)
            problems.check(Self.count(events, "signup") == 1)
            problems.check(events.count == 5, "\(events)")
            let impression = events.first { $0["event_type"] as? String == "widget_impression" }
            let properties = impression?["properties"] as? [String: Any]
            problems.check(properties?["mapping_id"] as? Int == 7 && properties?["device_slug"] as? String == "pixel-9",
                  "\(impression ?? [:])")

            // The next page sends the beaconed events again (the tracker could not know they
            // arrived): the server drops them as duplicates, and only the new pageview is added.
            try browser.open(site + "/")
            problems.check(try browser.waitFor("return window.tally && localStorage.getItem('tally_queue') === '[]'"))
            events = tally.eventsWhen { Self.count($0, "page_view", path: "/") >= 2 }
            problems.check(Self.count(events, "page_view", path: "/") == 2)
            problems.check(events.count == 6, "\(events)")

            // Offline: the server goes away, events are tracked and kept; it comes back, they arrive once.
            tally.stop()
            try browser.run("tally.track('offline_one'); tally.track('offline_two'); tally.flush()")
            problems.check(try browser.waitFor(
                "return JSON.parse(localStorage.getItem('tally_queue') || '[]').filter(e => e.event_type.startsWith('offline')).length === 2"))
            usleep(1_000_000)  // the failed send
            try tally.start()
            for _ in 0..<60 {
                try browser.run("window.dispatchEvent(new Event('online'))")
                if try browser.run("return localStorage.getItem('tally_queue') === '[]'") as? Bool == true { break }
                usleep(500_000)
            }
            events = tally.eventsWhen { Self.count($0, "offline_one") >= 1 && Self.count($0, "offline_two") >= 1 }
            problems.check(Self.count(events, "offline_one") == 1 && Self.count(events, "offline_two") == 1)
            problems.check(events.count == 8, "\(events)")

            // Without storage (no consent): no ids, nothing kept, events still counted.
            try browser.open(site + "/other/anonymous")
            problems.check(try browser.waitFor("return !!window.tally"))
            try browser.run("tally.track('anonymous_event')")
            try browser.open("about:blank")
            events = tally.eventsWhen { Self.count($0, "anonymous_event") >= 1 && Self.count($0, "page_view", path: "/other/anonymous") >= 1 }
            let anonymous = events.filter { ($0["page_path"] as? String) == "/other/anonymous" || $0["event_type"] as? String == "anonymous_event" }
            problems.check(anonymous.count == 2, "\(events)")
            problems.check(anonymous.allSatisfy { ($0["visitor_id"] as? String ?? "") == "" && ($0["session_id"] as? String ?? "") == "" },
                  "\(anonymous)")
        }
    }

    /// Events of a few visitors, posted with a browser's User-Agent (not filtered as a bot).
    static func seed(_ tally: Tally) -> Bool {
        let now = ISO8601DateFormatter().string(from: Date())
        var events: [[String: Any]] = []
        let pages = ["/", "/pricing", "/pricing", "/blog", "/", "/pricing"]
        for v in 0..<6 {
            for (k, path) in pages.prefix(v + 1).enumerated() {
                events.append(["event_type": "page_view", "occurred_at": now, "visitor_id": "v\(v)", "session_id": "s\(v)",
                               "page_url": "https://shop.example\(path)" + (v % 2 == 0 ? "?utm_source=news&utm_campaign=winter" : ""),
                               "page_path": path, "event_id": "e\(v)-\(k)"])
            }
            events.append(["event_type": "widget_impression", "occurred_at": now, "visitor_id": "v\(v)", "session_id": "s\(v)",
                           "page_path": "/pricing", "event_id": "w\(v)", "properties": ["mapping_id": 7, "post_id": 42]])
        }
        var request = try! HTTPClient.Request(url: "http://127.0.0.1:\(tally.port)/v1/events", method: .POST)
        request.headers.add(name: "Authorization", value: "Bearer \(tally.writeKey)")
        request.headers.add(name: "User-Agent", value: userAgent)
        request.body = .bytes(try! JSONSerialization.data(withJSONObject: ["events": events]))
        guard let r = try? client.execute(request: request).wait(), r.status == .ok else { return false }
        return true
    }

    static let userAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"

    /// The API's own answer for the headline numbers.
    static func totals(_ tally: Tally, filters: String? = nil) -> [String: Any] {
        var url = "http://127.0.0.1:\(tally.port)/v1/properties/default/metrics?metrics=pageviews,unique_visitors,sessions&period=7d"
        if let filters { url += "&filters=" + filters.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed)! }
        let rows = (call("GET", url, bearer: tally.readKey)?.body as? [String: Any])?["data"] as? [[String: Any]]
        return rows?.first ?? [:]
    }

    @Test("the dashboard: sign in with the read key, the numbers the API gives, a table row filters the page and the URL; screenshot")
    func dashboard() async throws {
        let problems = Problems()
        defer { problems.record() }
        let artifact = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/test-artifacts")
        try await Self.onThread {
            let dir = TemporaryDirectory("tally-dashboard")
            let tally = try Tally(data: dir.path + "/data", port: Self.freePort())
            defer { tally.stop() }
            problems.check(Self.seed(tally), "the events were not accepted")
            let names = ["pageviews", "unique_visitors", "sessions"]
            let all = Self.totals(tally).reduce(into: [String: Int]()) { $0[$1.key] = $1.value as? Int }
            let pricing = Self.totals(tally, filters: "page_path==/pricing").reduce(into: [String: Int]()) { $0[$1.key] = $1.value as? Int }
            problems.check(all["pageviews"] == 21 && pricing["pageviews"] == 10, "\(all) \(pricing)")
            let browser = try Browser()
            try browser.open("http://127.0.0.1:\(tally.port)/?range=7d")
            problems.check(try browser.waitFor("return !document.getElementById('signin').hidden"))
            guard let key = try browser.element("return document.getElementById('signin-key')"),
                  let submit = try browser.element("return document.querySelector('#signin button[type=submit]')")
            else { return problems.check(false, "no sign-in form: \(String(describing: try? browser.run("return document.getElementById('signin-key')")))") }
            try browser.type(tally.readKey, into: key)
            try browser.click(submit)
            problems.check(try browser.waitFor("return document.body.dataset.loaded !== undefined && !document.body.hasAttribute('aria-busy')"))
            func shown(_ metric: String) throws -> Int? {
                (try browser.run("return document.getElementById('total-\(metric)').dataset.value") as? String).flatMap { Int($0) }
            }
            for m in names {
                problems.check(try shown(m) == all[m], "\(m): shown \(String(describing: try? shown(m))), API \(String(describing: all[m]))")
            }
            problems.check(try browser.run("return document.querySelectorAll('#table-page_path tbody tr').length") as? Int == 3)
            problems.check(try browser.run("return document.querySelector('#chart svg polyline') !== null") as? Bool == true)
            // A click on the /pricing row filters the whole page, and the URL says so.
            let before = try browser.run("return document.body.dataset.loaded") as? String
            guard let row = try browser.element(
                "return [...document.querySelectorAll('#table-page_path button.filter')].find(b => b.textContent === '/pricing')")
            else { return problems.check(false, "no /pricing row") }
            try browser.click(row)
            problems.check(try browser.waitFor(
                "return document.body.dataset.loaded !== '\(before ?? "")' && !document.body.hasAttribute('aria-busy')"))
            problems.check((try browser.run("return location.search") as? String)?.contains("filters=page_path%3D%3D%2Fpricing") == true,
                  "\(String(describing: try? browser.run("return location.search")))")
            for m in names {
                problems.check(try shown(m) == pricing[m], "filtered \(m): shown \(String(describing: try? shown(m))), API \(String(describing: pricing[m]))")
            }
            problems.check(try browser.run("return document.querySelectorAll('#filters .chip').length") as? Int == 1)
            // Keyboard: the row filters and the chip are buttons, reachable with Tab.
            problems.check(try browser.run("return [...document.querySelectorAll('#table-page_path tbody button.filter')].every(b => b.tabIndex === 0)") as? Bool == true)
            // Phone width: one column of tables, nothing wider than the screen.
            try browser.command("POST", "/window/rect", ["width": 390, "height": 844])
            problems.check(try browser.waitFor("return window.innerWidth <= 420"))
            problems.check(try browser.run("return document.documentElement.scrollWidth <= window.innerWidth") as? Bool == true,
                  "wider than a phone: \(String(describing: try? browser.run("return [document.documentElement.scrollWidth, window.innerWidth]")))")
            problems.check(try browser.run("return getComputedStyle(document.querySelector('.tables')).gridTemplateColumns.split(' ').length") as? Int == 1)
            try browser.command("POST", "/window/rect", ["width": 1000, "height": 800])
            problems.check(try browser.run("return document.getElementById('signin').offsetParent === null") as? Bool == true,
                  "the sign-in form is still shown")
            try browser.run("window.scrollTo(0, 0)")
            if let png = try browser.screenshot() {
                problems.check(png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "not a PNG")
                try? FileManager.default.createDirectory(at: artifact, withIntermediateDirectories: true)
                try png.write(to: artifact.appendingPathComponent("dashboard.png"))
            } else {
                problems.check(false, "no screenshot")
            }
        }
    }
}
