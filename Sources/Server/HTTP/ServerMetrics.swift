import CoreMetrics
import Engine
import Prometheus

/// The server's counters and gauges (swift-metrics), exported in Prometheus' text format at
/// GET /metrics. Each application has its own registry, so tests do not share counters.
struct ServerMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    /// Bot counts not yet written to meta.sqlite.
    let filteredLedger = FilteredLedger()

    init() {
        registry = PrometheusCollectorRegistry()
        factory = PrometheusMetricsFactory(registry: registry)
    }

    /// One ingest request's outcome, by property and HTTP status.
    func recordIngest(property: String?, status: Int, accepted: Int = 0, rejected: Int = 0, duplicates: Int = 0,
                      botReasons: [String: Int] = [:], clamped: Int = 0) {
        CoreMetrics.Counter(label: "tally_ingest_requests_total", dimensions: [("status", String(status))], factory: factory)
            .increment()
        guard let property else { return }
        let p = [("property", property)]
        for (name, n) in [("tally_events_accepted_total", accepted), ("tally_events_rejected_total", rejected),
                          ("tally_events_duplicate_total", duplicates),
                          ("tally_events_occurred_at_clamped_total", clamped)] where n > 0 {
            CoreMetrics.Counter(label: name, dimensions: p, factory: factory).increment(by: n)
        }
        for (reason, n) in botReasons.sorted(by: { $0.key < $1.key }) {
            CoreMetrics.Counter(label: "tally_events_filtered_bot_total", dimensions: p + [("reason", reason)],
                                factory: factory).increment(by: n)
        }
        if !botReasons.isEmpty { filteredLedger.add(property: property, reasons: botReasons) }
    }

    /// The exposition text, with the store's state as gauges.
    func render(store: EventStore) -> [UInt8] {
        let status = store.status
        Gauge(label: "tally_buffered_rows", factory: factory).record(status.bufferedRows)
        Gauge(label: "tally_buffered_bytes", factory: factory).record(status.bufferedBytes)
        Gauge(label: "tally_ingest_waiting_for_room", factory: factory).record(store.waitingForRoom)
        Gauge(label: "tally_parts", factory: factory).record(status.parts)
        Gauge(label: "tally_parts_max_per_partition", factory: factory).record(status.maxPartsPerPartition)
        Gauge(label: "tally_merges_completed", factory: factory).record(status.merges.completed)
        Gauge(label: "tally_merged_rows", factory: factory).record(status.merges.rows)
        Gauge(label: "tally_merge_duplicates_dropped", factory: factory).record(status.merges.duplicatesDropped)
        Gauge(label: "tally_merges_running", factory: factory).record(status.mergesRunning)
        Gauge(label: "tally_dedupe_keys", factory: factory).record(status.dedupeKeys)
        Gauge(label: "tally_rollup_cache_bytes", factory: factory).record(status.rollupCacheBytes)
        Gauge(label: "tally_rollup_cache_parts", factory: factory).record(status.rollupCacheParts)
        Gauge(label: "tally_rollup_cache_loads", factory: factory).record(status.rollupCacheLoads)
        Gauge(label: "tally_overloaded", factory: factory).record(store.isOverloaded ? 1 : 0)
        return registry.emitToBuffer()
    }
}
