// swift-tools-version:6.1
import PackageDescription

// The strict settings Swift server packages build with: `any` spelled out on every existential, and a module's
// members visible only where that module is imported.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "SocketServer",
    products: [
        .library(name: "SocketServer", targets: ["SocketServer"]),
        .executable(name: "socketserver-demo", targets: ["SocketServerDemo"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // `make docs`: swift package generate-documentation --target SocketServer (a command plugin only).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibEventShim",
            path: "CLibEventShim",
            // libevent_core (no HTTP/DNS/RPC), so that one libevent library is loaded; the modulemap adds
            // event_pthreads, which itself needs only libevent_core.
            pkgConfig: "libevent_core",
            providers: [.apt(["libevent-dev"])]
        ),
        // One thin C wrapper per Linux call that Swift's Glibc module lacks (accept4, pidfd_open, ...).
        .target(name: "CSocketServerShims", cSettings: [.define("_GNU_SOURCE")]),
        .target(
            name: "SocketServer",
            dependencies: [
                "CLibEventShim",
                "CSocketServerShims",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "SocketServerDemo",
            dependencies: [
                "SocketServer",
                "CSocketServerShims",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Replaces malloc & co. with counting wrappers in whatever links it (the tests): see its header.
        .target(name: "CAllocationCounter"),
        .testTarget(
            name: "SocketServerTests",
            dependencies: ["SocketServer", "CAllocationCounter"],
            swiftSettings: strictSettings
        ),
        // Sees the library as users do (plain `import`): the README's examples and a third-party mode.
        .testTarget(
            name: "SocketServerAPITests",
            dependencies: ["SocketServer"],
            swiftSettings: strictSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
