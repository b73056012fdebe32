import Foundation
import Histogram

/// The figures of one `tally bench ingest` run over its measured interval: printed as a summary
/// and written by --json as one object with the same fields.
struct IngestResult {
    var url: String
    var connections: Int
    var batch: Int
    var rate: Double
    var warmup: Double
    var spawned: Bool
    /// From the end of the warm-up to the last answer of a request sent after it.
    var seconds: Double
    var counts: IngestStats.Counts
    var latency: Histogram<UInt64>
    var totalSeconds = 0.0
    var clientCPUSeconds = 0.0
    var serverPeakRSS: Int?
    var serverCPUSeconds: Double?
    var serverCPUSecondsTotal: Double?
    var serverExitStatus: Int32?
    /// --probe-every samples, in time order.
    var timeline: [Prober.Sample] = []

    var eventsPerSecond: Double { Double(counts.events) / max(seconds, 1e-9) }
    var requestsPerSecond: Double { Double(counts.requests) / max(seconds, 1e-9) }

    /// Latency at `percentile` in milliseconds (0 without answers).
    func latencyMs(_ percentile: Double) -> Double {
        latency.totalCount == 0 ? 0 : Double(latency.valueAtPercentile(percentile)) / 1000
    }

    var latencyMaxMs: Double { latency.totalCount == 0 ? 0 : Double(latency.max) / 1000 }

    func summary() -> String {
        let ms = { (v: Double) in String(format: "%.2f", v) }
        var title = "tally bench ingest: \(connections) connections, \(batch) events per POST"
        if rate > 0 { title += ", offered \(IngestBench.grouped(Int(rate))) events/s" }
        title += String(format: ", %.1f s measured", seconds)
        if warmup > 0 { title += String(format: " after %g s warm-up", warmup) }
        title += " against \(url)" + (spawned ? " (spawned)" : "")
        var latencyLine = "  ack latency     p50 \(ms(latencyMs(50))) ms, p90 \(ms(latencyMs(90))) ms"
        latencyLine += ", p99 \(ms(latencyMs(99))) ms, p99.9 \(ms(latencyMs(99.9))) ms, max \(ms(latencyMaxMs)) ms"
        var eventsLine = "  events          \(IngestBench.grouped(counts.events))"
        eventsLine += " in \(IngestBench.grouped(counts.requests)) requests: accepted \(IngestBench.grouped(counts.accepted))"
        eventsLine += ", duplicates \(counts.duplicates), filtered \(counts.filtered), rejected \(counts.rejected)"
        var errorsLine = "  errors          \(counts.errors)"
        if !counts.errorKinds.isEmpty {
            let kinds = counts.errorKinds.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
            errorsLine += " (" + kinds.joined(separator: ", ") + ")"
        }
        var lines = [
            title,
            "  events/s        \(IngestBench.grouped(Int(eventsPerSecond.rounded())))",
            "  requests/s      \(IngestBench.grouped(Int(requestsPerSecond.rounded())))",
            latencyLine, eventsLine, errorsLine,
        ]
        if spawned {
            var server = "  server          peak RSS "
                + (serverPeakRSS.map { String(format: "%.1f MiB", Double($0) / 1_048_576) } ?? "unknown")
            if let cpu = serverCPUSeconds {
                server += String(format: ", CPU %.1f s in the measured interval (%.2f cores, %.1f µs per event)", cpu,
                                 cpu / max(seconds, 1e-9), cpu * 1e6 / Double(max(counts.events, 1)))
            }
            if let total = serverCPUSecondsTotal { server += String(format: ", %.1f s in all", total) }
            lines.append(server)
        }
        lines.append(String(format: "  load generator  CPU %.1f s (%.2f cores over %.1f s)", clientCPUSeconds,
                            clientCPUSeconds / max(totalSeconds, 1e-9), totalSeconds))
        return lines.joined(separator: "\n")
    }

    func jsonObject() -> [String: Any] {
        var object: [String: Any] = [
            "url": url, "connections": connections, "batch": batch, "rate": rate, "warmup_seconds": warmup,
            "spawned": spawned, "seconds": seconds, "total_seconds": totalSeconds,
            "events": counts.events, "requests": counts.requests,
            "events_per_second": eventsPerSecond, "requests_per_second": requestsPerSecond,
            "accepted": counts.accepted, "duplicates": counts.duplicates, "filtered": counts.filtered,
            "rejected": counts.rejected, "errors": counts.errors, "error_kinds": counts.errorKinds,
            "latency_ms": [
                "p50": latencyMs(50), "p90": latencyMs(90), "p99": latencyMs(99), "p99_9": latencyMs(99.9),
                "max": latencyMaxMs,
                "mean": latency.totalCount == 0 ? 0 : latency.mean / 1000,
            ],
            "client_cpu_seconds": clientCPUSeconds,
        ]
        if spawned {
            var server: [String: Any] = [:]
            if let serverPeakRSS { server["peak_rss_bytes"] = serverPeakRSS }
            if let serverCPUSeconds {
                server["cpu_seconds"] = serverCPUSeconds
                // CPU per event is steadier than events/s on a shared machine.
                server["cpu_us_per_event"] = serverCPUSeconds * 1e6 / Double(max(counts.events, 1))
            }
            if let serverCPUSecondsTotal { server["cpu_seconds_total"] = serverCPUSecondsTotal }
            if let serverExitStatus { server["exit_status"] = Int(serverExitStatus) }
            object["server"] = server
        }
        if !timeline.isEmpty { object["timeline"] = timeline.map(\.jsonObject) }
        return object
    }
}
