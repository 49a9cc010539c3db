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
        // Optional: TLS and mutual TLS for every stream mode, on the system OpenSSL 3 (libssl-dev).
        .library(name: "SocketServerTLS", targets: ["SocketServerTLS"]),
        .executable(name: "socketserver-demo", targets: ["SocketServerDemo"]),
        // Optional integrations: the core product depends on none of their packages.
        .library(name: "SocketServerLifecycle", targets: ["SocketServerLifecycle"]),
        .library(name: "SocketServerMetrics", targets: ["SocketServerMetrics"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // `make docs`: swift package generate-documentation --target SocketServer (a command plugin only).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        // Only for SocketServerLifecycle (and its example and tests).
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // Only for SocketServerMetrics (and its tests).
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        // Only for the demo's `--metrics-port` (the Prometheus exposition) and its tests.
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
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
        // The system OpenSSL 3 (libssl and libcrypto), found through pkg-config; only SocketServerTLS uses it.
        .systemLibrary(
            name: "COpenSSL",
            path: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        // OpenSSL's function-like macros (SSL_set_mode, SSL_CTX_set_options, SSL_OP_*, ...) as C functions.
        .target(name: "CSocketServerTLSShims", dependencies: ["COpenSSL"]),
        .target(
            name: "SocketServerTLS",
            dependencies: [
                "SocketServer",
                "COpenSSL",
                "CSocketServerTLSShims",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "SocketServerDemo",
            dependencies: [
                "SocketServer",
                "CSocketServerShims",
                "SocketServerTLS",
                "SocketServerMetrics",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings,
            // Binds every symbol at start-up (`-z now`) instead of at each one's first call: a forked child
            // (forking mode) otherwise resolved each libc and runtime function its request used for the first
            // time, about 1,250 instructions apiece, 12,000 per child. An executable's flag: the library
            // products carry none, so depending on this package is unaffected.
            linkerSettings: [.unsafeFlags(["-Xlinker", "-z", "-Xlinker", "now"])]
        ),
        // Any server as a swift-service-lifecycle `Service`.
        .target(
            name: "SocketServerLifecycle",
            dependencies: [
                "SocketServer",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // A line-echo server run by a ServiceGroup (SIGTERM: graceful, SIGINT: cancel), for the lifecycle tests.
        .executableTarget(
            name: "SocketServerLifecycleExample",
            dependencies: [
                "SocketServerLifecycle",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SocketServerLifecycleTests",
            dependencies: [
                "SocketServerLifecycle",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // A `ServerObserver` recording swift-metrics counters, gauges and timers.
        .target(
            name: "SocketServerMetrics",
            dependencies: [
                "SocketServer",
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SocketServerMetricsTests",
            dependencies: [
                "SocketServerMetrics",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Replaces malloc & co. with counting wrappers in whatever links it (the tests): see its header.
        .target(name: "CAllocationCounter"),
        .testTarget(
            name: "SocketServerTests",
            // SocketServerTLS: for the PROXY-header-then-TLS tests (ProxyProtocolTLSTests) only.
            dependencies: ["SocketServer", "SocketServerTLS", "CAllocationCounter", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SocketServerTLSTests",
            dependencies: [
                "SocketServer", "SocketServerTLS", "CAllocationCounter", .product(name: "Logging", package: "swift-log"),
            ],
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
