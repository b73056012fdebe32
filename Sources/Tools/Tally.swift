import ArgumentParser
import Engine

@main
struct Tally: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally",
        abstract: "Tally: a self-hosted web-analytics event store.",
        subcommands: [
            ServeCommand.self, PropertyCommand.self, KeyCommand.self, IngestCommand.self, InspectCommand.self,
            QueryCommand.self, DumpCommand.self, ExportCommand.self, WALCommand.self, VerifyCommand.self,
            DropPartitionCommand.self, MergeCommand.self, RollupCommand.self, GenerateCommand.self, BenchCommand.self,
            FunnelCommand.self, BackupCommand.self, RestoreCommand.self,
        ]
    )

    static func main() async {
        // Before any other thread allocates: the policy covers the arenas they would create.
        EventStore.configureAllocator()
        await main(nil)
    }
}
