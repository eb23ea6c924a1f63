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
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // Embedded-safe core.
        .target(name: "CPerchShims", linkerSettings: [.linkedLibrary("m")]),
        // The agent's own libc/libsodium/libarchive wrappers (header-only; links sodium + archive).
        .target(
            name: "CPerchAgentShims",
            linkerSettings: [.linkedLibrary("sodium"), .linkedLibrary("archive")]
        ),
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
        .systemLibrary(name: "CLibArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        .target(
            name: "PerchBundle",
            dependencies: ["PerchGraph", "CLibArchive", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .systemLibrary(name: "CLibSSH2", pkgConfig: "libssh2", providers: [.apt(["libssh2-1-dev"])]),
        .target(name: "PerchSSH", dependencies: ["CLibSSH2", .product(name: "Crypto", package: "swift-crypto")]),
        .target(
            name: "PerchFleet",
            dependencies: ["PerchBundle", "PerchSSH", "PerchProfiles", .product(name: "Yams", package: "Yams")]
        ),
        // `perch agent build`: Embedded Swift cross build of perch-agent, cached.
        .target(name: "PerchAgentBuild", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),

        // Executables.
        .executableTarget(
            name: "perch",
            dependencies: [
                "PerchGraph", "PerchEngine", "PerchONNX", "PerchProfiles",
                "PerchOptimize", "PerchBundle", "PerchFleet", "PerchSSH", "PerchAgentBuild", "CPerchShims",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "perch-agent",
            dependencies: ["PerchGraph", "PerchEngine", "CPerchShims", "CPerchAgentShims"]
        ),

        // Tests.
        .testTarget(name: "PerchGraphTests", dependencies: ["PerchGraph"]),
        .testTarget(name: "PerchEngineTests", dependencies: ["PerchGraph", "PerchEngine"]),
        .testTarget(
            name: "PerchONNXTests",
            dependencies: ["PerchONNX", "PerchGraph", "PerchEngine"]
        ),
        .testTarget(name: "PerchProfilesTests", dependencies: ["PerchProfiles"]),
        .testTarget(name: "PerchCLITests", dependencies: ["perch"]),
        .testTarget(name: "PerchBundleTests", dependencies: ["PerchBundle", "PerchGraph", "perch"]),
        .testTarget(name: "PerchFleetTests", dependencies: ["PerchFleet"]),
        .testTarget(name: "PerchFleetEndToEndTests", dependencies: ["perch", "perch-agent"]),
        .testTarget(name: "PerchSSHTests", dependencies: ["PerchSSH", "PerchFleet", "perch", "perch-agent"]),
        .testTarget(name: "PerchAgentTests", dependencies: ["PerchBundle", "PerchGraph", "perch", "perch-agent"]),
        .testTarget(
            name: "PerchOptimizeTests",
            dependencies: ["PerchOptimize", "PerchONNX", "PerchGraph", "PerchEngine", "PerchProfiles"]
        ),
    ]
)
