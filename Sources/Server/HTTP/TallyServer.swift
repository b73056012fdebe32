import Engine
import HTTPTypes
import Hummingbird
import NIOCore
import Logging
import ServiceLifecycle

/// The HTTP service: routes, handlers and the services that run beside them.
public enum TallyServer {
    /// An application serving `store`, ready for `runService()` (or HummingbirdTesting).
    /// On graceful shutdown (SIGTERM/SIGINT) the server stops accepting, finishes in-flight
    /// requests, then the store flushes and closes its WAL.
    ///
    /// `metadata`, when given, serves `/v1/admin/...` (with `configuration.adminToken`) and keeps
    /// the counts of bot-filtered events.
    public static func application(store: EventStore, keys: any KeyDirectory, metadata: MetadataStore? = nil,
                                   configuration: ServerConfiguration,
                                   logger: Logger = Logger(label: "tally")) -> some ApplicationProtocol {
        let metrics = ServerMetrics()
        let router = makeRouter(store: store, keys: keys, metadata: metadata, configuration: configuration, metrics: metrics)
        var services: [any Service] = [StoreService(store: store, logger: logger)]
        if let metadata {
            services.append(FilteredLedgerService(ledger: metrics.filteredLedger, sink: metadata, interval: .seconds(10),
                                                  logger: logger))
            services.append(PropertySettingsService(metadata: metadata, store: store, configuration: configuration,
                                                    interval: .seconds(5), logger: logger))
        }
        return Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "tally"),
            services: services,
            logger: logger)
    }

    /// Every route the server answers, as "METHOD /path/{parameter}" (the OpenAPI test's list).
    public static func routeList(store: EventStore, metadata: MetadataStore) -> [String] {
        makeRouter(store: store, keys: metadata, metadata: metadata, configuration: ServerConfiguration(),
                   metrics: ServerMetrics()).routes.map { "\($0.method) \($0.path)" }
    }

    static func makeRouter(store: EventStore, keys: any KeyDirectory, metadata: MetadataStore?,
                           configuration: ServerConfiguration, metrics: ServerMetrics) -> Router<TallyRequestContext> {
        let router = Router(context: TallyRequestContext.self)
        let ingest = IngestHandler(store: store, keys: keys, configuration: configuration, metrics: metrics)
        router.post("/v1/events") { request, context in try await ingest.handle(request, context: context) }
        // Seed 001's ingest routes take the same bodies.
        for path in ["/v1/ingest/event", "/v1/ingest/pageview", "/v1/ingest/session", "/v1/ingest/batch"] {
            router.post(RouterPath(path)) { request, context in try await ingest.handle(request, context: context) }
        }
        // CORS preflight: the actual request checks the key's allowed origins (a preflight carries
        // no Authorization header), so this only states what the endpoint accepts.
        for path in ["/v1/events", "/v1/ingest/event", "/v1/ingest/pageview", "/v1/ingest/session", "/v1/ingest/batch"] {
            router.on(RouterPath(path), method: .options) { request, _ in
                var headers: HTTPFields = [
                    .accessControlAllowMethods: "POST, OPTIONS",
                    .accessControlAllowHeaders: "Authorization, Content-Type, X-Write-Key",
                    .accessControlMaxAge: "86400",
                ]
                if let origin = request.headers[.origin] {
                    headers[.accessControlAllowOrigin] = origin
                    headers[.vary] = "Origin"
                }
                return Response(status: .noContent, headers: headers)
            }
        }
        let reports = ReportRoutes(store: store, keys: keys, configuration: configuration)
        reports.register(on: router)
        let admin = metadata.map { AdminRoutes(metadata: $0, store: store, configuration: configuration) }
        DrillDownRoutes(reports: reports, metadata: metadata, admin: admin).register(on: router)
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(bytes: metrics.render(store: store))))
        }
        router.get("/health") { _, _ in
            let status = store.status
            return JSONBody.response(Health(status: store.isOverloaded ? "overloaded" : "ok", parts: status.parts,
                                            buffered_rows: status.bufferedRows))
        }
        router.get("/t.js") { request, _ in StaticAsset.tracker.response(to: request) }
        for (path, asset) in StaticAsset.dashboard {
            router.get(RouterPath(path)) { request, _ in asset.response(to: request) }
        }
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"],
                     body: .init(byteBuffer: ByteBuffer(bytes: PackageResources.openapi_json)))
        }
        admin?.register(on: router)
        return router
    }

    struct Health: Encodable {
        var status: String
        var parts: Int
        var buffered_rows: Int
    }
}

/// Keeps the event store open while the server runs; on graceful shutdown (after the HTTP
/// server has stopped, services shut down in reverse order) flushes it and closes the WAL.
struct StoreService: Service {
    let store: EventStore
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        logger.info("flushing and closing the event store")
        try store.close()
    }
}
