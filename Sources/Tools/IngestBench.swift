import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOConcurrencyHelpers
import NIOPosix

/// `tally bench ingest`: the end-to-end HTTP load generator. Keep-alive connections post
/// pre-rendered batches of the workload to POST /v1/events and count what the server answers.
struct IngestBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "HTTP ingest load: POST batches of generated events to a tally server, report events/s and ack latency.",
        discussion: """
            Batches come from the project's workload generator (seed 42, seed-000 flat batches
            {"events":[...]}), rendered before the clock starts; each POST carries new event_ids, no
            site_id (the write key's property) and only browser user agents, and each pass over the
            rendered batches new visitor and session ids. Every second a progress
            line; at the end events/s and requests/s over the measured interval (after --warmup),
            acknowledgement latency percentiles (request sent to answer read), and what the server
            answered: accepted, duplicates, filtered (bots), rejected, and errors (any status but 200,
            or no answer). With --rate, latency counts from when a request was due, so a server that
            falls behind shows it.

            --spawn starts `tally serve` itself on a temporary data directory and a free port (with
            --rate-limit-per-ip 0), reads the write key it prints, stops it with SIGTERM at the end
            and reports its peak RSS (VmHWM) and CPU time. The WAL is fsynced before every answer.

            Examples:
              tally bench ingest --spawn --connections 64 --batch 100 --duration 20
              tally bench ingest --url http://127.0.0.1:8080 --key $WRITE_KEY --rate 50000 --duration 60
                tally bench ingest --spawn --events 1000000 --json result.json
              tally bench ingest --spawn --rate 50000 --duration 600 --probe-every 10 --json sustained.json

            --probe-every N adds a timeline: every N seconds the events/s since the previous probe, the
            server's parts (in all and in its fullest month), merges completed, the latency of two
            report queries (overview and top pages of the last 30 days, read key) and, with --spawn,
            its RSS; scripts/plot-sustained.py draws it.
            """
    )

    @Option(help: "The server's base URL.")
    var url = "http://127.0.0.1:8080"

    @Option(help: "Write key (default: $TALLY_WRITE_KEY; not needed with --spawn).")
    var key: String?

    @Option(help: "Keep-alive connections, each with one request in flight.")
    var connections = 64

    @Option(help: "Events per POST.")
    var batch = 100

    @Option(help: "Seconds to measure (after --warmup), unless --events is given.")
    var duration: Double = 10

    @Option(help: "Events to send in all (instead of --duration), warm-up included.")
    var events: Int?

    @Option(help: "Events per second to offer, 0 for as many as the server takes.")
    var rate: Double = 0

    @Option(help: "Seconds of load before measuring.")
    var warmup: Double = 0

    @Option(help: "Write the result as a JSON object to this file.")
    var json: String?

    @Flag(help: "Start a tally serve child on a temporary data directory and port, and report its RSS and CPU.")
    var spawn = false

    @Option(help: "Event-loop threads of the load generator.")
    var clientThreads = 1

    @Option(help: "Every this many seconds, read the server's part and merge gauges (GET /metrics), time two report queries and record them (0: never).")
    var probeEvery: Double = 0

    @Option(help: "Read key for the probe's report queries (default: $TALLY_READ_KEY; not needed with --spawn).")
    var readKey: String?

    @Option(help: "Property the probe's report queries ask about (the write key's; with --spawn: default).")
    var property = "default"

    func validate() throws {
        guard connections >= 1 else { throw ValidationError("--connections must be >= 1") }
        guard batch >= 1 && batch <= 10_000 else { throw ValidationError("--batch must be in 1...10000") }
        guard duration > 0 else { throw ValidationError("--duration must be > 0") }
        guard (events ?? 1) >= 1 else { throw ValidationError("--events must be >= 1") }
        guard rate >= 0 && warmup >= 0 else { throw ValidationError("--rate and --warmup must be >= 0") }
        guard clientThreads >= 1 else { throw ValidationError("--client-threads must be >= 1") }
        guard probeEvery >= 0 else { throw ValidationError("--probe-every must be >= 0") }
    }

    func run() async throws {
        let givenKey = key ?? ProcessInfo.processInfo.environment["TALLY_WRITE_KEY"]
        guard spawn || givenKey != nil else {
            throw failure("no write key: pass --key, set TALLY_WRITE_KEY, or use --spawn")
        }
        // Rendering happens here, before any request: about 25k distinct events, reused with new ids.
        let poolBodies = max(8, min(256, 25_600 / batch))
        let nonce = UInt64.random(in: 0..<IngestPayloads.maxSequence)
        let payloads = IngestPayloads(batch: batch, count: poolBodies, nonce: nonce)

        let server = spawn ? try SpawnedServer() : nil
        defer {
            server?.terminate()
            server?.removeDirectory()
        }
        let baseURL = server.map { "http://127.0.0.1:\($0.port)" } ?? url
        let writeKey = server?.writeKey ?? givenKey ?? ""
        let probeKey = server?.readKey ?? readKey ?? ProcessInfo.processInfo.environment["TALLY_READ_KEY"]
        if probeEvery > 0 && probeKey == nil {
            throw failure("--probe-every needs a read key: pass --read-key, set TALLY_READ_KEY, or use --spawn")
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: clientThreads)
        var httpConfiguration = HTTPClient.Configuration()
        httpConfiguration.httpVersion = .http1Only
        httpConfiguration.connectionPool = .init(idleTimeout: .seconds(120),
                                                 concurrentHTTP1ConnectionsPerHostSoftLimit: connections)
        httpConfiguration.timeout = .init(connect: .seconds(10), read: .seconds(120))
        let client = HTTPClient(eventLoopGroup: group, configuration: httpConfiguration)
        do {
            try await waitForHealth(client, baseURL, spawned: server != nil)
            let prober = probeEvery > 0
                ? Prober(client: client, baseURL: baseURL, readKey: probeKey ?? "", property: property, pid: server?.pid)
                : nil
            let result = try await load(client: client, url: baseURL + "/v1/events", writeKey: writeKey,
                                        payloads: payloads, server: server, prober: prober)
            try await client.shutdown()
            try await group.shutdownGracefully()
            var report = result
            if let server {
                report.serverExitStatus = server.terminate()
            }
            Self.emit(report.summary())
            if let json {
                let data = try JSONSerialization.data(withJSONObject: report.jsonObject(),
                                                      options: [.sortedKeys, .prettyPrinted])
                guard FileManager.default.createFile(atPath: json, contents: data + Data("\n".utf8)) else {
                    throw failure("\(json): cannot write the result")
                }
            }
        } catch {
            try? await client.shutdown()
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Waits up to 10 s for GET /health to answer 200 (a spawned server prints that it listens
    /// just before it binds).
    func waitForHealth(_ client: HTTPClient, _ baseURL: String, spawned: Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(spawned ? 10 : 2)
        var lastError = "no answer"
        while ContinuousClock.now < deadline {
            do {
                let response = try await client.execute(HTTPClientRequest(url: baseURL + "/health"), timeout: .seconds(2))
                _ = try await response.body.collect(upTo: 1 << 16)
                if response.status == .ok { return }
                lastError = "status \(response.status.code)"
            } catch { lastError = "\(error)" }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw failure("\(baseURL)/health: \(lastError)")
    }
}

extension IngestBench {
    /// Hands out request numbers until the run is over; with --rate, also when each is due.
    final class Schedule: Sendable {
        let start: UInt64
        let stop: UInt64?  // uptime ns after which no request starts (duration mode)
        let totalRequests: Int?  // events mode
        let nanosPerRequest: Double  // 0: as fast as answers come
        private let next = NIOLockedValueBox(0)

        init(start: UInt64, stop: UInt64?, totalRequests: Int?, nanosPerRequest: Double) {
            (self.start, self.stop, self.totalRequests, self.nanosPerRequest) = (start, stop, totalRequests, nanosPerRequest)
        }

        /// The next request number and when it is due (uptime ns), or nil when the run is over.
        func take() -> (Int, due: UInt64)? {
            let n = next.withLockedValue { n -> Int in
                n += 1
                return n - 1
            }
            if let totalRequests, n >= totalRequests { return nil }
            let due = nanosPerRequest > 0 ? start + UInt64(Double(n) * nanosPerRequest) : Self.now()
            if let stop, due >= stop || Self.now() >= stop { return nil }
            return (n, due)
        }

        static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
    }

    func load(client: HTTPClient, url: String, writeKey: String, payloads: IngestPayloads,
              server: SpawnedServer?, prober: Prober?) async throws -> IngestResult
    {
        let stats = IngestStats()
        let start = Schedule.now()
        let warmupEnd = start + UInt64(warmup * 1e9)
        let totalRequests = events.map { ($0 + batch - 1) / batch }
        let schedule = Schedule(start: start, stop: totalRequests == nil ? warmupEnd + UInt64(duration * 1e9) : nil,
                                totalRequests: totalRequests,
                                nanosPerRequest: rate > 0 ? Double(batch) / rate * 1e9 : 0)
        let headers: HTTPHeaders = ["Authorization": "Bearer " + writeKey, "Content-Type": "application/json"]
        let eventsPerBody = payloads.eventsPerBody
        let measuredFromDue = rate > 0
        // The server's CPU time when the measured interval starts.
        let serverPID = server?.pid
        let serverCPUAtWarmupEnd = Task { () -> Double? in
            let now = Schedule.now()
            if warmupEnd > now { try await Task.sleep(nanoseconds: warmupEnd - now) }
            return serverPID.flatMap { SpawnedServer.cpuSeconds(pid: $0) }
        }
        let clientCPUAtStart = Self.ownCPUSeconds()

        let progress = Task {
            var second = 1
            var previous = 0
            while !Task.isCancelled {
                let at = start + UInt64(second) * 1_000_000_000
                let now = Schedule.now()
                if at > now { try? await Task.sleep(nanoseconds: at - now) }
                if Task.isCancelled { break }
                let s = stats.snapshot()
                let (p50, p99) = stats.runningPercentiles()
                let rate = Self.grouped(s.all.events - previous)
                var line = String(format: "%4d s ", second) + String(repeating: " ", count: max(0, 11 - rate.count))
                line += rate + String(format: " events/s  p50 %7.2f ms  p99 %7.2f ms  errors %d", p50, p99, s.all.errors)
                Self.emit(line + (at <= warmupEnd ? "  (warm-up)" : ""))
                previous = s.all.events
                second += 1
            }
        }

        // Probes every `probeEvery` seconds while the load runs, then one more as it ends. A probe
        // is not cancelled with the load: the one due at the last second completed with
        // CancellationError for its queries instead of figures.
        let timeline = ProbeTimeline(start: start)
        let probes = Task {
            guard let prober else { return }
            var k = 1
            while !Task.isCancelled {
                let at = start + UInt64(Double(k) * probeEvery * 1e9)
                let now = Schedule.now()
                if at > now { try? await Task.sleep(nanoseconds: at - now) }
                if Task.isCancelled { break }
                await Task { await timeline.take(prober, events: stats.snapshot().all.events) }.value
                k += 1
            }
        }

        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<connections {
                group.addTask {
                    var buffer = ByteBuffer()
                    buffer.reserveCapacity(payloads.bodies.map(\.bytes.count).max() ?? 0)
                    while let (n, due) = schedule.take() {
                        if measuredFromDue {
                            let now = Schedule.now()
                            if due > now { try await Task.sleep(nanoseconds: due - now) }
                        }
                        let body = payloads.bodies[n % payloads.bodies.count]
                        buffer.clear()
                        buffer.writeBytes(body.bytes)
                        buffer.withUnsafeMutableReadableBytes {
                            IngestPayloads.stamp($0, body: body, firstSequence: UInt64(n) * UInt64(eventsPerBody),
                                                 cycle: UInt64(n / payloads.bodies.count))
                        }
                        var request = HTTPClientRequest(url: url)
                        request.method = .POST
                        request.headers = headers
                        request.body = .bytes(buffer)
                        let sent = measuredFromDue ? due : Schedule.now()
                        let measured = sent >= warmupEnd
                        do {
                            let response = try await client.execute(request, timeout: .seconds(120))
                            let answer = try await response.body.collect(upTo: 1 << 20)
                            let now = Schedule.now()
                            guard response.status == .ok else {
                                stats.recordError("status \(response.status.code)", measured: measured, now: now)
                                continue
                            }
                            guard let counts = answer.withUnsafeReadableBytes({ IngestAnswer($0) }) else {
                                stats.recordError("unreadable answer", measured: measured, now: now)
                                continue
                            }
                            stats.recordAnswer(events: body.idOffsets.count, answer: counts,
                                               latencyMicros: (now - sent) / 1000, measured: measured, now: now)
                        } catch {
                            stats.recordError(String(describing: type(of: error)) + ": \(error)", measured: measured,
                                              now: Schedule.now())
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        progress.cancel()
        probes.cancel()
        serverCPUAtWarmupEnd.cancel()
        let end = Schedule.now()
        let state = stats.snapshot()
        let serverCPUEnd = server.flatMap { SpawnedServer.cpuSeconds(pid: $0.pid) }
        let measuredStart = max(warmupEnd, start)
        let measuredEnd = state.lastAnswer > measuredStart ? state.lastAnswer : end
        var result = IngestResult(
            url: url, connections: connections, batch: batch, rate: rate, warmup: warmup, spawned: server != nil,
            seconds: Double(measuredEnd - measuredStart) / 1e9, counts: state.measured, latency: state.latency)
        result.clientCPUSeconds = Self.ownCPUSeconds() - clientCPUAtStart
        result.totalSeconds = Double(end - start) / 1e9
        await probes.value
        // The last sample, unless the probe due as the load ended was just taken (a second one
        // moments later would rate the events of a few milliseconds).
        if let prober, await timeline.sinceLast(now: Schedule.now()) >= UInt64(probeEvery * 0.5e9) {
            await timeline.take(prober, events: stats.snapshot().all.events)
        }
        result.timeline = await timeline.samples
        if let server {
            result.serverPeakRSS = SpawnedServer.peakRSS(pid: server.pid)
            result.serverCPUSecondsTotal = serverCPUEnd
            if let a = try? await serverCPUAtWarmupEnd.value, let b = serverCPUEnd { result.serverCPUSeconds = b - a }
        }
        return result
    }

    /// User + system CPU seconds of this process.
    static func ownCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }

    /// Writes a line to standard output at once (progress must show while the run goes on,
    /// also when stdout is a pipe).
    static func emit(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    /// 1234567 → "1,234,567".
    static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return n < 0 ? "-" + out : out
    }
}

/// The `--probe-every` samples of a run, in order, each with the events/s since the one before.
actor ProbeTimeline {
    let start: UInt64
    private(set) var samples: [Prober.Sample] = []
    private var previousEvents = 0
    private var previousAt: UInt64

    init(start: UInt64) {
        self.start = start
        previousAt = start
    }

    /// Nanoseconds since the last sample (or the start).
    func sinceLast(now: UInt64) -> UInt64 { now &- previousAt }

    /// Probes the server now; `events` is how many the load has had answered so far. Calls
    /// must not overlap (the run makes them one after another): `take` suspends while it
    /// probes, and a second one would rate its events against the wrong sample.
    func take(_ prober: Prober, events: Int) async {
        let taken = IngestBench.Schedule.now()
        var sample = await prober.probe()
        sample.seconds = Double(taken - start) / 1e9
        sample.eventsPerSecond = Double(events - previousEvents) / max(Double(taken - previousAt) / 1e9, 1e-9)
        (previousEvents, previousAt) = (events, taken)
        IngestBench.emit(sample.line)
        samples.append(sample)
    }
}

/// `--probe-every`: what the server looks like under the load, sampled now and then.
struct Prober: Sendable {
    struct ProbeError: Error, CustomStringConvertible {
        let description: String
    }

    let client: HTTPClient
    let baseURL: String
    let readKey: String
    let property: String
    let pid: Int32?

    struct Sample {
        var seconds = 0.0
        var eventsPerSecond = 0.0
        var parts: Int?
        var maxPartsPerPartition: Int?
        var mergesCompleted: Int?
        var bufferedRows: Int?
        var overviewMs: Double?
        var pagesMs: Double?
        var rssBytes: Int?
        var errors: [String] = []

        var line: String {
            func v(_ x: Int?) -> String { x.map(String.init) ?? "?" }
            func ms(_ x: Double?) -> String { x.map { String(format: "%.1f ms", $0) } ?? "?" }
            var text = String(format: "probe %6.0f s  %@ events/s", seconds, IngestBench.grouped(Int(eventsPerSecond.rounded())))
            text += "  parts \(v(parts)) (fullest month \(v(maxPartsPerPartition)))  merges \(v(mergesCompleted))"
            text += "  overview \(ms(overviewMs))  pages \(ms(pagesMs))"
            if let rssBytes { text += String(format: "  RSS %.0f MiB", Double(rssBytes) / 1_048_576) }
            if !errors.isEmpty { text += "  errors: " + errors.joined(separator: "; ") }
            return text
        }

        var jsonObject: [String: Any] {
            var o: [String: Any] = ["seconds": seconds, "events_per_second": eventsPerSecond]
            if let parts { o["parts"] = parts }
            if let maxPartsPerPartition { o["max_parts_per_partition"] = maxPartsPerPartition }
            if let mergesCompleted { o["merges_completed"] = mergesCompleted }
            if let bufferedRows { o["buffered_rows"] = bufferedRows }
            if let overviewMs { o["overview_ms"] = overviewMs }
            if let pagesMs { o["pages_ms"] = pagesMs }
            if let rssBytes { o["rss_bytes"] = rssBytes }
            if !errors.isEmpty { o["errors"] = errors }
            return o
        }
    }

    func probe() async -> Sample {
        var sample = Sample()
        do {
            let gauges = try await metrics()
            sample.parts = gauges["tally_parts"]
            sample.maxPartsPerPartition = gauges["tally_parts_max_per_partition"]
            sample.mergesCompleted = gauges["tally_merges_completed"]
            sample.bufferedRows = gauges["tally_buffered_rows"]
        } catch {
            sample.errors.append("metrics: \(error)")
        }
        let encoded = property.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? property
        do {
            sample.overviewMs = try await timed("/v1/properties/\(encoded)/overview?period=30d")
        } catch {
            sample.errors.append("overview: \(error)")
        }
        do {
            sample.pagesMs = try await timed("/v1/properties/\(encoded)/pages?period=30d&limit=10")
        } catch {
            sample.errors.append("pages: \(error)")
        }
        sample.rssBytes = pid.flatMap { SpawnedServer.rss(pid: $0) }
        return sample
    }

    /// The gauges of GET /metrics that have no labels, by name.
    func metrics() async throws -> [String: Int] {
        let response = try await client.execute(HTTPClientRequest(url: baseURL + "/metrics"), timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 22)
        guard response.status == .ok else { throw ProbeError(description: "answered \(response.status.code)") }
        var out: [String: Int] = [:]
        for line in String(buffer: body).split(separator: "\n") where !line.hasPrefix("#") {
            let fields = line.split(separator: " ")
            guard fields.count == 2, !fields[0].contains("{"), let value = Double(fields[1]) else { continue }
            out[String(fields[0])] = Int(value)
        }
        return out
    }

    /// Milliseconds from sending GET `path` (read key) to reading the whole answer.
    func timed(_ path: String) async throws -> Double {
        var request = HTTPClientRequest(url: baseURL + path)
        request.headers.add(name: "Authorization", value: "Bearer " + readKey)
        let sent = ContinuousClock.now
        let response = try await client.execute(request, timeout: .seconds(60))
        _ = try await response.body.collect(upTo: 1 << 24)
        let elapsed = ContinuousClock.now - sent
        guard response.status == .ok else { throw ProbeError(description: "answered \(response.status.code)") }
        return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
    }
}
