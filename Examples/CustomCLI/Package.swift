// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "my-sluice",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Your checkout of Sluice, or its repository: .package(url: "https://…/sluice.git", from: "…").
        .package(name: "Sluice", path: "../.."),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .executableTarget(
            name: "my-sluice",
            dependencies: [
                .product(name: "Sluice", package: "Sluice"),
                .product(name: "Pipelines", package: "Sluice"),
                .product(name: "SluiceCommand", package: "Sluice"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        )
    ]
)
