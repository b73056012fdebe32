import Crypto
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// `DIR/SERVER`: how the admin CLI reaches the `tally serve` that holds a data directory's lock
/// (FORMAT.md, "Data directory"). JSON, mode 0600, written when the server starts listening and
/// removed when it stops; a server killed outright leaves it behind, which is harmless: the CLI
/// reads it only while the directory's lock is held, and the next server overwrites it.
public struct ServerFile: Codable, Sendable, Equatable {
    public static let name = "SERVER"

    public var pid: Int32
    /// Where the server listens, e.g. `http://127.0.0.1:8080`.
    public var url: String
    /// The control token (`ServerConfiguration.controlToken`) of this run.
    public var token: String

    public init(pid: Int32, url: String, token: String) {
        self.pid = pid
        self.url = url
        self.token = token
    }

    /// 32 random bytes, hex.
    public static func newToken() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { $0.map { String(format: "%02x", $0) }.joined() }
    }

    /// The URL a client on this machine uses for a server listening on `host`.
    public static func url(host: String, port: Int) -> String {
        let reachable = ["0.0.0.0", "::", ""].contains(host) ? "127.0.0.1" : host
        return "http://" + (reachable.contains(":") ? "[\(reachable)]" : reachable) + ":\(port)"
    }

    /// Written to a new file created with mode 0600 (never readable by others, not even empty),
    /// fsynced and renamed into place.
    public func write(into directory: String) throws {
        let path = directory + "/" + Self.name
        let temporary = path + ".tmp"
        let bytes = Array(try JSONEncoder().encode(self))
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary]) }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
    }

    public static func read(from directory: String) -> ServerFile? {
        guard let data = FileManager.default.contents(atPath: directory + "/" + name) else { return nil }
        return try? JSONDecoder().decode(ServerFile.self, from: data)
    }

    /// Removes the file if it is still this run's (a second server may have replaced it).
    public func remove(from directory: String) {
        if Self.read(from: directory) == self { try? FileManager.default.removeItem(atPath: directory + "/" + Self.name) }
    }
}
