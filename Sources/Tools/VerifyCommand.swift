import ArgumentParser
import Engine
import Foundation

/// `tally verify`: every block, checksum and invariant of the parts.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check parts: every block's checksum and encoding, row counts, sort order, the index, bloom filters.",
        discussion: """
            With no PART, checks every part in DIR/parts and the WAL's closed segments. Prints each
            problem with its file and byte offset and exits 1 when there is any. Read-only: safe
            beside a running server.

            Examples:
              tally verify --data ./data
              tally verify ./data/parts/202611_00000042_0.part
            """
    )

    @Argument(help: "Part files to check (default: all of --data).")
    var parts: [String] = []

    @Option(help: "The data directory.")
    var data: String = "./data"

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        var paths = parts
        var walProblems: [String] = []
        if paths.isEmpty {
            let dir = data + "/parts"
            guard FileManager.default.fileExists(atPath: data) else { throw failure("\(data): no data directory") }
            paths = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
                .filter { $0.hasSuffix(".part") }.sorted().map { dir + "/" + $0 }
            do {
                for s in try WALScan.segments(directory: data).dropLast() where s.problem != nil {
                    walProblems.append("\(data)/wal/\(s.name) at offset \(s.problemOffset ?? 0): \(s.problem!)")
                }
            } catch { throw failure("\(data): \(error)") }
        }
        var problems: [String] = walProblems
        var checked: [[String: Any]] = []
        let listed = parts.isEmpty
        var gone = 0
        for path in paths {
            guard FileManager.default.fileExists(atPath: path) else {
                // A part listed from the directory that a running server merged away or dropped
                // since: not a fault of the directory (the merged part is checked by the next run).
                if listed { gone += 1 } else { problems.append("\(path): no such file") }
                continue
            }
            let found = PartVerifier.verify(path: path)
            if listed && !FileManager.default.fileExists(atPath: path) {
                gone += 1
                continue
            }
            problems += found.map(\.description)
            checked.append(["part": path, "problems": found.map(\.description)])
        }
        if json {
            let d = try JSONSerialization.data(withJSONObject: ["parts": checked, "problems": problems, "ok": problems.isEmpty],
                                               options: [.sortedKeys])
            print(String(decoding: d, as: UTF8.self))
        } else {
            for p in problems { print("problem: \(p)") }
            print("\(checked.count) parts checked, \(problems.count) problems"
                + (gone > 0 ? " (\(gone) more were merged away or dropped by the server meanwhile)" : ""))
        }
        if !problems.isEmpty { throw ExitCode(1) }
    }
}
