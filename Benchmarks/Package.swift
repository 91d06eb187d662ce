// swift-tools-version: 6.1
import PackageDescription

// The benchmarks are a package of their own, so the library's users never build package-benchmark.
// Run them with `swift package benchmark` from this directory (see README.md).
let package = Package(
    name: "SluiceBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Named explicitly: a path dependency is otherwise known by its directory name, which differs per checkout.
        .package(name: "Sluice", path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-async-algorithms", from: "1.1.4"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .target(
            name: "BenchmarkSupport",
            dependencies: [
                .product(name: "Sluice", package: "Sluice"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/Support",
            swiftSettings: [.swiftLanguageMode(.v6)]
        )
    ]
        + ["Channel", "Compute", "Gzip", "Line", "Pipelines"].map { suite in
            .executableTarget(
                name: "\(suite)Benchmarks",
                dependencies: [
                    "BenchmarkSupport",
                    .product(name: "Benchmark", package: "benchmark"),
                    .product(name: "Sluice", package: "Sluice"),
                    .product(name: "Pipelines", package: "Sluice"),
                    .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                ],
                path: "Benchmarks/\(suite)",
                swiftSettings: [.swiftLanguageMode(.v6)],
                plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
            )
        }
        + [
            // http-post's path against a local server: async-http-client and NIO, in this suite only.
            .executableTarget(
                name: "HTTPBenchmarks",
                dependencies: [
                    "BenchmarkSupport",
                    .product(name: "Benchmark", package: "benchmark"),
                    .product(name: "Sluice", package: "Sluice"),
                    .product(name: "SluiceHTTP", package: "Sluice"),
                    .product(name: "NIOCore", package: "swift-nio"),
                    .product(name: "NIOPosix", package: "swift-nio"),
                    .product(name: "NIOHTTP1", package: "swift-nio"),
                ],
                path: "Benchmarks/HTTP",
                swiftSettings: [.swiftLanguageMode(.v6)],
                plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
            )
        ]
)
