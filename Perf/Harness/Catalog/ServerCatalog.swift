import Foundation

/// Every server of a run: SocketServer's modes (run through `socketserver-demo`) and the peers.
struct ServerCatalog: Sendable {
    /// The modes the harness knows of, in the order shown. A mode the demo does not offer yet is listed
    /// and skipped with a note.
    static let modeNames = ["sync", "threading", "forking", "pool", "event", "async"]
    /// The peers, in the order shown.
    static let peerNames = [
        "c-bufferevent", "c-raw", "c-sequential", "c-threads", "c-fork", "c-udp", "nio", "nginx", "py-sync",
        "py-threading", "py-forking",
    ]
    /// The modes the TLS workloads run (issue 15: the demo's best modes, event and async, plus threading).
    static let tlsModes: Set<String> = ["threading", "event", "async"]
    /// The C programs in Perf/Peers/c (each `NAME.c` built to Perf/out/bin/NAME).
    static let cPrograms = ["echo_bufferevent", "echo_raw", "echo_sequential", "echo_threads", "echo_fork", "udp_echo"]

    /// The floor a mode is paired with: the peer of the same design with nothing on top (issue 13).
    /// sync ↔ C sequential, threading (and pool) ↔ C thread per connection, forking ↔ C process per connection,
    /// event and async ↔ C raw libevent events (C libevent UDP for datagrams); nginx for HTTP.
    static func floor(of server: String, workload: String) -> String? {
        if workload.hasPrefix("http") || workload.hasPrefix("tls") { return modeNames.contains(server) ? "nginx" : nil }
        let udp = workload.hasPrefix("udp")
        switch server {
        case "sync": return "c-sequential"
        case "threading", "threading-reuse", "pool": return "c-threads"
        case "forking": return "c-fork"
        case "event", "async": return udp ? "c-udp" : "c-raw"
        default: return nil
        }
    }

    var servers: [ServerSpec] = []
    /// Why a server known to the harness is missing from this run (mode not in the demo, peer not built).
    var missing: [String: String] = [:]

    init(tools: PeerTools, demoHelp: DemoHelp?) {
        for mode in Self.modeNames {
            guard let demo = tools.demo, let help = demoHelp else {
                missing[mode] = "socketserver-demo is not built"
                continue
            }
            guard help.modes.contains(mode) else {
                missing[mode] = "socketserver-demo has no --mode \(mode) yet"
                continue
            }
            let quiet = help.hasLogLevel ? ["--log-level", "error"] : []
            let loops = Self.concurrency(ofMode: mode) == .eventLoop && help.hasLoops
            // One loop against one NIO loop and one C loop; 2 for the idle-connection workloads (issue 11).
            let oneLoop = loops ? ["--loops", "1"] : []
            let delayFlag = help.delayFlag
            let common = ["--mode", mode, "--host", "127.0.0.1", "--port", "0"] + quiet + oneLoop
            var spec = ServerSpec(
                id: mode, label: "SocketServer \(mode)", family: .mode,
                concurrency: Self.concurrency(ofMode: mode),
                tcp: { delay in
                    [demo, "echo"] + common + (delay > 0 ? [delayFlag ?? "", String(delay)] : [])
                },
                udp: { [demo, "udp-echo"] + common },
                supportsDelay: delayFlag != nil)
            if loops {
                let idle = ["--mode", mode, "--host", "127.0.0.1", "--port", "0", "--loops", "2"] + quiet
                spec.idleTCP = { [demo, "echo"] + idle }
            }
            // Each request logged at info to stderr (a file here), as nginx's access log goes to a file.
            let httpLoops = oneLoop
            spec.http = { root, _ in
                [demo, "http", "--mode", mode, "--host", "127.0.0.1", "--port", "0", "--directory", root] + httpLoops
            }
            if let tls = tools.tls, Self.tlsModes.contains(mode) {
                spec.https = { root, _ in
                    [demo, "http", "--mode", mode, "--host", "127.0.0.1", "--port", "0", "--directory", root]
                        + httpLoops + ["--tls-cert", tls.certificate, "--tls-key", tls.key]
                }
            }
            servers.append(spec)
            // Threading mode with thread reuse (issue 13 point 6), paired with the same floor.
            if mode == "threading" && help.hasReuseThreads {
                let reuse = common + ["--reuse-threads", "16"]
                servers.append(
                    ServerSpec(
                        id: "threading-reuse", label: "SocketServer threading, reused threads", family: .mode,
                        concurrency: spec.concurrency,
                        tcp: { delay in
                            [demo, "echo"] + reuse + (delay > 0 ? [delayFlag ?? "", String(delay)] : [])
                        },
                        udp: { [demo, "udp-echo"] + reuse },
                        supportsDelay: delayFlag != nil))
            }
        }
        let bin = tools.cBinDirectory
        if tools.cPeersBuilt {
            servers.append(
                ServerSpec(
                    id: "c-bufferevent", label: "C libevent bufferevent", family: .peer, concurrency: .eventLoop,
                    tcp: { _ in ["\(bin)/echo_bufferevent", "--port", "0"] }, udp: nil, supportsDelay: false))
            servers.append(
                ServerSpec(
                    id: "c-raw", label: "C libevent raw events", family: .peer, concurrency: .eventLoop,
                    tcp: { _ in ["\(bin)/echo_raw", "--port", "0"] }, udp: nil, supportsDelay: false))
            servers.append(
                ServerSpec(
                    id: "c-sequential", label: "C sequential", family: .peer, concurrency: .sequential,
                    tcp: { _ in ["\(bin)/echo_sequential", "--port", "0"] },
                    udp: { ["\(bin)/echo_sequential", "--udp", "--port", "0"] }, supportsDelay: false))
            servers.append(
                ServerSpec(
                    id: "c-threads", label: "C thread per connection", family: .peer, concurrency: .threads,
                    tcp: { _ in ["\(bin)/echo_threads", "--port", "0"] },
                    udp: { ["\(bin)/echo_threads", "--udp", "--port", "0"] }, supportsDelay: false))
            servers.append(
                ServerSpec(
                    id: "c-fork", label: "C process per connection", family: .peer, concurrency: .processes,
                    tcp: { _ in ["\(bin)/echo_fork", "--port", "0"] },
                    udp: { ["\(bin)/echo_fork", "--udp", "--port", "0"] }, supportsDelay: false))
            servers.append(
                ServerSpec(
                    id: "c-udp", label: "C libevent UDP", family: .peer, concurrency: .eventLoop,
                    tcp: nil, udp: { ["\(bin)/udp_echo", "--port", "0"] }, supportsDelay: false))
        } else {
            for name in ["c-bufferevent", "c-raw", "c-sequential", "c-threads", "c-fork", "c-udp"] {
                missing[name] = "C peers did not build"
            }
        }
        if let nio = tools.nioPeer {
            servers.append(
                ServerSpec(
                    id: "nio", label: "SwiftNIO (1 loop)", family: .peer, concurrency: .eventLoop,
                    tcp: { _ in [nio, "--port", "0"] }, udp: { [nio, "--udp", "--port", "0"] }, supportsDelay: false))
        } else {
            missing["nio"] = tools.nioProblem ?? "SwiftNIO peer not built"
        }
        if let nginx = tools.nginx {
            let configure = tools.nginxConfiguration
            var spec = ServerSpec(
                id: "nginx", label: "nginx (1 worker)", family: .peer, concurrency: .eventLoop, tcp: nil, udp: nil,
                supportsDelay: false)
            spec.http = { root, port in
                let (prefix, file) = configure(root, port)
                return [nginx, "-p", prefix, "-c", file, "-e", "\(prefix)/error.log"]
            }
            if let tls = tools.tls {
                let configureTLS = tls.nginxConfiguration(outDirectory: tools.outDirectory, logDirectory: tools.logDirectory)
                spec.https = { root, port in
                    let (prefix, file) = configureTLS(root, port)
                    return [nginx, "-p", prefix, "-c", file, "-e", "\(prefix)/error.log"]
                }
            }
            spec.announcesAddress = false
            servers.append(spec)
        } else {
            missing["nginx"] = "nginx not installed (`make deps` installs it)"
        }
        if let python = tools.python {
            let script = tools.pythonScript
            for (id, mode) in [("py-sync", "sync"), ("py-threading", "threading"), ("py-forking", "forking")] {
                servers.append(
                    ServerSpec(
                        id: id, label: "Python \(mode)", family: .peer,
                        concurrency: Self.concurrency(ofMode: mode),
                        tcp: { delay in [python, script, "--mode", mode, "--port", "0", "--delay-ms", String(delay)] },
                        udp: { [python, script, "--mode", mode, "--udp", "--port", "0"] },
                        supportsDelay: true))
            }
        } else {
            for name in ["py-sync", "py-threading", "py-forking"] { missing[name] = "python3 not found" }
        }
    }

    static func concurrency(ofMode mode: String) -> ServerSpec.Concurrency {
        switch mode {
        case "sync": .sequential
        case "forking": .processes
        case "event", "async": .eventLoop
        default: .threads
        }
    }

    /// Keeps only the servers whose ids are in `ids` (all when nil).
    mutating func restrict(to ids: Set<String>?) {
        guard let ids else { return }
        servers.removeAll { !ids.contains($0.id) }
    }
}

/// What `socketserver-demo echo --help` says the demo offers.
struct DemoHelp: Sendable {
    var modes: Set<String>
    var hasLogLevel: Bool
    var hasLoops: Bool
    /// Whether the demo has `--reuse-threads N` for threading mode.
    var hasReuseThreads: Bool
    /// The option that makes the echo handler sleep per line, if the demo has one.
    var delayFlag: String?

    init(helpText raw: String) {
        // ArgumentParser wraps help at 80 columns: join the lines before looking for words.
        let helpText = raw.split(whereSeparator: { $0 == "\n" || $0 == " " }).joined(separator: " ")
        // The --mode option ends with "(values: sync, threading, ...; default: sync)".
        if let values = helpText.range(of: "(values: ") {
            let list = helpText[values.upperBound...].prefix { $0 != ";" && $0 != ")" }
            modes = Set(list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        } else {
            modes = Set(ServerCatalog.modeNames.filter { helpText.contains("\($0) (") })
        }
        hasLogLevel = helpText.contains("--log-level")
        hasLoops = helpText.contains("--loops")
        hasReuseThreads = helpText.contains("--reuse-threads")
        delayFlag = ["--delay-ms", "--handler-delay-ms", "--sleep-ms"].first { helpText.contains($0) }
    }
}
