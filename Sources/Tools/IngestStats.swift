import Foundation
import Histogram
import NIOConcurrencyHelpers

/// What the workers of `tally bench ingest` observed, shared between them and the progress
/// printer (a few thousand updates a second: a lock is nothing next to an HTTP round trip).
final class IngestStats: Sendable {
    struct Counts: Sendable {
        /// Requests answered 200 and the events they carried.
        var requests = 0
        var events = 0
        var accepted = 0
        var duplicates = 0
        var filtered = 0
        var rejected = 0
        /// Requests not answered 200 (any other status or no answer), by status or error.
        var errors = 0
        var errorKinds: [String: Int] = [:]
    }

    struct State: Sendable {
        /// Requests sent after the warm-up.
        var measured = Counts()
        /// All requests, warm-up included (for the per-second progress lines).
        var all = Counts()
        /// Acknowledgement latency of measured requests, microseconds.
        var latency = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
        /// When the last measured answer arrived (uptime nanoseconds).
        var lastAnswer: UInt64 = 0
    }

    private let state = NIOLockedValueBox(State())

    /// An answer with status 200 and its counts.
    func recordAnswer(events: Int, answer: IngestAnswer, latencyMicros: UInt64, measured: Bool, now: UInt64) {
        state.withLockedValue { s in
            func add(_ c: inout Counts) {
                c.requests += 1
                c.events += events
                c.accepted += answer.accepted
                c.duplicates += answer.duplicates
                c.filtered += answer.filtered
                c.rejected += answer.rejected
            }
            add(&s.all)
            if measured {
                add(&s.measured)
                _ = s.latency.record(latencyMicros)
                s.lastAnswer = max(s.lastAnswer, now)
            }
        }
    }

    /// A request that failed: another status than 200, or a transport error.
    func recordError(_ kind: String, measured: Bool, now: UInt64) {
        state.withLockedValue { s in
            s.all.errors += 1
            s.all.errorKinds[kind, default: 0] += 1
            if measured {
                s.measured.errors += 1
                s.measured.errorKinds[kind, default: 0] += 1
                s.lastAnswer = max(s.lastAnswer, now)
            }
        }
    }

    func snapshot() -> State { state.withLockedValue { $0 } }

    /// (p50, p99) of the measured latencies so far, in milliseconds; zeros before any.
    func runningPercentiles() -> (p50: Double, p99: Double) {
        state.withLockedValue { s in
            s.latency.totalCount == 0
                ? (0, 0)
                : (Double(s.latency.valueAtPercentile(50)) / 1000, Double(s.latency.valueAtPercentile(99)) / 1000)
        }
    }
}

/// The counts of a 200 answer to POST /v1/events: `{"accepted":…,"duplicates":…,"filtered":…,"rejected":…,"errors":[…]}`.
struct IngestAnswer: Equatable {
    var accepted = 0
    var duplicates = 0
    var filtered = 0
    var rejected = 0

    /// Reads the four counts with a byte scan (the load generator shares the CPU with the server,
    /// so it does not run a JSON decoder per answer); nil when one is missing.
    init?(_ bytes: UnsafeRawBufferPointer) {
        guard let a = Self.integer("accepted", in: bytes), let d = Self.integer("duplicates", in: bytes),
              let f = Self.integer("filtered", in: bytes), let r = Self.integer("rejected", in: bytes)
        else { return nil }
        (accepted, duplicates, filtered, rejected) = (a, d, f, r)
    }

    init(accepted: Int, duplicates: Int, filtered: Int, rejected: Int) {
        (self.accepted, self.duplicates, self.filtered, self.rejected) = (accepted, duplicates, filtered, rejected)
    }

    /// The non-negative integer after the first `"key":` in `bytes`.
    static func integer(_ key: StaticString, in bytes: UnsafeRawBufferPointer) -> Int? {
        let needle = UnsafeRawBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)
        let n = needle.count + 3  // quotes and colon
        guard bytes.count > n else { return nil }
        var i = 0
        while i + n < bytes.count {
            if bytes[i] == UInt8(ascii: "\"") && bytes[i + n - 2] == UInt8(ascii: "\"")
                && bytes[i + n - 1] == UInt8(ascii: ":")
                && UnsafeRawBufferPointer(rebasing: bytes[(i + 1)..<(i + n - 2)]).elementsEqual(needle)
            {
                var j = i + n
                while j < bytes.count && bytes[j] == UInt8(ascii: " ") { j += 1 }
                var value = 0
                var digits = 0
                while j < bytes.count, bytes[j] >= UInt8(ascii: "0"), bytes[j] <= UInt8(ascii: "9") {
                    value = value * 10 + Int(bytes[j] - UInt8(ascii: "0"))
                    j += 1
                    digits += 1
                }
                return digits > 0 ? value : nil
            }
            i += 1
        }
        return nil
    }
}
