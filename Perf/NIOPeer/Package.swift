// swift-tools-version:6.1
// The SwiftNIO echo peer of the perf harness. A separate package so that SocketServer never depends on NIO;
// the harness builds it in release mode on first use (scratch path Perf/NIOPeer/.build).
import PackageDescription

let package = Package(
    name: "NIOPeer",
    products: [
        .executable(name: "nio-echo-peer", targets: ["NIOEchoPeer"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3")
    ],
    targets: [
        .executableTarget(
            name: "NIOEchoPeer",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        )
    ],
    swiftLanguageModes: [.v6]
)
