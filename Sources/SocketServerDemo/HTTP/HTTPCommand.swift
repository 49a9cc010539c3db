import ArgumentParser
import Logging
import SocketServer

/// `socketserver-demo http`: a static file server, like `python3 -m http.server`.
struct HTTPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "Static HTTP/1.1 file server for a directory, like `python3 -m http.server`.",
        discussion: """
            Serves GET and HEAD for the files under --directory, with an HTML listing for a directory \
            without index.html, and 301 to add a missing trailing slash. Files go out with sendfile(2); \
            conditional requests (If-None-Match with the ETag, If-Modified-Since) get 304, a single byte \
            range (Range, If-Range; curl -C - resumes) 206, or 416 past the end. Answers 400 (also for a \
            missing or repeated Host), 404, 405, 408, 414 (request line over 8 KiB), 431 (a header line over \
            8 KiB, over 64 KiB or 100 fields in all), 503 with Retry-After when out of descriptors, and 505, \
            with a short HTML body. Nothing outside the directory is ever served: `..` (also as %2e%2e \
            or with %2f), and symbolic links that lead out of the tree, get 404. Connections stay open \
            between requests (HTTP/1.1 by default, HTTP/1.0 with Connection: keep-alive) in every mode: the \
            blocking modes (sync, threading, forking, pool) park an idle connection on the server's event \
            loop, where it holds no thread, worker or child, for up to 5 s; event and async modes keep it for \
            --timeout. Each request is logged at info level (the default level). Default: 127.0.0.1, port \
            8000, timeout 30 s.
            Try it: socketserver-demo http --mode threading --port 8000 & curl -i http://127.0.0.1:8000/
            """
    )

    @OptionGroup var options: ServiceOptions

    @OptionGroup var proxyProtocol: ProxyProtocolOption

    @Option(name: [.customShort("d"), .long], help: "Directory to serve. Default: the current directory.")
    var directory = "."

    @OptionGroup var tls: TLSOptions

    func validate() throws {
        guard StaticPathResolver(directory: directory) != nil else {
            throw ValidationError("--directory \(directory) is not an existing directory.")
        }
    }

    func run() throws {
        ShutdownSignals.block()
        let setup = try ProcessSetup.read()
        tls.blockReloadSignal()
        guard let resolver = StaticPathResolver(directory: directory) else {
            throw ValidationError("--directory \(directory) is not an existing directory.")
        }
        let context = try options.makeContext(
            defaultLogLevel: .info, defaultTimeout: 30,
            http: HTTPSettings(resolver: resolver, allowsKeepAlive: options.mode.allowsKeepAlive))
        let mode = try options.mode.makeConcurrencyMode(
            workers: options.workers, loops: options.loops, reuseThreads: options.reuseThreads,
            event: .stream(EventHTTPHandler.configuration(context)) { _ in EventHTTPHandler(dependencies: context) },
            async: ModeOption.AsyncHandling(configuration: AsyncHTTPHandler.configuration(context)) { connection in
                AsyncHTTPHandler(connection, dependencies: context)
            })
        ClassMetadataWarmUp.prepare(HTTPHandler.self)
        let makeHandler: (@Sendable (HandlerContext) -> BaseRequestHandler)? =
            mode is EventMode ? nil : { @Sendable request in HTTPHandler(request, dependencies: context) }
        var factory = ServerFactory(type: .stream, mode: mode, logger: context.logger, makeHandler: makeHandler)
        factory.configuration = { unix in try proxyProtocol.serverConfiguration(unix: unix) }
        factory.prepare = { server in try tls.apply(to: server) }
        context.logger.notice("serving directory", metadata: ["directory": "\(resolver.rootDescription)"])
        try ServiceRunner.run(
            options: options, setup: setup, context: context, factory: factory, defaultPort: 8000)
    }
}
