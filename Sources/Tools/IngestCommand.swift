import ArgumentParser
import Engine
import EventJSON
import Foundation

struct IngestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Bulk-load NDJSON events (one event object per line) into a data directory.",
        discussion: """
            Each line is one event object, as in POST /v1/events (seed 000's flat shape or seed 003's).
            Invalid lines are rejected one by one with a reason; the rest are stored. Events already
            accepted within the dedupe window (same site_id and event_id) are counted as duplicates.

            Examples:
              tally generate --events 1000000 --output sample.ndjson
              tally ingest sample.ndjson --data ./data
            """
    )

    @Argument(help: "The NDJSON file to load ('-' for standard input).")
    var file: String

    @Option(help: "The data directory.")
    var data: String = "./data"

    @Option(help: "Lines per ingest batch (one WAL record each).")
    var batchSize: Int = 8192

    @Option(help: "site_id for events that carry none.")
    var site: String?

    @Option(help: .hidden)
    var ackFile: String?

    @Option(help: .hidden)
    var flushRows: Int?

    @Flag(help: "Print the summary as JSON.")
    var json = false

    func run() async throws {
        BackgroundPriority.keepForeground()
        var options = StoreOptions.forCommand(data)
        options.backgroundFlush = true
        if let flushRows { options.flushRows = flushRows }
        let store: EventStore
        do { store = try EventStore(options: options) } catch {
            throw failure("\(data): \(error)")
        }
        guard let input = LineSource(path: file) else {
            try? store.close()
            throw failure("\(file): cannot open for reading")
        }
        let ack = try ackFile.map { path -> FileHandle in
            guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path)
            else { throw failure("\(path): cannot create") }
            return h
        }

        let started = Date()
        var summary = IngestSummary()
        let progress = Progress(enabled: isatty(2) == 1 && !json)
        var line = 0
        let chunkSize = 4 << 20

        try await withThrowingTaskGroup(of: (Range<Int>, IngestOutcome).self) { group in
            var inflight = 0
            func collect(_ r: (Range<Int>, IngestOutcome)) throws {
                summary.accepted += r.1.accepted
                summary.duplicates += r.1.duplicates
                if let ack {
                    ack.write("\(r.0.lowerBound) \(r.0.upperBound)\n".data(using: .utf8)!)
                }
                progress.update(summary, since: started)
            }
            while let chunk = try input.next(size: chunkSize) {
                var start = 0
                while start < chunk.count {
                    // Up to batchSize lines per batch.
                    let (end, lines) = Self.lineBoundary(chunk, from: start, to: chunk.count, lines: batchSize)
                    var batch = EventBatch()
                    var errors: [IngestError] = []
                    let opts = IngestOptions(receivedAt: Int64(Date().timeIntervalSince1970 * 1000), defaultSiteID: site)
                    let first = line
                    let r = EventReader.decodeLines(UnsafeRawBufferPointer(rebasing: chunk[start..<end]), firstIndex: first,
                                                    options: opts, into: &batch, errors: &errors)
                    summary.rejected += r.rejected
                    summary.record(errors)
                    line += lines
                    start = end
                    if batch.count > 0 {
                        let b = batch
                        group.addTask { (first..<first + lines, try await store.ingest(b)) }
                        inflight += 1
                        if inflight >= 3, let r = try await group.next() {
                            inflight -= 1
                            try collect(r)
                        }
                    }
                }
            }
            while let r = try await group.next() { try collect(r) }
        }
        try? ack?.synchronize()
        try store.close()
        progress.finish()
        summary.seconds = Date().timeIntervalSince(started)
        summary.lines = line
        print(json ? summary.json : summary.text)
    }
}

extension IngestCommand {
    /// The end of the `lines`-th line after `from` (or `to`), and how many lines that is.
    static func lineBoundary(_ b: UnsafeRawBufferPointer, from: Int, to: Int, lines: Int) -> (Int, Int) {
        var end = from
        var n = 0
        while end < to && n < lines {
            if let p = memchr(b.baseAddress! + end, Int32(UInt8(ascii: "\n")), to - end) {
                end = b.baseAddress!.distance(to: UnsafeRawPointer(p)) + 1
            } else {
                end = to
            }
            n += 1
        }
        return (end, n)
    }
}

struct IngestSummary {
    var lines = 0
    var accepted = 0
    var rejected = 0
    var duplicates = 0
    var seconds = 0.0
    /// Rejections by "field: reason", and the first few with their line numbers.
    var reasons: [String: Int] = [:]
    var examples: [String] = []

    mutating func record(_ errors: [IngestError]) {
        for e in errors {
            reasons["\(e.field): \(e.reason)", default: 0] += 1
            if examples.count < 10 { examples.append("line \(e.index + 1): \(e.field): \(e.reason)") }
        }
    }

    var rate: Double { seconds > 0 ? Double(accepted + duplicates + rejected) / seconds : 0 }

    var text: String {
        var s = "accepted \(accepted), rejected \(rejected), duplicates \(duplicates) in \(String(format: "%.2f", seconds)) s"
            + " (\(Int(rate)) events/s)"
        for (reason, n) in reasons.sorted(by: { $0.value > $1.value }) { s += "\n  rejected \(n): \(reason)" }
        for e in examples { s += "\n  e.g. \(e)" }
        return s
    }

    var json: String {
        let object: [String: Any] = [
            "lines": lines, "accepted": accepted, "rejected": rejected, "duplicates": duplicates,
            "seconds": seconds, "events_per_second": rate,
            "rejections": reasons.map { ["reason": $0.key, "count": $0.value] }, "examples": examples,
        ]
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}

/// A progress line on standard error, redrawn at most 5 times a second, only on a terminal.
final class Progress: @unchecked Sendable {
    let enabled: Bool
    var last = Date.distantPast

    init(enabled: Bool) { self.enabled = enabled }

    func update(_ s: IngestSummary, since start: Date) {
        guard enabled, Date().timeIntervalSince(last) > 0.2 else { return }
        last = Date()
        let t = Date().timeIntervalSince(start)
        let rate = t > 0 ? Double(s.accepted + s.duplicates + s.rejected) / t : 0
        FileHandle.standardError.write(
            "\r\u{1B}[K\(s.accepted) accepted, \(s.rejected) rejected, \(s.duplicates) duplicates, \(Int(rate)) events/s".data(using: .utf8)!)
    }

    func finish() {
        if enabled { FileHandle.standardError.write("\r\u{1B}[K".data(using: .utf8)!) }
    }
}
