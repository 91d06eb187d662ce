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
        .library(name: "Sluice", targets: ["Sluice"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0")
    ],
    targets: [
        .systemLibrary(
            name: "CZlib",
            path: "Sources/CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .target(
            name: "Sluice",
            dependencies: [
                "CZlib",
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: strictSwiftSettings
        ),
        .testTarget(
            name: "SluiceTests",
            dependencies: ["Sluice"],
            swiftSettings: strictSwiftSettings
        ),
    ]
)
