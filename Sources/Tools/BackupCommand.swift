import ArgumentParser
import Engine
import Foundation
import Server

/// `tally backup DEST`: a consistent copy of a data directory, live or not.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy a data directory, while `tally serve` runs on it or not, into a new directory.",
        discussion: """
            The copy is one snapshot: the parts and rollup parts of one instant (hard links when
            DEST is on the same file system: parts never change; copies otherwise), the WAL up to
            the last record written then, and meta.sqlite through SQLite's backup API. DEST gets
            MANIFEST.json, written last, with every file's size and SHA-256 and the snapshot's WAL
            position (FORMAT.md, "Backups"). Ingest, flushes and merges go on meanwhile.

            Takes the data directory's lock, or — while `tally serve` holds it — asks that server
            through its admin API (the server writes how to reach it to DIR/SERVER).

            Examples:
              tally backup /backups/tally-2026-12-06 --data ./data
              tally restore /backups/tally-2026-12-06 --data ./data-restored
            """
    )

    @Argument(help: "The new (or empty) directory to write the backup to.")
    var destination: String

    @Option(help: "The data directory.")
    var data: String = "./data"

    func run() async throws {
        let target = destination.hasPrefix("/") ? destination : FileManager.default.currentDirectoryPath + "/" + destination
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: target), !entries.isEmpty {
            throw failure("\(destination): exists and is not empty; a backup goes into a new directory")
        }
        let access = try Maintenance.open(data, "backup")
        let files: Int, bytes: Int, linked: Int, copied: Int, lsn: UInt64, seconds: Double
        switch access {
        case .local(let store):
            var metadata: MetadataStore?
            if FileManager.default.fileExists(atPath: data + "/" + MetadataStore.fileName) {
                do { metadata = try MetadataStore(directory: data, createIfMissing: false) } catch {
                    try? store.close()
                    throw failure("\(data)/\(MetadataStore.fileName): \(error)")
                }
            }
            do {
                let report = try DataBackup.create(store: store, metadata: metadata, destination: target)
                try? metadata?.close()
                try store.close()
                (files, bytes, linked, copied) = (report.manifest.files.count, report.manifest.bytes, report.linked, report.copied)
                (lsn, seconds) = (report.manifest.wal_lsn, report.seconds)
            } catch {
                try? store.close()
                throw failure("\(error)")
            }
        case .server(let server):
            let o = try await Maintenance.post(server, "/v1/admin/backup", ["destination": target], data: data)
            func int(_ k: String) -> Int { (o[k] as? NSNumber)?.intValue ?? 0 }
            (files, bytes, linked, copied) = (int("files"), int("bytes"), int("linked"), int("copied"))
            (lsn, seconds) = ((o["wal_lsn"] as? NSNumber)?.uint64Value ?? 0, (o["seconds"] as? NSNumber)?.doubleValue ?? 0)
        }
        let count = QueryCommand.grouped(Int64(files))
        let size = InspectReport.size(bytes)
        let time = String(format: "%.1f s", seconds)
        print("backed up \(data) to \(destination): \(count) files, \(size) (\(linked) hard-linked, \(copied) copied), "
            + "snapshot at WAL LSN \(lsn), \(time) \(access.how(data))")
    }
}

/// `tally restore SRC --data DIR`: check a backup and bring it back into a new directory.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Check a backup made by `tally backup` and restore it into a new data directory.",
        discussion: """
            Every file the backup's MANIFEST.json lists is checked (size and SHA-256) as it is
            copied into DIR.restoring, which then becomes DIR (DIR must not exist, or be empty):
            a failed restore leaves no half-written DIR. The restored directory is then opened
            read-only to count what it holds. Start `tally serve --data DIR` on it; the WAL
            records of the backup are replayed then.

            Example:
              tally restore /backups/tally-2026-12-06 --data ./data
            """
    )

    @Argument(help: "The backup directory.")
    var source: String

    @Option(help: "The data directory to create.")
    var data: String

    func run() throws {
        let manifest: DataBackup.Manifest
        do { manifest = try DataBackup.restore(source, to: data) } catch { throw failure("\(error)") }
        var options = StoreOptions(directory: data)
        options.readOnly = true
        options.backgroundFlush = false
        let store: EventStore
        do { store = try EventStore(options: options) } catch { throw failure("\(data): restored, but it does not open: \(error)") }
        let report = store.openReport
        let rows = store.snapshot().parts.reduce(0) { $0 + $1.rows }
        try? store.close()
        guard report.problems.isEmpty else {
            throw failure("\(data): restored, but opening it found: \(report.problems.joined(separator: "; "))")
        }
        let files = QueryCommand.grouped(Int64(manifest.files.count))
        let size = InspectReport.size(manifest.bytes)
        let events = QueryCommand.grouped(Int64(rows))
        let walEvents = QueryCommand.grouped(Int64(report.walRowsReplayed))
        print("restored \(source) (taken \(manifest.created_at) from \(manifest.source)) into \(data): "
            + "\(files) files, \(size), every checksum matched; \(events) events in \(report.parts) parts and "
            + "\(walEvents) in the WAL, up to WAL LSN \(manifest.wal_lsn)")
    }
}
