import Engine
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Where counts of bot-filtered events are kept across restarts (`MetadataStore`), so that
/// `tally inspect` can show what the server filtered and why.
public protocol FilteredEventsSink: Sendable {
    func addFilteredEvents(_ counts: [FilteredEventCount]) throws(MetadataError)
}

extension MetadataStore: FilteredEventsSink {}

/// Bot counts by (property, UTC day, reason) since the last write to the sink.
final class FilteredLedger: Sendable {
    private struct Key: Hashable {
        var property: String
        var day: String
        var reason: String
    }

    private let pending = Mutex<[Key: Int]>([:])

    func add(property: String, reasons: [String: Int], now: Date = Date()) {
        let day = Self.day(now)
        pending.withLock { p in
            for (reason, n) in reasons { p[Key(property: property, day: day, reason: reason), default: 0] += n }
        }
    }

    /// Moves the pending counts into the sink; on failure they are kept for the next try.
    func drain(into sink: any FilteredEventsSink) throws {
        let taken = pending.withLock { p -> [Key: Int] in
            defer { p = [:] }
            return p
        }
        guard !taken.isEmpty else { return }
        do {
            try sink.addFilteredEvents(taken.map { FilteredEventCount(propertyID: $0.property, day: $0.day,
                                                                       reason: $0.reason, events: $1) })
        } catch {
            pending.withLock { p in for (k, n) in taken { p[k, default: 0] += n } }
            throw error
        }
    }

    static func day(_ date: Date) -> String {
        let (y, m, d) = CivilTime.civil(fromDays: CivilTime.day(ms: Int64(date.timeIntervalSince1970 * 1000)))
        return String(format: "%04d-%02d-%02d", y, m, d)
    }
}

/// Writes the ledger to the sink every `interval` and once more on shutdown.
struct FilteredLedgerService: Service {
    let ledger: FilteredLedger
    let sink: any FilteredEventsSink
    let interval: Duration
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            do { try ledger.drain(into: sink) } catch {
                logger.warning("cannot record bot-filtered event counts: \(error)")
            }
        }
    }
}
