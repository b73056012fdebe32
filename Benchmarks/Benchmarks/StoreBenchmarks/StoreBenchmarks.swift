// Store: EventStore end to end on disk (WAL, parts, snapshots) in a temporary directory,
// with events from the project's workload generator.
//
// - ingest: per event (`.kilo`, one iteration = one 1,000-event batch: WAL append + fdatasync,
//   then a flush of the batch to a part), every iteration with new events;
// - count and scan: per call on a store pre-built in setup; the custom metrics `rowsMatched`
//   and `granulesRead` say how much each call covered (deterministic).

import Benchmark
import Engine
import Foundation
import Workload

/// A clock stopped at the end of the generated span (2026-11-01), so that the dedupe window
/// covers the generated events whatever today's date is.
struct FixedClock: TallyClock {
    let now: Int64
    func nowMillis() -> Int64 { now }
}

/// A new, empty directory for one benchmark's store; removed by `removeStore`.
func makeStoreDirectory(_ name: String) -> String {
    let path = FileManager.default.temporaryDirectory
        .appendingPathComponent("tally-benchmarks-\(name)-\(getpid())").path
    try? FileManager.default.removeItem(atPath: path)
    return path
}

func storeOptions(_ directory: String) -> StoreOptions {
    var options = StoreOptions(directory: directory)
    options.backgroundFlush = false
    options.clock = FixedClock(now: WorkloadConfig.defaultEnd)
    return options
}

/// Mutable state shared by a benchmark's setup, iterations and teardown (one process runs
/// one benchmark, one iteration at a time).
final class StoreFixture: @unchecked Sendable {
    var directory = ""
    var store: EventStore?
    var batches: [EventBatch] = []
    var next = 0
    var siteID = ""
    var end: Int64 = 0

    func close() throws {
        try store?.close()
        store = nil
        batches = []
        if !directory.isEmpty { try? FileManager.default.removeItem(atPath: directory) }
    }
}

/// Iterations of the ingest benchmark; the pool holds one new batch for each, plus warmup.
let ingestIterations = 150
let ingestWarmup = 1

/// Events in the pre-built store of the read benchmarks: 500k events of 20 sites over 92 days.
let prebuiltEvents = 500_000

/// Writes `events` generated events (default workload shape) to a new store and reopens it, so
/// the snapshot holds parts only, as after a restart.
func buildStore(_ fixture: StoreFixture, name: String, events: Int) async throws {
    fixture.directory = makeStoreDirectory(name)
    var generator = WorkloadGenerator(WorkloadConfig(events: events))
    let writer = try EventStore(options: storeOptions(fixture.directory))
    while true {
        var batch = EventBatch()
        if generator.nextEvents(10_000, into: &batch) == 0 { break }
        _ = try await writer.ingest(batch)
        try writer.flushIfDue()
    }
    try writer.close()
    fixture.store = try EventStore(options: storeOptions(fixture.directory))
    fixture.siteID = generator.siteIDs[0]
    fixture.end = generator.config.end
}

var rowsMatched: BenchmarkMetric { .custom("rowsMatched", polarity: .prefersLarger, useScalingFactor: false) }
var granulesRead: BenchmarkMetric { .custom("granulesRead", polarity: .prefersSmaller, useScalingFactor: false) }

let benchmarks: @Sendable () -> Void = {
    let ingest = StoreFixture()
    Benchmark(
        "EventStore.ingest + flush, 1,000-event batch, WAL on (per event)",
        configuration: .init(
            metrics: [.wallClock, .throughput, .mallocCountTotal, .writeSyscalls, .writeBytesLogical],
            warmupIterations: ingestWarmup,
            scalingFactor: .kilo,
            maxDuration: .seconds(10),
            maxIterations: ingestIterations,
            thresholds: [
                .wallClock: .none,
                .throughput: .none,
                // Allocation and write counts move a little with thread timing (group commit).
                .mallocCountTotal: BenchmarkThresholds(relative: [.p50: 5.0]),
                .writeSyscalls: BenchmarkThresholds(relative: [.p50: 5.0]),
                .writeBytesLogical: BenchmarkThresholds(relative: [.p50: 5.0]),
            ]
        )
    ) { (benchmark: Benchmark) async throws in
        guard let store = ingest.store, ingest.next < ingest.batches.count else {
            benchmark.error("the pool of new batches is used up")
            return
        }
        let batch = ingest.batches[ingest.next]
        ingest.next += 1
        let outcome = try await store.ingest(batch)
        try store.flush()
        if outcome.accepted != batch.count { benchmark.error("\(outcome.duplicates) events taken for duplicates") }
    } setup: {
        ingest.directory = makeStoreDirectory("ingest")
        ingest.store = try EventStore(options: storeOptions(ingest.directory))
        // Distinct events for every iteration: the store refuses retries of the same event_id.
        var generator = WorkloadGenerator(WorkloadConfig(events: (ingestIterations + ingestWarmup + 4) * 1000))
        while true {
            var batch = EventBatch()
            if generator.nextEvents(1000, into: &batch) < 1000 { break }
            ingest.batches.append(batch)
        }
    } teardown: {
        try ingest.close()
    }

    let readConfiguration = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mallocCountTotal, rowsMatched, granulesRead],
        scalingFactor: .one,
        maxDuration: .seconds(2),
        thresholds: [
            .wallClock: .none,
            .throughput: .none,
            .mallocCountTotal: BenchmarkThresholds(relative: [.p50: 2.0]),
            rowsMatched: BenchmarkThresholds(absolute: [.p50: 0]),
            granulesRead: BenchmarkThresholds(absolute: [.p50: 0]),
        ]
    )

    // Rollup merges: under HTTP ingest every flush's rollup rows share keys (site, day, page…)
    // with earlier flushes, and merging their sketches was ~17 % of a server's CPU. Eight flushes
    // of events over the same 14 days (each generated with its span an hour apart), merged into
    // one rollup part per month; the flushes are outside the measurement.
    let rollupMerge = StoreFixture()
    Benchmark(
        "EventStore.mergeRollups, 8 flushes of 25,000 events over the same 14 days (per merge of all)",
        configuration: .init(
            metrics: [.wallClock, .cpuTotal, .mallocCountTotal],
            scalingFactor: .one,
            maxDuration: .seconds(30),
            maxIterations: 8,
            thresholds: [
                .wallClock: .none,
                .cpuTotal: .none,
                .mallocCountTotal: BenchmarkThresholds(relative: [.p50: 5.0]),
            ]
        )
    ) { (benchmark: Benchmark) async throws in
        let directory = makeStoreDirectory("rollup-merge")
        let store = try EventStore(options: storeOptions(directory))
        for batch in rollupMerge.batches {
            _ = try await store.ingest(batch)
            try store.flush()
        }
        benchmark.startMeasurement()
        let merges = try store.mergeRollups(force: true)
        benchmark.stopMeasurement()
        blackHole(merges)
        try store.close()
        try? FileManager.default.removeItem(atPath: directory)
    } setup: {
        for k in 0..<8 {
            let config = WorkloadConfig(events: 25_000, days: 14, end: WorkloadConfig.defaultEnd - Int64(k) * 3_600_000)
            var generator = WorkloadGenerator(config)
            var batch = EventBatch()
            _ = generator.nextEvents(25_000, into: &batch)
            rollupMerge.batches.append(batch)
        }
    } teardown: {
        rollupMerge.batches = []
    }

    let count = StoreFixture()
    Benchmark(
        "Snapshot.count, largest site, last 30 days of 500k events (per call)",
        configuration: readConfiguration
    ) { (benchmark: Benchmark) throws in
        guard let store = count.store else { return }
        let snapshot = store.snapshot()
        let request = ScanRequest(site: count.siteID, from: count.end - 30 * 86_400_000, to: count.end)
        benchmark.startMeasurement()
        let (n, stats) = try snapshot.count(request)
        benchmark.stopMeasurement()
        benchmark.measurement(rowsMatched, n)
        benchmark.measurement(granulesRead, stats.granulesRead)
    } setup: {
        try await buildStore(count, name: "count", events: prebuiltEvents)
    } teardown: {
        try count.close()
    }

    let scan = StoreFixture()
    Benchmark(
        "Snapshot.scan, largest site, last 30 days, 2 columns (page_path, visitor_id) (per call)",
        configuration: readConfiguration
    ) { (benchmark: Benchmark) throws in
        guard let store = scan.store else { return }
        let snapshot = store.snapshot()
        let request = ScanRequest(
            site: scan.siteID, from: scan.end - 30 * 86_400_000, to: scan.end, columns: [.pagePath, .visitorID])
        var rows = 0
        var pathBytes = 0
        benchmark.startMeasurement()
        let stats = try snapshot.scan(request) { batch in
            rows += batch.count
            pathBytes += batch[string: .pagePath].bytes.count
        }
        benchmark.stopMeasurement()
        blackHole(pathBytes)
        benchmark.measurement(rowsMatched, rows)
        benchmark.measurement(granulesRead, stats.granulesRead)
    } setup: {
        try await buildStore(scan, name: "scan", events: prebuiltEvents)
    } teardown: {
        try scan.close()
    }
}
