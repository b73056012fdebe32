import ArgumentParser
import Engine
import Foundation

/// `tally drop-partition M`: delete one month of raw events.
struct DropPartitionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drop-partition",
        abstract: "Delete every part of one month (YYYYMM) of raw events, and with --rollups its rollup month too.",
        discussion: """
            Without --rollups the month's reports still come from the daily rollups (as after the
            raw retention); with it, the month is gone from every report (rollup months are local
            months of each property's time zone). Takes the data directory's lock, or asks the
            `tally serve` holding it through its admin API (the server drops months past the
            retention by itself). Asks for confirmation unless --yes.

            Examples:
              tally drop-partition 202608 --data ./data
              tally drop-partition 202608 --data ./data --rollups --yes
            """
    )

    @Argument(help: "The month, YYYYMM.")
    var partition: String

    @Option(help: "The data directory.")
    var data: String = "./data"

    @Flag(help: "Drop the month's rollups too.")
    var rollups = false

    @Flag(help: "Do not ask for confirmation.")
    var yes = false

    func run() async throws {
        guard partition.count == 6, let n = Int(partition), let month = Partition(yyyymm: n) else {
            throw failure("\(partition): not a month (YYYYMM, e.g. 202608)")
        }
        guard FileManager.default.fileExists(atPath: data + "/parts") else { throw failure("\(data): no data directory") }
        let inventory: Inventory
        do { inventory = try Inventory(directory: data) } catch { throw failure("\(data): \(error)") }
        let parts = inventory.parts.filter { $0.partition == month }
        let rollupParts = inventory.rollups.values.joined().filter { $0.partition == month }
        guard !parts.isEmpty || (rollups && !rollupParts.isEmpty) else { throw failure("\(data): no partition \(month)") }
        let rows = parts.reduce(0) { $0 + $1.rows }
        if !yes {
            print("drop partition \(month): \(QueryCommand.grouped(Int64(rows))) events in \(parts.count) parts"
                + (rollups ? " and \(rollupParts.count) rollup parts" : "") + "? [y/N] ", terminator: "")
            guard let answer = readLine(), ["y", "yes"].contains(answer.lowercased()) else {
                print("nothing dropped")
                throw ExitCode(1)
            }
        }
        let access = try Maintenance.open(data, "drop-partition")
        let dropped: Int
        let rollupMonths: [String]
        switch access {
        case .local(let store):
            do {
                dropped = try store.dropPartition(month)
                rollupMonths = rollups ? try store.dropRollupMonth(month).map { "\($0.0)/\($0.1)" } : []
                try store.close()
            } catch { throw failure("\(data): \(error)") }
        case .server(let server):
            let o = try await Maintenance.post(server, "/v1/admin/partitions/\(partition)/drop", ["rollups": rollups], data: data)
            dropped = (o["events"] as? NSNumber)?.intValue ?? 0
            rollupMonths = o["rollup_months"] as? [String] ?? []
        }
        print("dropped partition \(month): \(QueryCommand.grouped(Int64(dropped))) events"
            + (rollups ? "; rollups: \(rollupMonths.isEmpty ? "none" : rollupMonths.joined(separator: ", "))" : "")
            + " " + access.how(data))
    }
}
