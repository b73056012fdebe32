// swift-tools-version:6.1
// Micro benchmarks of Tally's engine, ingest reader and store (ordo-one/benchmark).
// A package of its own so that the product never depends on the benchmark tooling:
// run `swift package benchmark` from this folder (see README.md).
import PackageDescription

let package = Package(
    name: "TallyBenchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "Tally", path: ".."),
        // Only the MallocInterposer trait: the default traits pull swift-runtime-interposer,
        // which the package mirror does not carry (env notes, swift-packages-b).
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        benchmarkTarget("IngestBenchmarks", ["Engine", "EventJSON", "Workload"]),
        benchmarkTarget("EncodingBenchmarks", ["Engine", "Workload"]),
        benchmarkTarget("StoreBenchmarks", ["Engine", "Workload"]),
    ]
)

/// One executable per area, its sources in `Benchmarks/<name>/`, as the plugin discovers them.
func benchmarkTarget(_ name: String, _ tallyProducts: [String]) -> Target {
    .executableTarget(
        name: name,
        dependencies: [.product(name: "Benchmark", package: "benchmark")]
            + tallyProducts.map { .product(name: $0, package: "Tally") },
        path: "Benchmarks/\(name)",
        plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    )
}
