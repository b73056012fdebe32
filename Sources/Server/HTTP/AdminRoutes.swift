import Engine
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `/v1/admin/...`: properties and keys over HTTP, guarded by the configured admin token
/// (`Authorization: Bearer TOKEN`). The same operations as `tally property` and `tally key`.
///
///     GET    /v1/admin/properties                  list
///     POST   /v1/admin/properties                  create: {"id", "name"?, "timezone"?, "origins"?,
///                                                  "raw_retention_days"?, "rollup_retention_days"?,
///                                                  "respect_privacy_signals"?}
///                                                  → 201 {"property_id","write_key","read_key","property"}
///     GET    /v1/admin/properties/{id}             one property with its keys
///     PATCH  /v1/admin/properties/{id}             change name, timezone, origins, retention, privacy signals
///     POST   /v1/admin/properties/{id}/keys        {"kind":"write"|"read"} → 201 {"key", "key_id", ...}
///     GET    /v1/admin/properties/{id}/keys        list keys (never their text)
///     DELETE /v1/admin/keys/{reference}            revoke by key id, listing prefix or whole key
struct AdminRoutes: Sendable {
    let metadata: MetadataStore
    /// Told about retention and time-zone changes at once (PropertySettings).
    let store: EventStore?
    /// SHA-256 of the admin token; nil when none is configured (the API answers 403).
    let tokenDigest: [UInt8]?
    /// SHA-256 of the per-run control token (`ServerConfiguration.controlToken`); accepted on the
    /// maintenance routes only.
    let controlDigest: [UInt8]?
    let configuration: ServerConfiguration

    init(metadata: MetadataStore, store: EventStore? = nil, configuration: ServerConfiguration) {
        self.metadata = metadata
        self.store = store
        tokenDigest = configuration.adminToken.map { Array(SHA256.hash(data: Data($0.utf8))) }
        controlDigest = configuration.controlToken.map { Array(SHA256.hash(data: Data($0.utf8))) }
        self.configuration = configuration
    }

    func register(on router: Router<TallyRequestContext>) {
        let group = router.group("/v1/admin")
        group.get("properties") { request, _ in try await guarded(request) { try listProperties() } }
        group.post("properties") { request, _ in try await guarded(request) { try await createProperty(request) } }
        group.get("properties/{id}") { request, context in
            try await guarded(request) { try showProperty(try context.parameters.require("id")) }
        }
        group.patch("properties/{id}") { request, context in
            try await guarded(request) { try await updateProperty(request, id: try context.parameters.require("id")) }
        }
        group.post("properties/{id}/keys") { request, context in
            try await guarded(request) { try await createKey(request, propertyID: try context.parameters.require("id")) }
        }
        group.get("properties/{id}/keys") { request, context in
            try await guarded(request) { try listKeys(try context.parameters.require("id")) }
        }
        group.delete("keys/{reference}") { request, context in
            try await guarded(request) { try revokeKey(try context.parameters.require("reference")) }
        }
        if store != nil { registerMaintenance(on: group) }
    }

    // MARK: Authorization

    /// nil when the request carries the admin token (or, with `control`, the control token),
    /// else the answer to send.
    func refusal(_ request: Request, control: Bool = false) -> Response? {
        let accepted = [tokenDigest, control ? controlDigest : nil].compactMap { $0 }
        guard !accepted.isEmpty else {
            return JSONBody.error(.forbidden, "the admin API is disabled: set admin_token in the config file or TALLY_ADMIN_TOKEN",
                                  field: "authorization")
        }
        guard let auth = request.headers[.authorization] else {
            return JSONBody.error(.unauthorized, "missing admin token: send Authorization: Bearer TOKEN",
                                  field: "authorization", headers: [.wwwAuthenticate: "Bearer"])
        }
        let parts = auth.split(separator: " ", maxSplits: 1)
        let given = parts.count == 2 && parts[0].lowercased() == "bearer" ? String(parts[1]) : ""
        // Digests of equal length compared without an early exit: the time says nothing about the token.
        let digest = Array(SHA256.hash(data: Data(given.utf8)))
        var matched = false
        for expected in accepted {
            var difference: UInt8 = 0
            for i in 0..<digest.count { difference |= digest[i] ^ expected[i] }
            matched = matched || difference == 0
        }
        guard matched else {
            return JSONBody.error(.unauthorized, "wrong admin token", field: "authorization",
                                  headers: [.wwwAuthenticate: "Bearer"])
        }
        return nil
    }

    func guarded(_ request: Request, control: Bool = false, _ body: () async throws -> Response) async throws -> Response {
        if let refusal = refusal(request, control: control) { return refusal }
        do { return try await body() } catch { return Self.answer(error) }
    }

    static func answer(_ error: any Error) -> Response {
        switch error {
        case let e as MetadataError:
            let status: HTTPResponse.Status = switch e.code {
            case .notFound: .notFound
            case .alreadyExists, .ambiguous: .conflict
            case .invalidArgument: .badRequest
            default: .internalServerError
            }
            return JSONBody.error(status, e.message, field: e.field)
        case let e as BadBody:
            return JSONBody.error(.badRequest, e.message, field: e.field)
        case let e as BackupError:
            return JSONBody.error(.internalServerError, e.description)
        case let e as TallyError:
            return JSONBody.error(e.code == .invalidArgument ? .badRequest : .internalServerError, e.description)
        default:
            return JSONBody.error(.internalServerError, "\(error)")
        }
    }

    // MARK: Handlers

    func listProperties() throws -> Response {
        JSONBody.response(try metadata.listProperties().map(PropertyBody.init))
    }

    func showProperty(_ id: String) throws -> Response {
        guard let p = try metadata.property(id: id) else {
            throw MetadataError(.notFound, "no property has the id '\(id)'").about("id")
        }
        var body = PropertyBody(p)
        body.keys = try metadata.listKeys(propertyID: id).map(KeyBody.init)
        return JSONBody.response(body)
    }

    struct CreateProperty: Decodable {
        var id: String
        var name: String?
        var timezone: String?
        var origins: [String]?
        var raw_retention_days: Int?
        var rollup_retention_days: Int?
        var respect_privacy_signals: Bool?
    }

    func createProperty(_ request: Request) async throws -> Response {
        let body = try await Self.decode(CreateProperty.self, request)
        let created = try metadata.createProperty(
            id: body.id, name: body.name, timezone: body.timezone ?? "UTC", origins: body.origins ?? configuration.defaultOrigins,
            rawRetentionDays: body.raw_retention_days ?? configuration.defaultRawRetentionDays,
            rollupRetentionDays: body.rollup_retention_days ?? configuration.defaultRollupRetentionDays,
            respectPrivacySignals: body.respect_privacy_signals ?? false)
        settingsChanged()
        return JSONBody.response(
            Created(property_id: created.property.id, write_key: created.writeKey, read_key: created.readKey,
                    property: PropertyBody(created.property)), status: .created)
    }

    struct Created: Encodable {
        var property_id: String
        var write_key: String
        var read_key: String
        var property: PropertyBody
    }

    struct UpdateProperty: Decodable {
        var name: String?
        var timezone: String?
        var origins: [String]?
        var raw_retention_days: Int?
        var rollup_retention_days: Int?
        var respect_privacy_signals: Bool?
    }

    func updateProperty(_ request: Request, id: String) async throws -> Response {
        let body = try await Self.decode(UpdateProperty.self, request)
        let p = try metadata.updateProperty(
            id: id,
            .init(name: body.name, timezone: body.timezone, origins: body.origins,
                  rawRetentionDays: body.raw_retention_days, rollupRetentionDays: body.rollup_retention_days,
                  respectPrivacySignals: body.respect_privacy_signals))
        settingsChanged()
        return JSONBody.response(PropertyBody(p))
    }

    /// Hands the properties' retention and time zones to the store now, not at the next sync.
    func settingsChanged() {
        guard let store, let properties = try? metadata.listProperties() else { return }
        PropertySettings.apply(properties, to: store, configuration: configuration, logger: Logger(label: "tally"))
    }

    struct CreateKey: Decodable {
        var kind: String
    }

    func createKey(_ request: Request, propertyID: String) async throws -> Response {
        let body = try await Self.decode(CreateKey.self, request)
        guard let kind = APIKey.Kind(rawValue: body.kind) else {
            throw BadBody(message: "kind must be \"write\" or \"read\", not \"\(body.kind)\"", field: "kind")
        }
        let (key, text) = try metadata.createKey(propertyID: propertyID, kind: kind)
        var answer = KeyBody(key)
        answer.key = text
        return JSONBody.response(answer, status: .created)
    }

    func listKeys(_ propertyID: String) throws -> Response {
        JSONBody.response(try metadata.listKeys(propertyID: propertyID).map(KeyBody.init))
    }

    func revokeKey(_ reference: String) throws -> Response {
        JSONBody.response(KeyBody(try metadata.revokeKey(reference)))
    }

    // MARK: Bodies

    struct PropertyBody: Encodable {
        var id: String
        var name: String
        var timezone: String
        var allowed_origins: [String]
        var raw_retention_days: Int
        var rollup_retention_days: Int
        var created_at: Int64
        var respect_privacy_signals: Bool
        var keys: [KeyBody]?

        init(_ p: Property) {
            id = p.id
            name = p.name
            timezone = p.timezone
            allowed_origins = p.allowedOrigins
            raw_retention_days = p.rawRetentionDays
            rollup_retention_days = p.rollupRetentionDays
            created_at = p.createdAt
            respect_privacy_signals = p.respectPrivacySignals
        }
    }

    struct KeyBody: Encodable {
        var key_id: String
        var property_id: String
        var kind: String
        var prefix: String
        var created_at: Int64
        var revoked_at: Int64?
        /// The key's text: only in the answer that creates it.
        var key: String?

        init(_ k: APIKey) {
            key_id = k.id
            property_id = k.propertyID
            kind = k.kind.rawValue
            prefix = k.prefix
            created_at = k.createdAt
            revoked_at = k.revokedAt
        }
    }

    struct BadBody: Error {
        var message: String
        var field: String?
    }

    /// The JSON body as `T`; a 400 names the field that is missing or of the wrong type.
    static func decode<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: 64 << 10) } catch {
            throw BadBody(message: "request body is larger than 64 KiB", field: "body")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch let DecodingError.keyNotFound(key, _) {
            throw BadBody(message: "missing field \(key.stringValue)", field: key.stringValue)
        } catch let DecodingError.typeMismatch(expected, context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw BadBody(message: "\(field) must be of type \(expected)", field: field)
        } catch let DecodingError.valueNotFound(expected, context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw BadBody(message: "\(field) must be of type \(expected), not null", field: field)
        } catch {
            throw BadBody(message: "the body is not a JSON object", field: "body")
        }
    }
}
