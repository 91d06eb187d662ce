// swift-tools-version: 6.1
import PackageDescription

let strictSwiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Sluice",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Sluice", targets: ["Sluice"]),
        .library(name: "Pipelines", targets: ["Pipelines"]),
        .library(name: "SluiceCommand", targets: ["SluiceCommand"]),
        .library(name: "SluiceHTTP", targets: ["SluiceHTTP"]),
        .library(name: "SluiceCluster", targets: ["SluiceCluster"]),
        .executable(name: "sluice", targets: ["SluiceCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // Only SluiceHTTP, its pipeline and the `sluice` command build these: `import Sluice` never does.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        .systemLibrary(
            name: "CZlib",
            path: "Sources/CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // What the Glibc module leaves out: mallopt (the command's allocator settings) and sync_file_range (the writers'
        // write-behind). Part of the C library: nothing to install.
        .systemLibrary(name: "CGlibcExtras", path: "Sources/CGlibcExtras"),
        .systemLibrary(
            name: "CIsal",
            path: "Sources/CIsal",
            pkgConfig: "libisal",
            providers: [.apt(["libisal-dev"])]
        ),
        .systemLibrary(
            name: "CLibdeflate",
            path: "Sources/CLibdeflate",
            pkgConfig: "libdeflate",
            providers: [.apt(["libdeflate-dev"])]
        ),
        // Checks deflate block headers as zlib does, for the ISA-L read path (see GzipDecoder). Plain C, no dependencies.
        .target(name: "CDeflateHeader", path: "Sources/CDeflateHeader"),
        // Finds newlines many at a time, for the line framer (AVX2 where the CPU has it, else SSE2 on x86-64, else
        // 8 bytes a step). Plain C, no dependencies.
        .target(name: "CLineScan", path: "Sources/CLineScan"),
        // Gives /dev/null to the standard streams the process started without, before main (the command's only: a
        // library must not touch its host's descriptors). Plain C, no dependencies.
        .target(name: "CStandardStreams", path: "Sources/CStandardStreams"),
        .target(
            name: "Sluice",
            dependencies: [
                "CZlib",
                "CIsal",
                "CDeflateHeader",
                "CLineScan",
                "CLibdeflate",
                "CGlibcExtras",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: strictSwiftSettings
        ),
        .target(
            name: "Pipelines",
            dependencies: ["Sluice", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Pipelines",
            exclude: ["Samples"],
            swiftSettings: strictSwiftSettings
        ),
        .target(
            name: "SluiceCommand",
            dependencies: [
                "Sluice",
                "CGlibcExtras",
                "CStandardStreams",
                "Pipelines",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                "SluiceCluster",
            ],
            swiftSettings: strictSwiftSettings
        ),
        .target(
            name: "SluiceCluster",
            dependencies: [
                "Sluice",
                "Pipelines",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwiftSettings
        ),
        .target(
            name: "SluiceHTTP",
            dependencies: [
                "Sluice",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwiftSettings
        ),
        .target(
            name: "HTTPPipelines",
            dependencies: [
                "Sluice",
                "SluiceHTTP",
                "Pipelines",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwiftSettings
        ),
        .executableTarget(
            name: "SluiceCLI",
            dependencies: ["SluiceCommand", "Pipelines", "HTTPPipelines"],
            swiftSettings: strictSwiftSettings
        ),
        .testTarget(
            name: "SluiceTests",
            dependencies: [
                "Sluice",
                "CLineScan",
                "Pipelines",
                // The CLI's end-to-end tests run the built `sluice` binary: depending on it makes sure it is built.
                "SluiceCLI",
                "SluiceCommand",
                "SluiceHTTP",
                "HTTPPipelines",
                "SluiceCluster",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            swiftSettings: strictSwiftSettings
        ),
    ]
)
