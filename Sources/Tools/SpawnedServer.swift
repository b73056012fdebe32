import Foundation
import Server

#if canImport(Glibc)
    import Glibc
#endif

/// A `tally serve` child for `tally bench ingest --spawn`: this executable, on a new temporary
/// data directory and a free loopback port, with no per-address rate limit. Its output goes to
/// `serve.log` in that directory; the write key is read from it on the first start.
final class SpawnedServer {
    let process = Process()
    let directory: String
    let port: Int
    let writeKey: String
    let readKey: String
    var pid: Int32 { process.processIdentifier }
    var logPath: String { directory + "/serve.log" }

    init(extraArguments: [String] = []) throws {
        directory = NSTemporaryDirectory() + "tally-bench-ingest-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        do { port = try LoopbackPort.free() } catch { throw failure(error.description) }
        _ = FileManager.default.createFile(atPath: directory + "/serve.log", contents: nil)
        guard let log = FileHandle(forWritingAtPath: directory + "/serve.log") else {
            throw failure("\(directory)/serve.log: cannot open for writing")
        }
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = ["serve", "--data", directory + "/data", "--port", String(port),
                             "--rate-limit-per-ip", "0"] + extraArguments
        process.standardOutput = log
        process.standardError = log
        try process.run()
        // "write key: …" comes before "Tally listening" on the first start.
        let deadline = Date().addingTimeInterval(60)
        var text = ""
        while Date() < deadline && process.isRunning {
            text = (try? String(contentsOfFile: directory + "/serve.log", encoding: .utf8)) ?? ""
            if text.contains("Tally listening") { break }
            usleep(20_000)
        }
        let lines = text.split(separator: "\n")
        let key = lines.first { $0.contains("write key:") }?.split(separator: " ").last
        let read = lines.first { $0.contains("read key:") }?.split(separator: " ").last
        guard text.contains("Tally listening"), let key, let read else {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            throw failure("the spawned tally serve did not start (its output: \(directory)/serve.log)")
        }
        writeKey = String(key)
        readKey = String(read)
    }

    /// Peak resident set size (VmHWM) of process `pid` in bytes, from /proc/PID/status.
    static func peakRSS(pid: Int32) -> Int? { statusKiB(pid: pid, field: "VmHWM:").map { $0 * 1024 } }

    /// Resident set size (VmRSS) of process `pid` now, in bytes.
    static func rss(pid: Int32) -> Int? { statusKiB(pid: pid, field: "VmRSS:").map { $0 * 1024 } }

    /// A "Field:   N kB" line of /proc/PID/status.
    static func statusKiB(pid: Int32, field: String) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) })
        else { return nil }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    }

    /// User + system CPU seconds of process `pid` so far, from /proc/PID/stat.
    static func cpuSeconds(pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")")
        else { return nil }
        // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// SIGTERM, then waits for the exit (SIGKILL after `grace` seconds); returns the exit status.
    @discardableResult
    func terminate(grace: Double = 60) -> Int32 {
        guard process.isRunning else { return process.terminationStatus }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(grace)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Removes the temporary data directory (after `terminate`).
    func removeDirectory() {
        try? FileManager.default.removeItem(atPath: directory)
    }
}
