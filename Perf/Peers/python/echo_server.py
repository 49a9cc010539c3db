"""Python socketserver echo peers for the perf harness.

    python3 echo_server.py --mode sync|threading|forking [--udp] [--host H] [--port N] [--delay-ms MS]

Prints "listening on HOST:PORT" once the socket is bound, echoes lines (TCP) or datagrams (UDP), and shuts
down gracefully on SIGTERM or SIGINT. The listen backlog is raised to 4096 (Python's default of 5 would drop
connections under load and measure the kernel instead of the mode) so that every server in the harness has
the same backlog as SocketServer.
"""
import argparse
import signal
import socketserver
import sys
import threading
import time


def make_handlers(delay):
    class EchoLines(socketserver.StreamRequestHandler):
        def handle(self):
            for line in self.rfile:
                if delay:
                    time.sleep(delay)
                self.wfile.write(line)

    class EchoDatagram(socketserver.DatagramRequestHandler):
        def handle(self):
            if delay:
                time.sleep(delay)
            self.wfile.write(self.rfile.read())

    return EchoLines, EchoDatagram


def make_server(mode, udp, address, delay):
    lines, datagrams = make_handlers(delay)
    base = socketserver.UDPServer if udp else socketserver.TCPServer
    mixin = {"sync": None, "threading": socketserver.ThreadingMixIn, "forking": socketserver.ForkingMixIn}[mode]
    bases = (mixin, base) if mixin else (base,)
    attributes = {"allow_reuse_address": True, "request_queue_size": 4096, "daemon_threads": True}
    server_class = type("PeerServer", bases, attributes)
    return server_class(address, datagrams if udp else lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=["sync", "threading", "forking"], default="sync")
    parser.add_argument("--udp", action="store_true")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    options = parser.parse_args()
    server = make_server(options.mode, options.udp, (options.host, options.port), options.delay_ms / 1000.0)

    def stop(signal_number, frame):
        # shutdown() waits for serve_forever, which runs on this (the main) thread: ask from another one.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    print(f"listening on {host}:{port}", flush=True)
    with server:
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
