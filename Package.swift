// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Tally",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "tally", targets: ["Tools"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "EventJSON", targets: ["EventJSON"]),
        .library(name: "Workload", targets: ["Workload"]),
        .library(name: "Server", targets: ["Server"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // gzip of the tracker script (t.js), once at start.
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
        // The HTTP load generator (`tally bench ingest`) only.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // System libraries from Debian: libzstd-dev, liblz4-dev, libxxhash-dev, libjemalloc-dev (see README).
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(name: "CXXHash", pkgConfig: "libxxhash", providers: [.apt(["libxxhash-dev"])]),
        // CRC32C (Castagnoli) with the SSE4.2 instruction where the CPU has it.
        .target(name: "CTallyCRC"),
        .target(
            name: "Engine",
            dependencies: [
                "CZstd", "CLZ4", "CXXHash", "CTallyCRC",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: [.define("TALLY_INTERNAL_CHECKS", .when(configuration: .debug))]
        ),
        // The ingest JSON reader: request bytes -> Engine column builders. Used by Server and Tools.
        .target(name: "EventJSON", dependencies: ["Engine"]),
        // Realistic synthetic workload (Zipf sites, paths, referrers, visitors, sessions).
        .target(name: "Workload", dependencies: ["Engine"]),
        .target(
            name: "Server",
            dependencies: [
                "Engine", "EventJSON",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            // The bot list and the OpenAPI document are data: edited as files, compiled into the binary.
            resources: [.embedInCode("Resources/bot-patterns.txt"), .embedInCode("Resources/openapi.json"),
                        .embedInCode("Resources/t.js"), .embedInCode("Resources/dashboard.html"),
                        .embedInCode("Resources/dashboard.js"), .embedInCode("Resources/dashboard.css"),
                        .embedInCode("Resources/chart.js")]
        ),
        // jemalloc as the allocator of the `tally` executable, with its options (malloc_conf.c).
        .target(name: "CJemalloc", linkerSettings: [.linkedLibrary("jemalloc")]),
        .executableTarget(
            name: "Tools",
            dependencies: [
                "Engine", "EventJSON", "Workload", "Server", "CJemalloc",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .target(name: "TallyTestSupport", dependencies: ["Engine"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "TallyTestSupport", "Workload"]),
        .testTarget(name: "EventJSONTests", dependencies: ["EventJSON", "Engine", "Workload"]),
        .testTarget(
            name: "ToolsTests",
            dependencies: [
                "Engine", "Server", "TallyTestSupport", "Workload",
                // The browser tests serve their test pages with it, and talk to chromedriver with
                // AsyncHTTPClient (Foundation's URLSession fails on its headers: "Content-Length:252").
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(name: "WorkloadTests", dependencies: ["Workload", "Engine"]),
        .testTarget(
            name: "ServerTests",
            dependencies: [
                "Server", "Engine", "TallyTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ]
        ),
    ]
)
