import ArgumentParser
import Engine
import Foundation
import Server

/// `tally funnel`: funnel definitions in DIR/meta.sqlite (as the admin API's
/// `/v1/properties/{property}/funnels`), and a funnel run on the data directory.
struct FunnelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "funnel",
        abstract: "Create, list, delete and run conversion funnels.",
        discussion: """
            Definitions live in DIR/meta.sqlite; create, list and delete are safe while `tally serve`
            runs on the same directory (the server reads them per request). A step is an event type,
            optionally followed by ':' and conditions in the reports' filter syntax.
            Semantics are ClickHouse's windowFunnel: steps in order, each within the window that
            opens at step 1, other events allowed between them (--strict-order: not allowed).

            Examples:
              tally funnel create shop signup --step 'page_view:page_path==/' \\
                    --step 'page_view:page_path==/pricing' --step signup --window 1h
              tally funnel create shop checkout --by visitor --window 7d --step add_to_cart --step purchase
              tally funnel list shop
              tally funnel run shop signup --period 30d --breakdown utm_source
              tally funnel delete shop signup
            """,
        subcommands: [Create.self, List.self, Delete.self, Run.self]
    )

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Store a funnel definition for a property.")

        @Argument(help: "The property id.")
        var property: String

        @Argument(help: "The funnel's name (1–64 characters of A-Z a-z 0-9 . _ -).")
        var name: String

        @Option(name: .customLong("step"), help: "EVENT_TYPE[:CONDITIONS]; repeatable, in order (1–32).")
        var steps: [String] = []

        @Option(help: "Conversion window from step 1: seconds, or a number with s, m, h or d (default 1d).")
        var window: String = "1d"

        @Option(help: "Count per session or per visitor.")
        var by: String = "session"

        @Flag(help: "Other events between the steps end the funnel (windowFunnel's strict_order).")
        var strictOrder = false

        @Flag(help: "Replace a funnel of the same name.")
        var replace = false

        @OptionGroup var location: DataLocation

        func run() throws {
            guard let seconds = Self.seconds(window) else {
                throw failure("--window \(window): expected seconds or a number with s, m, h or d (90s, 30m, 1h, 7d)")
            }
            let spec = FunnelSpec(
                name: name,
                steps: steps.map { s in
                    guard let colon = s.firstIndex(of: ":") else { return FunnelSpec.Step(event_type: s) }
                    return FunnelSpec.Step(event_type: String(s[..<colon]), filters: String(s[s.index(after: colon)...]))
                },
                windowSeconds: seconds, countBy: by, mode: strictOrder ? "strict_order" : "default")
            let store = try location.open(createIfMissing: false)
            let saved: FunnelSpec
            do { saved = try store.saveFunnel(propertyID: property, spec, replace: replace) } catch {
                throw failure(Self.flag(error))
            }
            print("created funnel \(saved.name) of \(property): \(FunnelCommand.describe(saved))")
        }

        /// "3600", "90s", "30m", "1h", "7d" in seconds.
        static func seconds(_ text: String) -> Int64? {
            let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
            if let unit = text.last.flatMap({ units[$0] }), let n = Int64(text.dropLast()) {
                let (seconds, overflow) = n.multipliedReportingOverflow(by: unit)
                return overflow ? nil : seconds
            }
            return Int64(text)
        }

        /// The error with its field in the command's terms (`--step 2`, `--window`, `--by`).
        static func flag(_ e: MetadataError) -> String {
            guard let field = e.field else { return e.description }
            if field.hasPrefix("steps["), let close = field.firstIndex(of: "]"),
               let i = Int(field[field.index(field.startIndex, offsetBy: 6)..<close]) {
                return "--step \(i + 1): \(e.message)"
            }
            let names = ["steps": "--step", "window_seconds": "--window", "count_by": "--by", "name": "NAME",
                         "property_id": "PROPERTY"]
            return "\(names[field] ?? field): \(e.message)"
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a property's funnels.")

        @Argument(help: "The property id.")
        var property: String

        @Flag(help: "Print the definitions as a JSON array.")
        var json = false

        @OptionGroup var location: DataLocation

        func run() throws {
            let store = try location.open(createIfMissing: false)
            let funnels: [FunnelSpec]
            do { funnels = try store.funnels(propertyID: property) } catch { throw failure(error.description) }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(funnels), as: UTF8.self))
                return
            }
            if funnels.isEmpty { print("property \(property) has no funnels") }
            for f in funnels { print("\(f.name): \(FunnelCommand.describe(f))") }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a funnel definition.")

        @Argument(help: "The property id.")
        var property: String

        @Argument(help: "The funnel's name.")
        var name: String

        @OptionGroup var location: DataLocation

        func run() throws {
            let store = try location.open(createIfMissing: false)
            do { try store.deleteFunnel(propertyID: property, name: name) } catch { throw failure(error.description) }
            print("deleted funnel \(name) of \(property)")
        }
    }

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a stored funnel on the data directory (as GET /v1/funnels/NAME).",
            discussion: "Reads the parts (and the WAL when no server holds the directory), like `tally query`.")

        @Argument(help: "The property id.")
        var property: String

        @Argument(help: "The funnel's name.")
        var name: String

        @Option(help: "Start date YYYY-MM-DD (included) or ISO-8601 instant.")
        var from: String?

        @Option(help: "End date YYYY-MM-DD (included) or ISO-8601 instant (excluded).")
        var to: String?

        @Option(help: "today, yesterday or Nd; default 7d.")
        var period: String?

        @Option(help: "A dimension of the step-1 event to break the funnel down by.")
        var breakdown: String?

        @OptionGroup var location: DataLocation

        func run() throws {
            let metadata = try location.open(createIfMissing: false)
            let spec: FunnelSpec
            let definition: FunnelDefinition
            let zone: QueryTimeZone
            do {
                guard let found = try metadata.funnel(propertyID: property, name: name) else {
                    throw failure("property \(property) has no funnel named \(name) (tally funnel list \(property))")
                }
                spec = found
                definition = try found.definition()
                zone = try QueryTimeZone(identifier: try metadata.property(id: property)?.timezone ?? "UTC")
            } catch let e as MetadataError {
                throw failure(e.description)
            }
            var query: FunnelQuery
            do {
                let (start, end) = try QueryRange.resolve(from: from, to: to, period: period, zone: zone,
                                                          now: Int64(Date().timeIntervalSince1970 * 1000))
                query = FunnelQuery(funnel: definition, site: property, from: start, to: end, timeZone: zone)
                query.breakdown = try breakdown.map { try QueryDimension(name: $0) }
            } catch let e as QueryError {
                throw failure("--\(e.parameter == "dimensions" ? "breakdown" : e.parameter): \(e.message)")
            }
            let view = try ReadView(data: location.directory)
            defer { view.close() }
            if let note = view.note { FileHandle.standardError.write(Data("note: \(note)\n".utf8)) }
            let started = DispatchTime.now().uptimeNanoseconds
            let result: FunnelResult
            do { result = try FunnelExecutor.run(query, on: view.snapshot) } catch { throw failure("\(error.parameter): \(error.message)") }
            let ms = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
            print("funnel \(spec.name) of \(property), \(CivilTime.iso8601(ms: query.from)) – \(CivilTime.iso8601(ms: query.to)): "
                + "\(result.groups) \(definition.countBy.rawValue)s with a step, \(String(format: "%.1f", ms)) ms")
            print(Self.table(result.total, spec))
            for b in result.breakdown {
                print("\n\(query.breakdown!.name) = \(b.value == .null ? "(none)" : b.value.description)")
                print(Self.table(b.steps, spec))
            }
        }

        static func table(_ s: FunnelSteps, _ spec: FunnelSpec) -> String {
            var lines = ["step  entrants  of first  of previous  median time  event"]
            for i in 0..<s.reached.count {
                let median = s.medianSecondsFromPrevious[i].map { String(format: "%.0f s", $0) } ?? "–"
                let step = spec.steps[i]
                let padded = String(repeating: " ", count: max(0, 11 - median.count)) + median
                lines.append(String(format: "%4d  %8d  %7.1f%%  %10.1f%%  ", i + 1, s.reached[i],
                                    s.conversionFromFirst(i) * 100, s.conversionFromPrevious(i) * 100)
                    + padded + "  " + step.event_type + (step.filters.map { " [\($0)]" } ?? ""))
            }
            return lines.joined(separator: "\n")
        }
    }

    static func describe(_ f: FunnelSpec) -> String {
        let steps = f.steps.map { $0.event_type + ($0.filters.map { "[\($0)]" } ?? "") }.joined(separator: " → ")
        return "\(steps); per \(f.count_by ?? "session"), window \(f.window_seconds ?? FunnelSpec.defaultWindowSeconds) s"
            + (f.mode == "strict_order" ? ", strict order" : "")
    }
}
