// swift-tools-version:6.1
// The fuzz target for the ingest JSON reader. Build and run it as Fuzz/README.md says: it
// needs `-sanitize=fuzzer` (libFuzzer's driver is called from main.swift), so a plain
// `swift build` does not link.
import PackageDescription

let package = Package(
    name: "TallyFuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "Tally", path: "..")
    ],
    targets: [
        .target(name: "CFuzzerDriver"),
        .executableTarget(
            name: "EventReaderFuzz",
            dependencies: [
                "CFuzzerDriver",
                .product(name: "EventJSON", package: "Tally"),
                .product(name: "Engine", package: "Tally"),
            ]
        ),
    ]
)
