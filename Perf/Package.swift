// swift-tools-version:6.1
// The perf harness, a package of its own (as SwiftNIO keeps Benchmarks/), so that a package adding SocketServer
// resolves only what the library needs. It depends on the root package for the program it measures,
// `socketserver-demo`, which `swift build -c release --package-path Perf` builds next to `perf`
// (Perf/.build/release/). The SwiftNIO peer is a third package, Perf/NIOPeer, built by the harness on first use.
import PackageDescription

let package = Package(
    name: "Perf",
    products: [
        .executable(name: "perf", targets: ["Perf"])
    ],
    dependencies: [
        .package(name: "SocketServer", path: ".."),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", .upToNextMinor(from: "0.2.0")),
    ],
    targets: [
        // The load generator's epoll calls.
        .target(name: "CPerfEpoll", path: "CPerfEpoll"),
        // The TLS workloads' client, on the system OpenSSL 3 (libssl-dev, as SocketServerTLS).
        .target(
            name: "CPerfTLS", path: "CPerfTLS",
            linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]),
        .executableTarget(
            name: "Perf",
            dependencies: [
                "CPerfEpoll",
                "CPerfTLS",
                // Not linked: a build dependency, so that the demo is built, in the same configuration, with the harness.
                .product(name: "socketserver-demo", package: "SocketServer"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "Harness"
        ),
    ],
    swiftLanguageModes: [.v6]
)
