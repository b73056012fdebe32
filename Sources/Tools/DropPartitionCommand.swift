import ArgumentParser
import Engine
import Foundation

/// `tally drop-partition M`: delete one month of raw events.
struct DropPartitionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drop-partition",
        abstract: "Delete every part of one month (YYYYMM) of raw events.",
        discussion: """
            Takes the data directory's lock, so it refuses while `tally serve` runs there (stop the
            server first; the server drops months past the raw retention by itself). Asks for
            confirmation unless --yes.

            Examples:
              tally drop-partition 202608 --data ./data
              tally drop-partition 202608 --data ./data --yes
            """
    )

    @Argument(help: "The month, YYYYMM.")
    var partition: String

    @Option(help: "The data directory.")
    var data: String = "./data"

    @Flag(help: "Do not ask for confirmation.")
    var yes = false

    func run() throws {
        guard partition.count == 6, let n = Int(partition), let month = Partition(yyyymm: n) else {
            throw failure("\(partition): not a month (YYYYMM, e.g. 202608)")
        }
        guard FileManager.default.fileExists(atPath: data + "/parts") else { throw failure("\(data): no data directory") }
        let inventory: Inventory
        do { inventory = try Inventory(directory: data) } catch { throw failure("\(data): \(error)") }
        let parts = inventory.parts.filter { $0.partition == month }
        guard !parts.isEmpty else { throw failure("\(data): no partition \(month)") }
        let rows = parts.reduce(0) { $0 + $1.rows }
        if !yes {
            print("drop partition \(month): \(QueryCommand.grouped(Int64(rows))) events in \(parts.count) parts? [y/N] ", terminator: "")
            guard let answer = readLine(), ["y", "yes"].contains(answer.lowercased()) else {
                print("nothing dropped")
                throw ExitCode(1)
            }
        }
        var options = StoreOptions(directory: data)
        options.backgroundFlush = false
        let store: EventStore
        do { store = try EventStore(options: options) } catch { throw failure("\(data): \(error)") }
        let dropped: Int
        do {
            dropped = try store.dropPartition(month)
            try store.close()
        } catch { throw failure("\(data): \(error)") }
        print("dropped partition \(month): \(QueryCommand.grouped(Int64(dropped))) events")
    }
}
