// Ingest: the hand-written JSON reader (EventJSON.EventReader) on seed-000 events made by
// the project's workload generator. Figures are per event (scalingFactor .kilo: one
// iteration decodes 1,000 events).

import Benchmark
import Engine
import EventJSON
import Workload

/// Server arrival time handed to the reader: the end of the generated span (2026-11-01).
let receivedAt = WorkloadConfig.defaultEnd

/// The first `n` events of the default workload (seed 42, 100k events, 20 sites, 92 days)
/// as NDJSON lines, one flat seed-000 event object per line.
func workloadLines(_ n: Int) -> [UInt8] {
    var generator = WorkloadGenerator(WorkloadConfig())
    var out: [UInt8] = []
    let made = generator.nextNDJSON(n, into: &out)
    precondition(made == n, "the workload ran out after \(made) events")
    return out
}

/// The same events as one seed-000 request body: `{"events":[ ... ]}`.
func workloadDocument(_ n: Int) -> [UInt8] {
    let lines = workloadLines(n).split(separator: UInt8(ascii: "\n"))
    var doc = Array(#"{"events":["#.utf8)
    for (i, line) in lines.enumerated() {
        if i > 0 { doc.append(UInt8(ascii: ",")) }
        doc.append(contentsOf: line)
    }
    doc.append(contentsOf: "]}".utf8)
    return doc
}

/// Wall-clock figures are for people (they move with the machine's load); allocation counts
/// are deterministic for the reader and are what a comparison may gate.
var ingestConfiguration: Benchmark.Configuration {
    Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        thresholds: [
            .wallClock: .none,
            .throughput: .none,
            .mallocCountTotal: BenchmarkThresholds(relative: [.p50: 2.0]),
        ]
    )
}

let benchmarks: @Sendable () -> Void = {
    let options = IngestOptions(receivedAt: receivedAt)

    // A typical browser/SDK request: 100 events, decoded 10 times per iteration.
    Benchmark(
        "EventReader.decodeDocument, 100-event seed-000 request (per event)",
        configuration: ingestConfiguration
    ) { (benchmark: Benchmark, document: [UInt8]) in
        let requests = benchmark.configuration.scalingFactor.rawValue / 100
        document.withUnsafeBytes { bytes in
            for _ in 0..<requests {
                do {
                    let result = try EventReader.decodeDocument(bytes, options: options)
                    blackHole(result.batch.count)
                } catch {
                    benchmark.error("decodeDocument failed: \(error)")
                    return
                }
            }
        }
    } setup: {
        let document = workloadDocument(100)
        let check = try document.withUnsafeBytes { try EventReader.decodeDocument($0, options: options) }
        precondition(check.accepted == 100 && check.rejected == 0, "the document must decode whole")
        return document
    }

    // A bulk import: 1,000 NDJSON lines into one batch per iteration.
    Benchmark(
        "EventReader.decodeLines, 1,000 NDJSON lines (per event)",
        configuration: ingestConfiguration
    ) { (benchmark: Benchmark, lines: [UInt8]) in
        lines.withUnsafeBytes { bytes in
            var batch = EventBatch()
            var errors: [IngestError] = []
            let (accepted, _) = EventReader.decodeLines(
                bytes, firstIndex: 0, options: options, into: &batch, errors: &errors)
            blackHole(accepted)
        }
    } setup: {
        let lines = workloadLines(1000)
        var batch = EventBatch()
        var errors: [IngestError] = []
        let (accepted, rejected) = lines.withUnsafeBytes {
            EventReader.decodeLines($0, firstIndex: 0, options: options, into: &batch, errors: &errors)
        }
        precondition(accepted == 1000 && rejected == 0, "every line must decode")
        return lines
    }
}
