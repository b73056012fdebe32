import ArgumentParser

@main
struct Tally: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally",
        abstract: "Tally: a self-hosted web-analytics event store.",
        subcommands: [
            ServeCommand.self, PropertyCommand.self, KeyCommand.self, IngestCommand.self, InspectCommand.self,
            QueryCommand.self, DumpCommand.self, ExportCommand.self, WALCommand.self, VerifyCommand.self, GenerateCommand.self, BenchCommand.self,
        ]
    )
}
