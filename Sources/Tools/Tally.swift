import ArgumentParser
import Engine
#if canImport(Glibc)
    import Glibc
#endif

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
        raiseOpenFileLimit()
        await main(nil)
    }

    /// Every open part (raw and rollup) keeps its file open, so that a snapshot can read a part a
    /// merge has deleted: a store with two years of rollups holds hundreds of descriptors, and
    /// the usual soft limit is 1,024. Raised to the hard limit, as servers such as ClickHouse do.
    static func raiseOpenFileLimit() {
        #if canImport(Glibc)
            var limit = rlimit()
            let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
            guard getrlimit(resource, &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(resource, &limit)
        #endif
    }
}
