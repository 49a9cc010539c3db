import ArgumentParser
import SocketServer

/// `--proxy-protocol v1|v2|auto` and `--trusted-proxy ADDR`: the PROXY protocol for echo and http behind
/// HAProxy or a cloud load balancer.
struct ProxyProtocolOption: ParsableArguments {
    /// The accepted header versions, as named on the command line.
    enum Version: String, ExpressibleByArgument, CaseIterable {
        case v1, v2, auto

        var versions: ProxyProtocolConfiguration.Versions {
            switch self {
            case .v1: .v1
            case .v2: .v2
            case .auto: .auto
            }
        }
    }

    @Option(
        name: .customLong("proxy-protocol"),
        help: ArgumentHelp(
            "Require a PROXY protocol header (v1, v2 or auto: either) on every connection; the client address "
                + "(and the access log) is then the original client's.",
            valueName: "version"))
    var version: Version?

    @Option(
        name: .customLong("trusted-proxy"),
        help: ArgumentHelp(
            "An address or network (10.0.0.0/8, ::1, unix) allowed to send PROXY headers; repeat for more. "
                + "Default: 127.0.0.0/8 and ::1 (every peer for --unix).",
            valueName: "address"))
    var trustedProxies: [String] = []

    mutating func validate() throws {
        if version == nil, !trustedProxies.isEmpty {
            throw ValidationError("--trusted-proxy needs --proxy-protocol.")
        }
        for proxy in trustedProxies {
            guard (try? TrustedProxy(proxy)) != nil else {
                throw ValidationError("--trusted-proxy \(proxy) is not an address, a network (ADDRESS/PREFIX) or unix.")
            }
        }
    }

    /// The server settings these options ask for; the default configuration without `--proxy-protocol`.
    func serverConfiguration(unix: Bool) throws -> ServerConfiguration {
        guard let version else { return ServerConfiguration() }
        let trusted =
            trustedProxies.isEmpty
            ? (unix ? [TrustedProxy.unixPeers] : TrustedProxy.loopback) : try trustedProxies.map { try TrustedProxy($0) }
        return ServerConfiguration(proxyProtocol: try ProxyProtocolConfiguration(version.versions, trustedProxies: trusted))
    }
}
