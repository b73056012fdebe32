import Engine
import EventJSON
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// POST /v1/events (and seed 001's /v1/ingest/*): authenticate the write key, decode the body
/// straight into engine columns, keep each event inside the key's property, ingest durably.
struct IngestHandler: Sendable {
    let store: EventStore
    let keys: any KeyDirectory
    let configuration: ServerConfiguration
    let perIP: RateLimiter
    let perKey: RateLimiter
    let enrichment: Enrichment

    let metrics: ServerMetrics

    init(store: EventStore, keys: any KeyDirectory, configuration: ServerConfiguration, metrics: ServerMetrics) {
        self.metrics = metrics
        self.store = store
        self.keys = keys
        self.configuration = configuration
        enrichment = Enrichment(bots: configuration.bots)
        perIP = RateLimiter(perMinute: configuration.requestsPerMinutePerIP)
        perKey = RateLimiter(perMinute: configuration.requestsPerMinutePerKey)
    }

    static let writeKeyHeader = HTTPField.Name("X-Write-Key")!

    func handle(_ request: Request, context: TallyRequestContext) async throws -> Response {
        var property: String?
        var counts = Counts()
        let response = try await respond(request, context: context, property: &property, counts: &counts)
        metrics.recordIngest(property: property, status: Int(response.status.code), accepted: counts.accepted,
                             rejected: counts.rejected, duplicates: counts.duplicates, botReasons: counts.botReasons,
                             clamped: counts.clamped)
        return response
    }

    struct Counts {
        var accepted = 0
        var rejected = 0
        var duplicates = 0
        var filtered = 0
        var clamped = 0
        var botReasons: [String: Int] = [:]
    }

    private func respond(_ request: Request, context: TallyRequestContext, property resolved: inout String?,
                         counts: inout Counts) async throws -> Response {
        let origin = request.headers[.origin]
        // The store's clock (the system's, or a test's): received_at and the rate limits' refill.
        let now = store.options.clock.nowMillis()
        // 0. Per-address rate limit, before any work.
        if let address = context.remoteAddress?.ipAddress, let wait = perIP.take("ip:" + address, now: now) {
            return JSONBody.error(.tooManyRequests, "too many requests from this address", field: "rate_limit",
                                  headers: [.retryAfter: String(wait)])
        }
        // 1. Who is writing.
        guard let key = Self.writeKey(request) else {
            return JSONBody.error(.unauthorized, "missing write key: send Authorization: Bearer KEY, X-Write-Key or ?key=",
                                  field: "authorization")
        }
        guard let scope = try keys.writeScope(forKey: key) else {
            return JSONBody.error(.unauthorized, "unknown or revoked write key", field: "authorization")
        }
        let property = scope.propertyID
        resolved = property
        var cors: HTTPFields = [:]
        if let origin {
            guard scope.allows(origin: origin) else {
                return JSONBody.error(.forbidden, "origin \(origin) is not allowed for this property", field: "origin")
            }
            cors[.accessControlAllowOrigin] = origin
            cors[.vary] = "Origin"
        }
        if let wait = perKey.take("key:" + property + ":" + key, now: now) {
            return JSONBody.error(.tooManyRequests, "too many requests with this write key", field: "rate_limit",
                                  headers: cors + [.retryAfter: String(wait)])
        }
        // 2. Room to take it.
        // A buffer that is behind holds the request back a while (the flush gets the cores
        // meanwhile); one still over its bound after that gets the 503.
        if store.isBehind { _ = await store.waitForRoom(upTo: .milliseconds(configuration.overloadWaitMilliseconds)) }
        if store.isOverloaded {
            return JSONBody.error(.serviceUnavailable, "ingest is over its buffer bound; retry shortly",
                                  headers: [.retryAfter: String(configuration.retryAfterSeconds)])
        }
        // 3. The body, bounded.
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: configuration.maxBodyBytes)
        } catch {
            return JSONBody.error(.contentTooLarge, "request body is larger than \(configuration.maxBodyBytes) bytes",
                                  field: "body")
        }
        // 4. Decode into columns.
        let options = IngestOptions(receivedAt: now, defaultSiteID: property,
                                    maxEventsPerBatch: configuration.maxEventsPerRequest)
        let decoded: DecodeResult
        do {
            decoded = try body.withUnsafeReadableBytes { try EventReader.decodeDocument($0, options: options) }
        } catch {
            guard let error = error as? DocumentError else { throw error }
            let status: HTTPResponse.Status = error.code == .tooManyEvents ? .contentTooLarge : .badRequest
            return JSONBody.error(status, error.message, field: error.code == .tooManyEvents ? "events" : "body",
                                  offset: error.offset)
        }
        if let envelope = decoded.envelopePropertyID, envelope != property {
            return JSONBody.error(.forbidden, "property_id \(envelope) is not the write key's property", field: "property_id")
        }
        // 5. Events naming another property are refused one by one, never stored elsewhere.
        var problems = decoded.errors.map { IngestResponse.Problem(index: $0.index, field: $0.field, reason: $0.reason) }
        let rejectedIndices = Set(decoded.errors.map(\.index))
        var eventIndex: [Int] = []  // row → index of the event in the request
        var next = 0
        for _ in 0..<decoded.batch.count {
            while rejectedIndices.contains(next) { next += 1 }
            eventIndex.append(next)
            next += 1
        }
        var batch = decoded.batch
        var keep: [Int32] = []
        let sites = batch[string: .siteID]
        let times = batch[int: .occurredAt].values
        let propertyBytes = Array(property.utf8)
        // Events older than the raw retention (the property's, else the store's) would never
        // be counted, or be dropped with their month at once.
        let retention = scope.rawRetentionDays.map { Int64($0) * 86_400_000 } ?? store.options.retention
        let oldest = retention.map { now - $0 } ?? .min
        for row in 0..<batch.count {
            let own = sites.withValue(row) { v in propertyBytes.withUnsafeBytes { ByteOrder.equal(v, $0) } }
            if !own {
                problems.append(.init(index: eventIndex[row], field: "site_id",
                                      reason: "names another property than the write key's (\(property))"))
            } else if times[row] < oldest {
                problems.append(.init(index: eventIndex[row], field: "occurred_at",
                                      reason: "older than the raw retention (\(retention! / 86_400_000) days)"))
            } else {
                keep.append(Int32(row))
            }
        }
        if keep.count < batch.count {
            batch = batch.gather(keep)
            eventIndex = keep.map { eventIndex[Int($0)] }
        }
        // 6. Device, browser, OS, country; bots are dropped (counted, not stored).
        let countryHeader = configuration.countryHeader.flatMap { HTTPField.Name($0) }
        let enriched = enrichment.apply(to: batch, requestUserAgent: request.headers[.userAgent],
                                        country: countryHeader.flatMap { request.headers[$0] })
        batch = enriched.batch
        var filtered = enriched.botRows.count
        var filterReasons = enriched.botReasons
        // 6b. A property that respects Do Not Track / Global Privacy Control drops what such a browser sends.
        if scope.respectPrivacySignals, batch.count > 0,
           request.headers[Self.dntHeader] == "1" || request.headers[Self.gpcHeader] == "1" {
            filtered += batch.count
            filterReasons["privacy_signal", default: 0] += batch.count
            batch = batch.gather([])
        }
        // 7. Durable before we answer.
        var duplicates = 0
        var accepted = 0
        if batch.count > 0 {
            let outcome = try await store.ingest(batch)
            duplicates = outcome.duplicates
            accepted = outcome.accepted
        }
        problems.sort { $0.index < $1.index }
        counts = Counts(accepted: accepted, rejected: problems.count, duplicates: duplicates, filtered: filtered,
                        clamped: enriched.clamped, botReasons: filterReasons)
        return JSONBody.response(IngestResponse(accepted: accepted, rejected: problems.count, duplicates: duplicates,
                                                filtered: filtered, errors: problems), headers: cors)
    }

    static let dntHeader = HTTPField.Name("DNT")!
    static let gpcHeader = HTTPField.Name("Sec-GPC")!

    /// The write key from Authorization: Bearer, X-Write-Key, or the `key` query parameter
    /// (navigator.sendBeacon cannot set headers).
    static func writeKey(_ request: Request) -> String? {
        if let auth = request.headers[.authorization] {
            let parts = auth.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                // Optional whitespace around the token (RFC 9110: spaces and tabs; swift-http-types
                // already strips it at the end of a field value), trimmed by hand: Foundation's
                // trimmingCharacters(in:) went through NSString on every request, 0.5 % of a
                // server's CPU under `tally bench ingest` (perf).
                var token = parts[1]
                while let c = token.first, c == " " || c == "\t" { token.removeFirst() }
                while let c = token.last, c == " " || c == "\t" { token.removeLast() }
                return String(token)
            }
        }
        if let key = request.headers[writeKeyHeader], !key.isEmpty { return key }
        if let key = request.uri.queryParameters.get("key"), !key.isEmpty { return key }
        return nil
    }
}

extension HTTPFields {
    static func + (a: HTTPFields, b: HTTPFields) -> HTTPFields {
        var out = a
        out.append(contentsOf: b)
        return out
    }
}
