import ArgumentParser
import Foundation
import Workload

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a deterministic, realistic synthetic event stream as NDJSON.",
        discussion: """
            One seed-000 flat event object per line, in arrival order: Zipf-skewed sites, pages, \
            referrers and visitors; sessions of page views with widget impressions and clicks, \
            device page views and a few custom events, along a diurnal and weekly curve. \
            The same options always produce the same bytes.

            Examples:
              tally generate --events 1000000 --output sample.ndjson
              tally generate --events 10000000 --seed 7 --duplicates 0.01 --end 2026-09-01T00:00:00Z -o events.ndjson
            """
    )

    @Option(help: "Number of distinct events.")
    var events: Int = 100_000

    @Option(help: "Seed of every random choice.")
    var seed: UInt64 = 42

    @Option(help: "Number of sites.")
    var sites: Int = 20

    @Option(help: "Length of the time span in days.")
    var days: Int = 92

    @Option(help: "End of the time span (exclusive), ISO-8601, e.g. 2026-11-01T00:00:00Z.")
    var end: String = "2026-11-01T00:00:00Z"

    @Option(help: "Fraction of events sent a second time, later, with the same event_id (client retries).")
    var duplicates: Double = 0

    @Option(name: [.short, .long], help: "Output file (default: standard output).")
    var output: String?

    func validate() throws {
        guard events >= 0 else { throw ValidationError("--events must be >= 0") }
        guard sites >= 1 else { throw ValidationError("--sites must be >= 1") }
        guard days >= 1 && days <= 36_500 else { throw ValidationError("--days must be in 1...36500") }
        guard duplicates >= 0 && duplicates <= 1 else { throw ValidationError("--duplicates must be in 0...1") }
        guard let e = Civil.parse(end) else { throw ValidationError("--end: not an ISO-8601 instant: \(end)") }
        guard e - Int64(days) * 86_400_000 >= 0, e < (1 << 47) else {
            throw ValidationError("--end/--days: the span must lie after 1970-01-01")
        }
    }

    func run() throws {
        let config = WorkloadConfig(
            seed: seed, events: events, sites: sites, days: days, end: Civil.parse(end)!, duplicateRate: duplicates)
        let fd: Int32
        if let output, output != "-" {
            fd = open(output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard fd >= 0 else { throw failure("\(output): cannot open for writing (errno \(errno))") }
        } else {
            fd = 1
        }
        defer { if fd != 1 { close(fd) } }

        let clock = ContinuousClock()
        let started = clock.now
        var generator = WorkloadGenerator(config)
        var buffer: [UInt8] = []
        buffer.reserveCapacity(2 << 20)
        var bytes = 0
        // Chunks of ~1.5 MB stay in cache between rendering and write(2).
        while generator.nextNDJSON(2000, into: &buffer) > 0 {
            try GenerateCommand.writeAll(fd, buffer, to: output ?? "stdout")
            bytes += buffer.count
            buffer.removeAll(keepingCapacity: true)
        }
        let elapsed = (clock.now - started).components
        let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
        let rows = generator.rowsEmitted
        let summary =
            "generated \(rows) events (\(generator.duplicatesEmitted) duplicates), \(bytes) bytes, seed \(seed), "
            + "\(Civil.format(config.start)) .. \(Civil.format(config.end)), \(sites) sites, "
            + "\(String(format: "%.2f", seconds)) s (\(Int(Double(rows) / max(seconds, 1e-9))) events/s) -> \(output ?? "stdout")\n"
        FileHandle.standardError.write(summary.data(using: .utf8)!)
    }

    static func writeAll(_ fd: Int32, _ buffer: [UInt8], to name: String) throws {
        try buffer.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw failure("\(name): write failed (errno \(errno))")
                }
                offset += n
            }
        }
    }
}
