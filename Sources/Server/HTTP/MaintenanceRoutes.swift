import Engine
import Foundation
import Hummingbird

/// `/v1/admin/...` maintenance of the running server's data directory: what `tally backup`,
/// `tally merge`, `tally rollup rebuild` and `tally drop-partition` do, for when the server holds
/// the directory's lock (the CLI then calls these, with the control token from `DIR/SERVER`).
/// Guarded by the admin token or the control token.
///
///     POST /v1/admin/backup                   {"destination": "/abs/dir"} → the manifest's summary
///     POST /v1/admin/merge                    {"partition"?: "YYYYMM"} → merges run
///     POST /v1/admin/rollups/rebuild          {"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"} → months rebuilt
///     POST /v1/admin/partitions/{month}/drop  {"rollups"?: bool} → events dropped
///
/// The work runs on a thread of its own (it reads and writes files for seconds or minutes), not
/// on the threads that serve requests.
extension AdminRoutes {
    func registerMaintenance(on group: RouterGroup<TallyRequestContext>) {
        group.post("backup") { request, _ in try await guarded(request, control: true) { try await backup(request) } }
        group.post("merge") { request, _ in try await guarded(request, control: true) { try await merge(request) } }
        group.post("rollups/rebuild") { request, _ in
            try await guarded(request, control: true) { try await rebuildRollups(request) }
        }
        group.post("partitions/{month}/drop") { request, context in
            try await guarded(request, control: true) { try await dropPartition(request, month: try context.parameters.require("month")) }
        }
    }

    struct BackupRequest: Decodable { var destination: String }

    struct BackupAnswer: Encodable {
        var destination: String
        var created_at: String
        var wal_lsn: UInt64
        var files: Int
        var bytes: Int
        var linked: Int
        var copied: Int
        var seconds: Double
    }

    func backup(_ request: Request) async throws -> Response {
        let body = try await Self.decode(BackupRequest.self, request)
        guard body.destination.hasPrefix("/") else {
            throw BadBody(message: "destination must be an absolute path (the server's working directory is not the caller's)",
                          field: "destination")
        }
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: body.destination), !entries.isEmpty {
            throw BadBody(message: "\(body.destination) exists and is not empty: a backup goes into a new directory", field: "destination")
        }
        let (store, metadata) = (store!, metadata)
        let report = try await Self.offload { try DataBackup.create(store: store, metadata: metadata, destination: body.destination) }
        return JSONBody.response(BackupAnswer(
            destination: body.destination, created_at: report.manifest.created_at, wal_lsn: report.manifest.wal_lsn,
            files: report.manifest.files.count, bytes: report.manifest.bytes, linked: report.linked, copied: report.copied,
            seconds: report.seconds))
    }

    struct MergeRequest: Decodable { var partition: String? }

    struct MergeAnswer: Encodable {
        var parts_before: Int
        var parts_after: Int
        var merges: Int
        var rows_written: Int
        var duplicates_dropped: Int
        var rollup_merges: Int
        var session_summaries_built: Int
        var seconds: Double
    }

    func merge(_ request: Request) async throws -> Response {
        let body = try await Self.decode(MergeRequest.self, request)
        let month = try body.partition.map { try Self.month($0, field: "partition") }
        let store = store!
        let answer = try await Self.offload {
            let before = store.snapshot().parts.count
            let reports = try store.mergeNow(partition: month, force: true)
            let rollupMerges = try store.mergeRollups(force: true)
            let summaries = try store.buildSessionSummaries()
            return MergeAnswer(parts_before: before, parts_after: store.snapshot().parts.count, merges: reports.count,
                               rows_written: reports.reduce(0) { $0 + $1.rows },
                               duplicates_dropped: reports.reduce(0) { $0 + $1.duplicatesDropped },
                               rollup_merges: rollupMerges, session_summaries_built: summaries,
                               seconds: reports.reduce(0) { $0 + $1.seconds })
        }
        return JSONBody.response(answer)
    }

    struct RebuildRequest: Decodable {
        var from: String
        var to: String
    }

    func rebuildRollups(_ request: Request) async throws -> Response {
        let body = try await Self.decode(RebuildRequest.self, request)
        guard let first = QueryRange.date(body.from) else { throw BadBody(message: "from \(body.from): not a date (YYYY-MM-DD)", field: "from") }
        guard let last = QueryRange.date(body.to) else { throw BadBody(message: "to \(body.to): not a date (YYYY-MM-DD)", field: "to") }
        guard first <= last else { throw BadBody(message: "from \(body.from) is after to \(body.to)", field: "from") }
        let store = store!
        let months = try await Self.offload { try store.rebuildRollups(from: first * 86_400_000, to: (last + 1) * 86_400_000) }
        return JSONBody.response(["months": months.map(\.description)])
    }

    struct DropRequest: Decodable { var rollups: Bool? }

    struct DropAnswer: Encodable {
        var partition: String
        var events: Int
        var rollup_months: [String]
    }

    func dropPartition(_ request: Request, month text: String) async throws -> Response {
        let month = try Self.month(text, field: "month")
        let body = try await Self.decode(DropRequest.self, request)
        let store = store!
        let answer = try await Self.offload {
            let events = try store.dropPartition(month)
            let rollups = body.rollups == true ? try store.dropRollupMonth(month) : []
            return DropAnswer(partition: month.description, events: events, rollup_months: rollups.map { "\($0.0)/\($0.1)" })
        }
        return JSONBody.response(answer)
    }

    static func month(_ text: String, field: String) throws -> Partition {
        guard text.count == 6, let n = Int(text), let m = Partition(yyyymm: n) else {
            throw BadBody(message: "\(field) \(text): not a month (YYYYMM, e.g. 202608)", field: field)
        }
        return m
    }

    /// Runs `body` on a new thread and waits for it without holding a request thread.
    static func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let t = Thread { continuation.resume(with: Result { try body() }) }
            t.name = "tally-maintenance"
            t.start()
        }
    }
}
