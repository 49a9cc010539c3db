// swift-tools-version:6.1
// libFuzzer targets for the code that reads client bytes. A separate package, so that the library never
// builds with fuzzer instrumentation by accident; `Fuzz/run` (or `make fuzz`) builds it with
// `--sanitize=address -Xswiftc -sanitize=fuzzer` and runs each target for a bounded time.
//
// Each executable's `main` hands its test function to libFuzzer's driver (`LLVMFuzzerRunDriver`). SwiftPM
// links executables with `--defsym main=<Target>_main`, which takes precedence over libFuzzer's own `main`;
// that one is still linked in, so the test function is also exported as `LLVMFuzzerTestOneInput`.
// `DemoHTTP` compiles the demo's HTTP parsing and path-resolving files, through symbolic links into
// `Sources/SocketServerDemo/HTTP`, since an executable target cannot be imported.
import PackageDescription

let package = Package(
    name: "SocketServerFuzz",
    dependencies: [
        .package(name: "SocketServer", path: ".."),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .target(name: "CLibFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer"]),
        .target(name: "DemoHTTP", dependencies: [.product(name: "SocketServer", package: "SocketServer")]),
        .executableTarget(name: "FuzzRequestReader", dependencies: ["FuzzSupport", .product(name: "SocketServer", package: "SocketServer")]),
        .executableTarget(
            name: "FuzzEventInput",
            dependencies: ["FuzzSupport", .product(name: "SocketServer", package: "SocketServer"), .product(name: "Logging", package: "swift-log")]
        ),
        .executableTarget(name: "FuzzHTTPHead", dependencies: ["FuzzSupport", "DemoHTTP", .product(name: "SocketServer", package: "SocketServer")]),
        .executableTarget(name: "FuzzStaticPath", dependencies: ["FuzzSupport", "DemoHTTP"]),
        .executableTarget(name: "FuzzProxyHeader", dependencies: ["FuzzSupport", .product(name: "SocketServer", package: "SocketServer")]),
    ],
    swiftLanguageModes: [.v6]
)
