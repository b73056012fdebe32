import ArgumentParser
import Engine
import Foundation
import Workload

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks measured end to end (figures go to BENCHMARKS.md).",
        subcommands: [EngineBench.self]
    )
}

struct EngineBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "Engine ingest (WAL on), flush, scan and bytes per event on generated data.",
        discussion: """
            Generates --events events with the project's workload generator (decoded in memory first,
            so JSON is not measured; memory is therefore not representative: measure peak RSS with
            `tally ingest`), ingests them in batches with 1 or more writer tasks, flushes,
            then counts one site over 30 days from parts. Prints one line per figure; --json for scripts.

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

        var options = StoreOptions(directory: data)
        options.backgroundFlush = true
        let store = try EventStore(options: options)
        let t0 = Date()
        let shared = batches
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<writers {
                group.addTask {
                    var i = w
                    while i < shared.count {
                        _ = try await store.ingest(shared[i])
                        i += writers
                    }
                }
            }
            try await group.waitForAll()
        }
        let ingestSeconds = Date().timeIntervalSince(t0)
        let buffered = store.status.bufferedBytes
        let t1 = Date()
        try store.flush()
        let flushSeconds = Date().timeIntervalSince(t1)
        try store.close()

        var reopenOptions = StoreOptions(directory: data)
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
        // Rows considered by the count: every row of the site's 30 days.
        let rowsPerSecond = scanTimes.map { Double(counted) / $0 }.sorted()
        try reader.close()
        let inventory = try Inventory(directory: data)
        let bytes = inventory.parts.reduce(0) { $0 + $1.fileSize }

        let result: [String: Any] = [
            "events": total, "batch": batch, "writers": writers,
            "ingest_events_per_second": Double(total) / ingestSeconds,
            "final_flush_seconds": flushSeconds,
            "final_flush_mb_per_second": Double(buffered) / 1e6 / max(flushSeconds, 1e-9),
            "scan_count": counted, "scan_granules_read": scanned,
            "scan_rows_per_second_median": rowsPerSecond[rowsPerSecond.count / 2],
            "scan_rows_per_second_min": rowsPerSecond.first!, "scan_rows_per_second_max": rowsPerSecond.last!,
            "bytes_per_event": Double(bytes) / Double(total), "parts": inventory.parts.count,
        ]
        if json {
            let d = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
            print(String(decoding: d, as: UTF8.self))
        } else {
            for (k, v) in result.sorted(by: { $0.key < $1.key }) { print("\(k): \(v)") }
        }
    }
}
