import Engine
import Logging
import ServiceLifecycle

/// Carries the properties' settings that the event store acts on by itself — retention (TTL
/// drops) and time zones (rollup days) — from the metadata database to the store: after an
/// admin API change at once, and every `interval` for changes made by `tally property` beside
/// the running server.
public enum PropertySettings {
    /// Month partitions go once past the longest raw retention of any property (never shorter
    /// than the configured default); rollup months after the longest rollup retention. A
    /// property's own, shorter raw retention applies to its queries and its ingest.
    public static func retentionDays(_ properties: [Property], configuration: ServerConfiguration)
        -> (raw: Int, rollup: Int)
    {
        (max(properties.map(\.rawRetentionDays).max() ?? 0, configuration.defaultRawRetentionDays),
         max(properties.map(\.rollupRetentionDays).max() ?? 0, configuration.defaultRollupRetentionDays))
    }

    static func apply(_ properties: [Property], to store: EventStore, configuration: ServerConfiguration,
                      logger: Logger) {
        let (raw, rollup) = retentionDays(properties, configuration: configuration)
        let rawMs = Int64(raw) * 86_400_000, rollupMs = Int64(rollup) * 86_400_000
        if store.rawRetention != rawMs || store.rollupRetentionOverride != rollupMs {
            logger.info("retention: raw events \(raw) days, rollups \(rollup) days")
            store.setRetention(raw: rawMs, rollups: rollupMs)
        }
        for p in properties {
            guard let zone = try? QueryTimeZone(identifier: p.timezone),
                  store.options.siteTimeZones.zone(p.id).identifier != zone.identifier
            else { continue }
            if store.setTimeZone(zone, forSite: p.id) {
                logger.info("rebuilding the rollups of \(p.id) for its time zone \(p.timezone)")
            }
        }
    }
}

struct PropertySettingsService: Service {
    let metadata: MetadataStore
    let store: EventStore
    let configuration: ServerConfiguration
    let interval: Duration
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                PropertySettings.apply(try metadata.listProperties(), to: store, configuration: configuration,
                                       logger: logger)
            } catch {
                logger.warning("cannot read the properties' settings: \(error)")
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
