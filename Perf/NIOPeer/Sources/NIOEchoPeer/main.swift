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

signal(SIGTERM, SIG_IGN)
signal(SIGINT, SIG_IGN)
let signalQueue = DispatchQueue(label: "signals")
let stopSources = [SIGTERM, SIGINT].map { DispatchSource.makeSignalSource(signal: $0, queue: signalQueue) }
for source in stopSources {
    source.setEventHandler { channel.close(promise: nil) }
    source.resume()
}

print("listening on \(host):\(channel.localAddress?.port ?? port)")
fflush(nil)  // all streams: stdout is a file under the harness, so fully buffered
try channel.closeFuture.wait()
try group.syncShutdownGracefully()
