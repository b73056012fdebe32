import Engine
import Foundation
import Server
import TallyTestSupport
import Testing
import Workload

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// kill -9 of a `tally serve` child while a client posts batches: every event the server
/// answered 200 for is present exactly once after a restart.
@Suite("Server crash safety", .serialized)
struct ServerCrashTests {
    final class Server: @unchecked Sendable {
        let process = Process()
        let port: Int
        private let output = Pipe()
        /// The server's standard error, for the message of a failed start.
        let errorLog: String

        init(data: String) throws {
            port = try LoopbackPort.free()
            errorLog = data + "-stderr-\(port).log"
            _ = FileManager.default.createFile(atPath: errorLog, contents: nil)
            process.executableURL = TallyBinary.url
            process.arguments = ["serve", "--data", data, "--port", String(port)]
            process.standardOutput = output
            process.standardError = FileHandle(forWritingAtPath: errorLog)
            try process.run()
        }

        /// What the server wrote to standard error, and whether it still runs.
        var diagnosis: String {
            let text = (try? String(contentsOfFile: errorLog, encoding: .utf8)) ?? ""
            return (process.isRunning ? "running" : "exited with \(process.terminationStatus)") + "; stderr: "
                + String(text.suffix(2_000))
        }

        /// The write key printed on the first start (nil on later starts).
        func firstLines() -> String {
            var text = ""
            let handle = output.fileHandleForReading
            while !text.contains("Tally listening") {
                let data = handle.availableData
                if data.isEmpty { break }
                text += String(decoding: data, as: UTF8.self)
            }
            return text
        }

        func kill9() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    static func request(_ port: Int, _ path: String, key: String? = nil, body: Data? = nil) -> (Int, Data)? {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.timeoutInterval = 10
        if let body {
            request.httpMethod = "POST"
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let key { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: (Int, Data)?
        URLSession.shared.dataTask(with: request) { data, response, _ in
            if let http = response as? HTTPURLResponse { result = (http.statusCode, data ?? Data()) }
            done.signal()
        }.resume()
        done.wait()
        return result
    }

    /// Up to a minute: a debug build replaying its WAL while the rest of the suite runs on the
    /// same two cores took over ten seconds once (CI).
    static func waitForHealth(_ port: Int, seconds: Int = 60) -> Bool {
        for _ in 0..<(seconds * 20) {
            if let (status, _) = request(port, "/health"), status == 200 { return true }
            usleep(50_000)
        }
        return false
    }

    @Test("kill -9 of tally serve during sustained posting loses and duplicates no acknowledged event")
    func killNine() throws {
        let dir = TemporaryDirectory("tally-serve-crash")
        let data = dir.path + "/data"
        var generator = WorkloadGenerator(WorkloadConfig(seed: 11, events: 30_000, days: 30, end: (Int64(Date().timeIntervalSince1970 * 1000) / 86_400_000 + 1) * 86_400_000))
        var key: String?
        var acked: [String] = []
        var rng = SystemRandomNumberGenerator()
        for round in 0..<4 {
            let server = try Server(data: data)
            let lines = server.firstLines()
            if key == nil, let line = lines.split(separator: "\n").first(where: { $0.contains("write key:") }) {
                key = String(line.split(separator: " ").last!)
            }
            #expect(key != nil)
            let up = Self.waitForHealth(server.port)
            #expect(up, "round \(round): the server did not come up (\(server.diagnosis))")
            let deadline = Date().addingTimeInterval(Double.random(in: 0.3...1.5, using: &rng))
            // Post batches of 100 until the deadline, then kill -9 while one may be in flight.
            while Date() < deadline && !generator.isFinished {
                var ndjson: [UInt8] = []
                _ = generator.nextNDJSON(100, into: &ndjson)
                let events = ndjson.split(separator: UInt8(ascii: "\n")).map { Data($0) }
                // Events carry site_id of the generator's sites; post them under the key's property.
                let bodies = events.map { line -> String in
                    var text = String(decoding: line, as: UTF8.self)
                    if let r = text.range(of: #""site_id":"[^"]*""#, options: .regularExpression) {
                        text.replaceSubrange(r, with: #""site_id":"default""#)
                    }
                    // The generator includes bots, which the server filters (valid, not stored).
                    if let r = text.range(of: #""user_agent":"[^"]*""#, options: .regularExpression) {
                        text.replaceSubrange(r, with: #""user_agent":"Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0""#)
                    }
                    return text
                }
                let body = Data(#"{"events":["#.utf8) + Data(bodies.joined(separator: ",").utf8) + Data("]}".utf8)
                guard let (status, answer) = Self.request(server.port, "/v1/events", key: key, body: body) else { break }
                if status == 200 {
                    let counts = try JSONSerialization.jsonObject(with: answer) as? [String: Any]
                    #expect(counts?["accepted"] as? Int == bodies.count, "every posted event is valid")
                    acked += bodies.map { text in
                        let start = text.range(of: #""event_id":""#)!.upperBound
                        return String(text[start...].prefix { $0 != "\"" })
                    }
                }
            }
            server.kill9()
        }
        var options = StoreOptions(directory: data)
        options.backgroundFlush = false
        let store = try EventStore(options: options)
        var counts: [String: Int] = [:]
        try store.snapshot().scan(ScanRequest(site: "default", columns: [.eventID])) { b in
            for i in 0..<b.count { counts[b[string: .eventID].string(at: i)!, default: 0] += 1 }
        }
        try store.close()
        #expect(!acked.isEmpty)
        let missing = acked.filter { counts[$0] == nil }
        #expect(missing.isEmpty, "\(missing.count) of \(acked.count) acknowledged events missing")
        #expect(counts.values.allSatisfy { $0 == 1 }, "some events are stored twice")
    }
}
