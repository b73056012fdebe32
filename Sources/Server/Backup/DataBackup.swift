import Crypto
import Engine
import Foundation

/// A failed backup, check or restore: one line naming the file and what is wrong.
public struct BackupError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// `tally backup` and `tally restore` (FORMAT.md, "Backups"): a consistent copy of a live data
/// directory — the store's snapshot (`EventStore.backup(to:)`: parts hard-linked or copied, the
/// WAL up to a recorded position) and `meta.sqlite` through SQLite's backup API — described by
/// `MANIFEST.json`, written last, with every file's size and SHA-256.
public enum DataBackup {
    public static let manifestName = "MANIFEST.json"
    public static let format = "tally-backup"
    public static let version = 1

    public struct Manifest: Codable, Sendable, Equatable {
        public struct File: Codable, Sendable, Equatable {
            public var path: String
            public var bytes: Int
            public var sha256: String
        }

        public var format: String
        public var version: Int
        /// ISO 8601, UTC.
        public var created_at: String
        public var source: String
        /// Every event whose WAL record has this LSN or a lower one is in the backup, none after.
        public var wal_lsn: UInt64
        public var files: [File]

        public var bytes: Int { files.reduce(0) { $0 + $1.bytes } }
    }

    /// What `create` did besides the manifest.
    public struct Report: Sendable {
        public var manifest: Manifest
        public var linked: Int
        public var copied: Int
        public var seconds: Double
    }

    /// Backs up `store` (and `metadata`, when the directory has one) into `destination`, a new
    /// or empty directory. Safe while ingest, flushes and merges run.
    public static func create(store: EventStore, metadata: MetadataStore?, destination: String,
                              now: Date = Date()) throws(BackupError) -> Report {
        let started = DispatchTime.now().uptimeNanoseconds
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: destination), !entries.isEmpty {
            throw BackupError("\(destination): exists and is not empty; a backup goes into a new directory")
        }
        // What a failed backup wrote goes (a directory without MANIFEST.json is no backup anyway).
        let existed = FileManager.default.fileExists(atPath: destination)
        do throws(BackupError) {
            return try create(store: store, metadata: metadata, destination: destination, now: now, started: started)
        } catch {
            for e in ["parts", "wal", "rollups", MetadataStore.fileName, manifestName + ".tmp"] {
                try? FileManager.default.removeItem(atPath: destination + "/" + e)
            }
            if !existed { try? FileManager.default.removeItem(atPath: destination) }
            throw error
        }
    }

    private static func create(store: EventStore, metadata: MetadataStore?, destination: String, now: Date,
                               started: UInt64) throws(BackupError) -> Report {
        let copy: StoreBackup
        do { copy = try store.backup(to: destination) } catch { throw BackupError("\(destination): \(error)") }
        var files = copy.files.map { (path: $0.path, bytes: $0.bytes) }
        if let metadata {
            let target = destination + "/" + MetadataStore.fileName
            do { try metadata.backup(to: target) } catch { throw BackupError("\(target): \(error)") }
            files.append((MetadataStore.fileName, try size(target)))
        }
        var listed: [Manifest.File] = []
        for f in files.sorted(by: { $0.path < $1.path }) {
            let path = destination + "/" + f.path
            let (bytes, digest) = try digest(of: path)
            guard bytes == f.bytes else { throw BackupError("\(path): \(bytes) bytes, \(f.bytes) were written") }
            listed.append(Manifest.File(path: f.path, bytes: bytes, sha256: digest))
        }
        let manifest = Manifest(format: format, version: version, created_at: iso8601(now),
                                source: absolute(store.options.directory), wal_lsn: copy.walLSN, files: listed)
        try writeManifest(manifest, into: destination)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        return Report(manifest: manifest, linked: copy.linked, copied: copy.copied + (metadata == nil ? 0 : 1),
                      seconds: seconds)
    }

    /// Reads `source`'s manifest and checks every file it lists: present, its size, its SHA-256.
    public static func check(_ source: String) throws(BackupError) -> Manifest {
        let manifest = try readManifest(source)
        for f in manifest.files {
            let path = source + "/" + f.path
            guard FileManager.default.fileExists(atPath: path) else { throw BackupError("\(path): missing (listed in \(manifestName))") }
            let (bytes, digest) = try digest(of: path)
            guard bytes == f.bytes else { throw BackupError("\(path): \(bytes) bytes, the manifest says \(f.bytes)") }
            guard digest == f.sha256 else { throw BackupError("\(path): SHA-256 \(digest), the manifest says \(f.sha256)") }
        }
        return manifest
    }

    /// Checks `source` and copies it into `data`, which must not exist or be empty: into a
    /// sibling `DATA.restoring` first, checking each file's digest as it is copied, then renamed
    /// into place, so `data` never holds half a restore.
    public static func restore(_ source: String, to data: String) throws(BackupError) -> Manifest {
        let manifest = try readManifest(source)
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: data, isDirectory: &isDirectory) {
            guard isDirectory.boolValue, (try? fm.contentsOfDirectory(atPath: data))?.isEmpty == true else {
                throw BackupError("\(data): exists and is not empty; restore into a new directory")
            }
        }
        let staging = (data.hasSuffix("/") ? String(data.dropLast()) : data) + ".restoring"
        // Made here, exclusively: another restore into the same directory, or one that died,
        // is not taken over.
        try makeDirectory((absolute(staging) as NSString).deletingLastPathComponent)
        guard mkdir(staging, 0o755) == 0 else {
            throw BackupError("\(staging): " + (errno == EEXIST
                ? "exists: another restore is running, or one was interrupted (remove it to restore again)"
                : "cannot create: \(String(cString: strerror(errno)))"))
        }
        do throws(BackupError) {
            for f in manifest.files {
                let target = staging + "/" + f.path
                try makeDirectory((target as NSString).deletingLastPathComponent)
                let (bytes, digest) = try copy(source + "/" + f.path, to: target)
                guard bytes == f.bytes, digest == f.sha256 else {
                    throw BackupError("\(source)/\(f.path): \(bytes) bytes with SHA-256 \(digest), the manifest says \(f.bytes) bytes with \(f.sha256)")
                }
            }
            for directory in ["parts", "wal", "rollups"] { try makeDirectory(staging + "/" + directory) }
            try syncTree(staging)
            if fm.fileExists(atPath: data) {
                do { try fm.removeItem(atPath: data) } catch { throw BackupError("\(data): cannot replace the empty directory: \(error)") }
            }
            guard rename(staging, data) == 0 else { throw BackupError("\(data): cannot rename \(staging) to it: \(String(cString: strerror(errno)))") }
            syncDirectory((absolute(data) as NSString).deletingLastPathComponent)
        } catch {
            try? fm.removeItem(atPath: staging)
            throw error
        }
        return manifest
    }

    // MARK: Manifest

    static func writeManifest(_ manifest: Manifest, into destination: String) throws(BackupError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let path = destination + "/" + manifestName
        do {
            let data = try encoder.encode(manifest) + Data("\n".utf8)
            // Written last and made durable: a backup without its manifest is not one.
            try data.write(to: URL(fileURLWithPath: path + ".tmp"))
            try fsyncFile(path + ".tmp")
            guard rename(path + ".tmp", path) == 0 else { throw BackupError("cannot rename \(path).tmp") }
            syncDirectory(destination)
        } catch let error as BackupError {
            throw error
        } catch {
            throw BackupError("\(path): \(error)")
        }
    }

    static func readManifest(_ source: String) throws(BackupError) -> Manifest {
        let path = source + "/" + manifestName
        guard FileManager.default.fileExists(atPath: source) else { throw BackupError("\(source): no such directory") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BackupError("\(path): missing; \(source) is not a Tally backup, or one that did not finish")
        }
        let manifest: Manifest
        do { manifest = try JSONDecoder().decode(Manifest.self, from: data) } catch {
            throw BackupError("\(path): not a backup manifest (\(error))")
        }
        guard manifest.format == format else { throw BackupError("\(path): format \"\(manifest.format)\", not \"\(format)\"") }
        guard manifest.version == version else {
            throw BackupError("\(path): backup version \(manifest.version); this build reads version \(version)")
        }
        for f in manifest.files where f.path.hasPrefix("/") || f.path.split(separator: "/").contains("..") {
            throw BackupError("\(path): file \(f.path) lies outside the backup")
        }
        return manifest
    }

    // MARK: Files

    /// Size and SHA-256 (hex) of the file at `path`, read in 1 MiB steps.
    static func digest(of path: String) throws(BackupError) -> (Int, String) {
        try stream(path) { _ in }
    }

    /// Copies `path` to the new file `target` (fsynced); returns its size and SHA-256.
    static func copy(_ path: String, to target: String) throws(BackupError) -> (Int, String) {
        guard FileManager.default.createFile(atPath: target, contents: nil),
              let out = FileHandle(forWritingAtPath: target) else {
            throw BackupError("\(target): cannot create")
        }
        defer { try? out.close() }
        let result = try stream(path) { chunk throws(BackupError) in
            do { try out.write(contentsOf: chunk) } catch { throw BackupError("\(target): \(error)") }
        }
        do { try out.synchronize() } catch { throw BackupError("\(target): \(error)") }
        return result
    }

    private static func stream(_ path: String, _ body: (Data) throws(BackupError) -> Void) throws(BackupError) -> (Int, String) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw BackupError("\(path): cannot open") }
        defer { try? handle.close() }
        var hasher = SHA256()
        var bytes = 0
        while true {
            let chunk: Data
            do { chunk = try handle.read(upToCount: 1 << 20) ?? Data() } catch { throw BackupError("\(path): \(error)") }
            if chunk.isEmpty { break }
            hasher.update(data: chunk)
            try body(chunk)
            bytes += chunk.count
        }
        return (bytes, hasher.finalize().map { String(format: "%02x", $0) }.joined())
    }

    static func size(_ path: String) throws(BackupError) -> Int {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              let size = attributes[.size] as? NSNumber else { throw BackupError("\(path): cannot stat") }
        return size.intValue
    }

    static func makeDirectory(_ path: String) throws(BackupError) {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw BackupError("\(path): cannot create the directory: \(error)")
        }
    }

    static func fsyncFile(_ path: String) throws(BackupError) {
        do {
            let f = try PosixFileSystem().openForReading(path)
            defer { f.close() }
            try f.sync()
        } catch {
            throw BackupError("\(path): \(error)")
        }
    }

    /// The engine's directory fsync; a failure here is not worth failing a finished copy for.
    static func syncDirectory(_ path: String) {
        try? PosixFileSystem().syncDirectory(path)
    }

    /// Makes every directory under `root` durable (the files were synced as they were written).
    static func syncTree(_ root: String) throws(BackupError) {
        var directories = [root]
        if let walker = FileManager.default.enumerator(atPath: root) {
            for case let relative as String in walker {
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: root + "/" + relative, isDirectory: &isDirectory), isDirectory.boolValue {
                    directories.append(root + "/" + relative)
                }
            }
        }
        for d in directories.reversed() { syncDirectory(d) }
    }

    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }

    static func iso8601(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: date)
    }
}
