// SwiftNIO echo server on ONE event loop, to compare with one SocketServer event loop:
//   nio-echo-peer [--udp] [--host H] [--port N]
// Prints "listening on HOST:PORT" once bound, echoes bytes (TCP) or datagrams (UDP), exits 0 on SIGTERM/SIGINT.
import Dispatch
import Glibc
import NIOCore
import NIOPosix

/// Writes every read straight back; flushes once per read burst so that pipelined reads become one write.
private final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Sends every datagram back to its sender.
private final class DatagramEchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {}
}

var host = "127.0.0.1"
var port = 0
var udp = false
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--udp": udp = true
    case "--host": host = arguments.popFirst() ?? host
    case "--port": port = arguments.popFirst().flatMap { Int($0) } ?? -1
    default:
        print("usage: nio-echo-peer [--udp] [--host H] [--port N]")
        exit(2)
    }
}
guard (0...65535).contains(port) else {
    print("bad port")
    exit(2)
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let channel: Channel
if udp {
    channel = try DatagramBootstrap(group: group)
        .channelOption(.socketOption(.so_reuseaddr), value: 1)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(DatagramEchoHandler()) }
        }
        .bind(host: host, port: port).wait()
} else {
    channel = try ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 4096)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        .childChannelOption(.maxMessagesPerRead, value: 16)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EchoHandler()) }
        }
        .bind(host: host, port: port).wait()
}

/// Closes `channel` on SIGTERM or SIGINT. Not main-actor code: the handlers run on a Dispatch queue.
nonisolated func closeOnTermination(_ channel: Channel) -> [any DispatchSourceSignal] {
    signal(SIGTERM, SIG_IGN)
    signal(SIGINT, SIG_IGN)
    let queue = DispatchQueue(label: "signals")
    return [SIGTERM, SIGINT].map { number in
        let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
        source.setEventHandler { @Sendable in channel.close(promise: nil) }
        source.resume()
        return source
    }
}

let stopSources = closeOnTermination(channel)

print("listening on \(host):\(channel.localAddress?.port ?? port)")
fflush(nil)  // all streams: stdout is a file under the harness, so fully buffered
try channel.closeFuture.wait()
try group.syncShutdownGracefully()
stopSources.forEach { $0.cancel() }
