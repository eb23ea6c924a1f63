// swift-tools-version: 6.1
//
// Perch: one SwiftPM target per module of ARCHITECTURE.md. `PerchGraph`, `PerchEngine`,
// `CPerchShims` and `perch-agent` are embedded-safe (no Foundation); `scripts/build-embedded.sh`
// checks that they also compile in Embedded Swift mode.
import PackageDescription

let package = Package(
    name: "Perch",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "perch", targets: ["perch"]),
        .executable(name: "perch-agent", targets: ["perch-agent"]),
        .library(name: "PerchGraph", targets: ["PerchGraph"]),
        .library(name: "PerchEngine", targets: ["PerchEngine"]),
        .library(name: "PerchONNX", targets: ["PerchONNX"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // Embedded-safe core.
        .target(name: "CPerchShims", linkerSettings: [.linkedLibrary("m")]),
        .target(name: "PerchGraph"),
        .target(name: "PerchEngine", dependencies: ["PerchGraph", "CPerchShims"]),

        // Host-side libraries.
        .target(
            name: "PerchONNX",
            dependencies: ["PerchGraph", .product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        .target(
            name: "PerchProfiles",
            dependencies: ["PerchGraph", .product(name: "Yams", package: "Yams")]
        ),
        .target(name: "PerchOptimize", dependencies: ["PerchGraph", "PerchEngine", "PerchProfiles"]),
        .target(name: "PerchBundle", dependencies: ["PerchGraph"]),
        .target(name: "PerchSSH"),
        .target(name: "PerchFleet", dependencies: ["PerchBundle", "PerchSSH", "PerchProfiles"]),

        // Executables.
        .executableTarget(
            name: "perch",
            dependencies: [
                "PerchGraph", "PerchEngine", "PerchONNX", "PerchProfiles",
                "PerchOptimize", "PerchBundle", "PerchFleet", "CPerchShims",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "perch-agent", dependencies: ["PerchGraph", "PerchEngine", "CPerchShims"]),

        // Tests.
        .testTarget(name: "PerchGraphTests", dependencies: ["PerchGraph"]),
        .testTarget(name: "PerchEngineTests", dependencies: ["PerchGraph", "PerchEngine"]),
        .testTarget(
            name: "PerchONNXTests",
            dependencies: ["PerchONNX", "PerchGraph", "PerchEngine"]
        ),
        .testTarget(name: "PerchProfilesTests", dependencies: ["PerchProfiles"]),
        .testTarget(name: "PerchCLITests", dependencies: ["perch"]),
        .testTarget(
            name: "PerchOptimizeTests",
            dependencies: ["PerchOptimize", "PerchONNX", "PerchGraph", "PerchEngine", "PerchProfiles"]
        ),
    ]
)
