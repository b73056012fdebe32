import ArgumentParser
import Engine
import Foundation
import Workload

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks measured end to end (figures go to BENCHMARKS.md).",
        subcommands: [EngineBench.self, QueryBench.self, IngestBench.self]
    )
}

struct EngineBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "Engine ingest (WAL on), flush, scan and bytes per event on generated data.",
        discussion: """
            Generates --events events with the project's workload generator (decoded in memory first,
            so JSON is not measured; memory is therefore not representative: measure peak RSS with
            `tally ingest`). Ingests them in batches with 1 or more writer tasks twice: with the
            background flusher (sustained rate), and with flushing off (the WAL + buffer path alone),
            then flushes that buffer once (flush rate). Counts one site over 30 days from the
            sustained store's parts. Prints one line per figure; --json for scripts.

            Example:
              tally bench engine --events 2000000 --writers 2 --data /tmp/tally-bench
            """
    )

    @Option(help: "Events to generate and ingest.")
    var events = 2_000_000

    @Option(help: "Events per ingest call (one WAL record each).")
    var batch = 1000

    @Option(help: "Concurrent writer tasks.")
    var writers = 1

    @Option(help: "Scratch data directory (emptied first).")
    var data = "/tmp/tally-bench"

    @Option(help: "Repetitions of the scan measurement.")
    var scanRepeats = 5

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        try? FileManager.default.removeItem(atPath: data)
        var generator = WorkloadGenerator(WorkloadConfig(seed: 42, events: events))
        var batches: [EventBatch] = []
        while !generator.isFinished {
            var b = EventBatch()
            if generator.nextEvents(batch, into: &b) == 0 { break }
            batches.append(b)
        }
        let total = batches.reduce(0) { $0 + $1.count }
        let siteID = generator.siteIDs[0]
        let end = generator.config.end

        // 1. Sustained: the flusher runs as in production, so this is bounded by flushing.
        let sustained = try await ingestAll(batches, directory: data + "/sustained", background: true)
        // 2. The ingest path alone (WAL append + group commit + buffer), then one flush of it all.
        let direct = try await ingestAll(batches, directory: data + "/direct", background: false)
        let buffered = direct.store.status.bufferedBytes
        let t1 = Date()
        try direct.store.flush()
        let flushSeconds = Date().timeIntervalSince(t1)
        try direct.store.close()
        try sustained.store.close()

        var reopenOptions = StoreOptions(directory: data + "/sustained")
        reopenOptions.backgroundFlush = false
        let reader = try EventStore(options: reopenOptions)
        let request = ScanRequest(site: siteID, from: end - 30 * 86_400_000, to: end)
        var scanTimes: [Double] = []
        var counted = 0
        var scanned = 0
        let snapshot = reader.snapshot()
        for _ in 0..<scanRepeats {
            let s = Date()
            let (n, stats) = try snapshot.count(request)
            scanTimes.append(Date().timeIntervalSince(s))
            counted = n
            scanned = stats.granulesRead
        }
        // Rows counted per second: every row of the site's 30 days.
        let rowsPerSecond = scanTimes.map { Double(counted) / $0 }.sorted()
        try reader.close()
        let sustainedBytes = try Inventory(directory: data + "/sustained").parts.reduce(0) { $0 + $1.fileSize }
        let directParts = try Inventory(directory: data + "/direct").parts
        let directBytes = directParts.reduce(0) { $0 + $1.fileSize }

        let result: [String: Any] = [
            "events": total, "batch": batch, "writers": writers,
            "sustained_events_per_second": Double(total) / sustained.seconds,
            "ingest_path_events_per_second": Double(total) / direct.seconds,
            "flush_seconds": flushSeconds,
            "flush_mb_per_second": Double(buffered) / 1e6 / max(flushSeconds, 1e-9),
            "flush_rows_per_second": Double(total) / max(flushSeconds, 1e-9),
            "scan_count": counted, "scan_granules_read": scanned,
            "scan_rows_per_second_median": rowsPerSecond[rowsPerSecond.count / 2],
            "scan_rows_per_second_min": rowsPerSecond.first!, "scan_rows_per_second_max": rowsPerSecond.last!,
            "bytes_per_event_sustained": Double(sustainedBytes) / Double(total),
            "bytes_per_event_one_flush": Double(directBytes) / Double(total),
            "parts_sustained": try Inventory(directory: data + "/sustained").parts.count,
            "parts_one_flush": directParts.count,
        ]
        if json {
            let d = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
            print(String(decoding: d, as: UTF8.self))
        } else {
            for (k, v) in result.sorted(by: { $0.key < $1.key }) { print("\(k): \(v)") }
        }
    }
}

extension EngineBench {
    /// Ingests `batches` with `writers` concurrent tasks into a new store; returns it open.
    func ingestAll(_ batches: [EventBatch], directory: String, background: Bool) async throws
        -> (store: EventStore, seconds: Double)
    {
        var options = StoreOptions(directory: directory)
        options.backgroundFlush = background
        if !background {
            options.flushRows = .max
            options.flushBytes = .max / 4
        }
        let store = try EventStore(options: options)
        let started = Date()
        let writers = self.writers
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<writers {
                group.addTask {
                    var i = w
                    while i < batches.count {
                        _ = try await store.ingest(batches[i])
                        i += writers
                    }
                }
            }
            try await group.waitForAll()
        }
        return (store, Date().timeIntervalSince(started))
    }
}
