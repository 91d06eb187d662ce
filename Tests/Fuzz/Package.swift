// swift-tools-version: 6.1
import PackageDescription

// libFuzzer targets for Sluice's decoders and parsers: a package of its own, so the library's users never build
// it. Build and run them all with `Tests/Fuzz/run SECONDS` (see README.md, "Run the tests").
//
// The targets reach internal types (`@testable import`): they are built in debug, where SwiftPM compiles Sluice
// with testing enabled, with `-sanitize=fuzzer,address` (the `run` script passes the flags). Each is an ordinary
// executable whose `main.swift` hands its test function to libFuzzer's driver (`runFuzzer`).
let targets = ["FuzzGzipReader", "FuzzLineFramer", "FuzzJSONFilter", "FuzzDeadLetter"]

let package = Package(
    name: "SluiceFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Named explicitly: a path dependency is otherwise known by its directory name, which differs per checkout.
        .package(name: "Sluice", path: "../.."),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .target(
            name: "FuzzSupport",
            dependencies: [.product(name: "Sluice", package: "Sluice")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        )
    ]
        + targets.map { name in
            .executableTarget(
                name: name,
                dependencies: [
                    "FuzzSupport",
                    .product(name: "Sluice", package: "Sluice"),
                    .product(name: "Pipelines", package: "Sluice"),
                    .product(name: "Logging", package: "swift-log"),
                ],
                swiftSettings: [.swiftLanguageMode(.v6)]
            )
        }
)
