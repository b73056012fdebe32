import Engine
import Foundation

/// A funnel as stored per property and given to the admin API and `tally funnel create`:
///
///     {"name": "signup", "count_by": "session", "window_seconds": 3600, "mode": "default",
///      "steps": [{"event_type": "pageview", "filters": "page_path==/pricing"},
///                {"event_type": "signup"}]}
///
/// `filters` use the reports' URL filter syntax (`dimension==a|b;other~text`). `count_by` is
/// `session` (default) or `visitor`, `mode` is `default` or `strict_order` (ClickHouse's
/// windowFunnel modes), `window_seconds` defaults to one day.
public struct FunnelSpec: Codable, Sendable, Equatable {
    public struct Step: Codable, Sendable, Equatable {
        public var event_type: String
        public var filters: String?

        public init(event_type: String, filters: String? = nil) {
            self.event_type = event_type
            self.filters = filters
        }
    }

    public var name: String
    public var steps: [Step]
    public var window_seconds: Int64?
    public var count_by: String?
    public var mode: String?
    /// ms since the Unix epoch; set by the store.
    public var created_at: Int64?

    public init(name: String, steps: [Step], windowSeconds: Int64? = nil, countBy: String? = nil, mode: String? = nil) {
        self.name = name
        self.steps = steps
        window_seconds = windowSeconds
        count_by = countBy
        self.mode = mode
    }

    public static let defaultWindowSeconds: Int64 = 86_400
    /// 90 days: the raw retention, beyond which no funnel can look.
    public static let maximumWindowSeconds: Int64 = 90 * 86_400

    /// The engine's definition; errors name the field (`steps[1].filters`, `window_seconds`, ...).
    public func definition() throws(MetadataError) -> FunnelDefinition {
        guard Self.validName(name) else {
            throw MetadataError(.invalidArgument, "funnel name '\(name)' is invalid: use 1–64 characters of A-Z a-z 0-9 . _ -")
                .about("name")
        }
        var out: [FunnelStep] = []
        for (i, s) in steps.enumerated() {
            guard !s.event_type.isEmpty, s.event_type.utf8.count <= EventColumn.eventType.maxLength else {
                throw MetadataError(.invalidArgument, "steps[\(i)].event_type must be 1–\(EventColumn.eventType.maxLength) bytes")
                    .about("steps[\(i)].event_type")
            }
            var filter: QueryFilter?
            if let text = s.filters, !text.isEmpty {
                do { filter = try FilterSyntax.parse(text) } catch let e as QueryError {
                    throw MetadataError(.invalidArgument, "steps[\(i)].filters: \(e.message)").about("steps[\(i)].filters")
                } catch {
                    throw MetadataError(.invalidArgument, "steps[\(i)].filters: \(error)").about("steps[\(i)].filters")
                }
            }
            out.append(FunnelStep(eventType: s.event_type, filter: filter))
        }
        let window = window_seconds ?? Self.defaultWindowSeconds
        guard (1...Self.maximumWindowSeconds).contains(window) else {
            throw MetadataError(.invalidArgument, "window_seconds must be 1–\(Self.maximumWindowSeconds), not \(window)")
                .about("window_seconds")
        }
        guard let countBy = FunnelDefinition.CountBy(rawValue: count_by ?? "session") else {
            throw MetadataError(.invalidArgument, "count_by must be \"session\" or \"visitor\", not \"\(count_by ?? "")\"")
                .about("count_by")
        }
        guard ["default", "strict_order"].contains(mode ?? "default") else {
            throw MetadataError(.invalidArgument, "mode must be \"default\" or \"strict_order\", not \"\(mode ?? "")\"")
                .about("mode")
        }
        let definition = FunnelDefinition(name: name, steps: out, windowMilliseconds: window * 1000, countBy: countBy,
                                          strictOrder: mode == "strict_order")
        do { try definition.validate() } catch {
            throw MetadataError(.invalidArgument, error.message).about(error.parameter)
        }
        return definition
    }

    /// The spec with its defaults written out, as stored and listed.
    public var normalized: FunnelSpec {
        var s = self
        s.window_seconds = window_seconds ?? Self.defaultWindowSeconds
        s.count_by = count_by ?? "session"
        s.mode = mode ?? "default"
        s.steps = steps.map { Step(event_type: $0.event_type, filters: $0.filters?.isEmpty == true ? nil : $0.filters) }
        return s
    }

    static func validName(_ name: String) -> Bool {
        let u = name.utf8
        return !u.isEmpty && u.count <= 64
            && u.allSatisfy { Base62.isDigit($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }
}

extension MetadataStore {
    /// Stores a funnel for a property; an existing funnel of that name is an error unless `replace`.
    @discardableResult
    public func saveFunnel(propertyID: String, _ spec: FunnelSpec, replace: Bool = false) throws(MetadataError) -> FunnelSpec {
        _ = try spec.definition()
        var stored = spec.normalized
        stored.created_at = clock.nowMillis()
        let json: String
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            json = String(decoding: try encoder.encode(stored), as: UTF8.self)
        } catch {
            throw MetadataError(.invalidArgument, "funnel '\(spec.name)' does not encode: \(error)")
        }
        return try sqlite {
            try pool.write { db in
                guard try fetchProperty(propertyID, db) != nil else {
                    throw MetadataError(.notFound, "no property has the id '\(propertyID)'").about("property_id")
                }
                let exists = try Bool.fetchOne(
                    db, sql: "SELECT 1 FROM funnels WHERE property_id = ? AND name = ?", arguments: [propertyID, spec.name]) ?? false
                if exists && !replace {
                    throw MetadataError(.alreadyExists, "property '\(propertyID)' has a funnel named '\(spec.name)' already")
                        .about("name")
                }
                try db.execute(
                    sql: "INSERT OR REPLACE INTO funnels (property_id, name, definition, created_at) VALUES (?, ?, ?, ?)",
                    arguments: [propertyID, spec.name, json, stored.created_at])
                return stored
            }
        }
    }

    /// A property's funnels by name.
    public func funnels(propertyID: String) throws(MetadataError) -> [FunnelSpec] {
        try sqlite {
            try pool.read { db in
                try String.fetchAll(db, sql: "SELECT definition FROM funnels WHERE property_id = ? ORDER BY name",
                                    arguments: [propertyID]).map(Self.decodeFunnel)
            }
        }
    }

    public func funnel(propertyID: String, name: String) throws(MetadataError) -> FunnelSpec? {
        try sqlite {
            try pool.read { db in
                try String.fetchOne(db, sql: "SELECT definition FROM funnels WHERE property_id = ? AND name = ?",
                                    arguments: [propertyID, name]).map(Self.decodeFunnel)
            }
        }
    }

    public func deleteFunnel(propertyID: String, name: String) throws(MetadataError) {
        try sqlite {
            try pool.write { db in
                try db.execute(sql: "DELETE FROM funnels WHERE property_id = ? AND name = ?", arguments: [propertyID, name])
                if db.changesCount == 0 {
                    throw MetadataError(.notFound, "property '\(propertyID)' has no funnel named '\(name)'").about("name")
                }
            }
        }
    }

    static func decodeFunnel(_ json: String) throws -> FunnelSpec {
        do { return try JSONDecoder().decode(FunnelSpec.self, from: Data(json.utf8)) } catch {
            throw MetadataError(.database, "a stored funnel is not a funnel definition: \(json)")
        }
    }
}
