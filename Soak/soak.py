#!/usr/bin/env python3
"""Soak run: socketserver-demo in every --mode under mixed, partly hostile traffic.

For each mode the demo offers (sync, threading, forking, pool, event, and async when it exists), this
starts three demo processes (http, echo, udp-echo) with a low RLIMIT_NOFILE, drives them for --seconds with
well-behaved clients mixed with abusive ones, samples each server's RSS, descriptors, threads and children
from /proc twice a second, and fails when:

- any well-behaved request fails (wrong or missing reply; UDP gets three tries, as UDP may drop);
- a server dies, or does not exit 0 within 10 s of SIGTERM at the end;
- a server's figures grow without bound: the median of the last third of the run above the largest value
  of the first third by more than the tolerance (RSS: 10 % + 4 MiB, over the whole run; descriptors: 8 and
  threads: 4, over the samples between floods, which fill both to the limit by design). Floods happen
  throughout, so the first third has seen every kind of peak and the allocator's plateau; what still
  climbs after that is a leak (16 KiB lost per HTTP connection makes RSS triple within 20 s);
- once the load stops, descriptors, threads or children do not come back to what the idle server had after
  its warm-up requests (within 15 s): the exact check for a descriptor, thread or child leak (a pool may
  have started the rest of its --workers meanwhile, which it keeps).

Abusive clients: oversized lines and datagrams, slowloris (a byte every 100 ms), resets (RST) in the
middle of a request and of a response, half-close in the middle of a request head, connect-and-silence,
garbage bytes, oversized request lines and header blocks, and descriptor-exhaustion floods (320 connections
held for 1.5 s against each TCP server, limited to 256 descriptors, from the start and every 2 s after; in
sync mode a connect-and-close storm, since a held connection there blocks everyone by design).

Everything is bounded: each client operation has a socket timeout, each load thread stops at the deadline
(and after at most 1,000,000 iterations), and every process started is stopped and reaped.
Python 3 standard library only; Linux (/proc).
"""

import argparse
import os
import random
import resource
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

SERVER_TIMEOUT = 2          # --timeout given to the servers, seconds
SERVER_FD_LIMIT = 256       # RLIMIT_NOFILE of the servers
FLOOD_CONNECTIONS = 320
FLOOD_HOLD = 1.5
CLIENT_TIMEOUT = 20.0       # a well-behaved client's socket timeout: generous, sync mode queues behind abusers
SAMPLE_INTERVAL = 0.5
SETTLE_LIMIT = 15.0
MAX_ITERATIONS = 1_000_000
RSS_TOLERANCE = (0.10, 4 * 1024)   # relative, absolute KiB
FD_TOLERANCE = 8
THREAD_TOLERANCE = 4
POOL_WORKERS = 4            # --workers of the pool-mode servers

SMALL_BODY = b"hello from the soak\n" * 20
LARGE_SIZE = 4 * 1024 * 1024


class Failure(Exception):
    pass


class FloodWindows:
    """When descriptor floods were running (plus a second of grace), so that replies can be judged by it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.windows = []       # [start, end]; end None while running

    def begin(self):
        window = [time.monotonic(), None]
        with self.lock:
            self.windows.append(window)
        return window

    def end(self, window):
        with self.lock:
            window[1] = time.monotonic()

    def overlaps(self, start, end):
        with self.lock:
            return any(start <= (stop if stop is not None else end) + 1.0 and end >= begin
                       for begin, stop in self.windows)


FLOODS = FloodWindows()

# Answers accepted from a well-behaved request while a descriptor flood runs: the server cannot open the file
# it would serve, so 503 (with Retry-After) is the honest answer, and the demo gives it. A 404 for a file that
# exists is a failure (it was a known issue until StaticFile.open told EMFILE from a missing file).
FLOOD_STATUSES = {503}


class Counters:
    """Thread-safe tallies: well-behaved successes and failures, abusive attempts and their outcomes."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ok = {}
        self.failed = {}
        self.abuse = {}
        self.known_issues = {}
        self.examples = []

    def success(self, kind):
        with self.lock:
            self.ok[kind] = self.ok.get(kind, 0) + 1

    def known(self, kind, issue):
        with self.lock:
            self.known_issues[(kind, issue)] = self.known_issues.get((kind, issue), 0) + 1

    def failure(self, kind, reason):
        with self.lock:
            key = (kind, reason.split(":")[0])
            self.failed[key] = self.failed.get(key, 0) + 1
            if len(self.examples) < 10:
                self.examples.append(f"{kind}: {reason}")

    def abused(self, kind, outcome):
        with self.lock:
            key = (kind, outcome)
            self.abuse[key] = self.abuse.get(key, 0) + 1


# ---------------------------------------------------------------------------------------------------------
# Servers and their figures

def proc_figures(pid):
    """(rss KiB, peak rss KiB, descriptors, threads, children) of a live process, or None."""
    try:
        rss = peak = threads = 0
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1])
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
        descriptors = len(os.listdir(f"/proc/{pid}/fd"))
        children = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/children") as listing:
                    children += len(listing.read().split())
            except OSError:
                pass
        return rss, peak, descriptors, threads, children
    except (OSError, ValueError):
        return None


class Server:
    def __init__(self, demo, service, mode, workdir, root):
        self.service = service
        self.mode = mode
        self.samples = []          # (time, rss, descriptors, threads, children) during the load
        self.log_path = os.path.join(workdir, f"{service}-{mode}.stderr")
        arguments = [demo, service, "--mode", mode, "--port", "0", "--timeout", str(SERVER_TIMEOUT),
                     "--log-level", "critical"]
        if mode == "pool":
            arguments += ["--workers", str(POOL_WORKERS)]
        if mode in ("event", "async"):
            arguments += ["--loops", "2"]
        if service == "http":
            arguments += ["--directory", root]

        def limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (SERVER_FD_LIMIT, SERVER_FD_LIMIT))

        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(arguments, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=self.log, preexec_fn=limit, start_new_session=True)
        line = b""
        deadline = time.monotonic() + 20
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.process.poll() is not None:
                break
            ready, _, _ = select.select([self.process.stdout], [], [], remaining)
            if ready:
                byte = os.read(self.process.stdout.fileno(), 1)
                if not byte:
                    break
                line += byte
        text = line.decode(errors="replace").strip()
        if not text.startswith("listening on "):
            self.stop()
            status = self.process.returncode
            error = Failure(f"{service} --mode {mode} did not start (status {status}): {text!r}; "
                            f"stderr: {self.stderr_tail()}")
            error.unsupported = status == 2     # a usage error: this service has no such mode
            raise error
        address = text[len("listening on "):]
        host, _, port = address.rpartition(":")
        self.address = (host, int(port))
        # Nothing more is expected on stdout; drain it anyway so that the server never blocks on it.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        try:
            while os.read(self.process.stdout.fileno(), 4096):
                pass
        except OSError:
            pass

    @property
    def name(self):
        return f"{self.service}/{self.mode}"

    def figures(self):
        return proc_figures(self.process.pid)

    def alive(self):
        return self.process.poll() is None

    def stderr_tail(self, limit=600):
        try:
            with open(self.log_path, "rb") as log:
                return log.read()[-limit:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        """SIGTERM, then up to 10 s for exit; returns the exit status (None when it had to be killed)."""
        status = None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                status = self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        else:
            status = self.process.returncode
        if self.process.stdout:
            self.process.stdout.close()
        self.log.close()
        return status


def idle_figures(server):
    """The server's figures once nothing changes for a second (at most SETTLE_LIMIT s)."""
    deadline = time.monotonic() + SETTLE_LIMIT
    last, stable_since = None, time.monotonic()
    while time.monotonic() < deadline:
        figures = server.figures()
        if figures is None:
            return None
        key = figures[2:]
        if key != last:
            last, stable_since = key, time.monotonic()
        elif time.monotonic() - stable_since >= 1.0:
            return figures
        time.sleep(0.1)
    return server.figures()


def back_to_idle(server, figures, baseline):
    """Whether descriptors, threads and children are what the idle server had after its warm-up. A pool
    starts its workers as requests queue up and keeps them (up to --workers): the warm-up started at least
    one, so up to POOL_WORKERS - 1 more threads are its own."""
    descriptors, threads, children = figures[2:]
    extra_threads = POOL_WORKERS - 1 if server.mode == "pool" else 0
    return (descriptors == baseline[2] and children == baseline[4]
            and baseline[3] <= threads <= baseline[3] + extra_threads)


def settled_to(server, baseline):
    """Waits (at most SETTLE_LIMIT s) until descriptors, threads and children are back to `baseline`."""
    deadline = time.monotonic() + SETTLE_LIMIT
    figures = server.figures()
    while time.monotonic() < deadline:
        figures = server.figures()
        if figures is None or back_to_idle(server, figures, baseline):
            return figures
        time.sleep(0.1)
    return figures


# ---------------------------------------------------------------------------------------------------------
# Client helpers

def connect(address, timeout=CLIENT_TIMEOUT):
    return socket.create_connection(address, timeout=timeout)


def reset(sock):
    """Closes with an RST instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def read_until_closed(sock, limit=16 << 20):
    data = bytearray()
    while len(data) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return bytes(data)


def outcome_of(body):
    """Runs an abusive exchange; what happened, as a short word."""
    try:
        body()
        return "done"
    except socket.timeout:
        return "timeout"
    except ConnectionResetError:
        return "reset"
    except BrokenPipeError:
        return "closed"
    except OSError as error:
        return type(error).__name__


def read_response(sock, buffered, head_only=False):
    """One HTTP response from `sock` (bytes already received in `buffered`): (status, headers, body, rest)."""
    while b"\r\n\r\n" not in buffered:
        chunk = sock.recv(65536)
        if not chunk:
            raise Failure(f"connection closed before a response head ({len(buffered)} bytes)")
        buffered += chunk
    head, _, rest = buffered.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise Failure(f"bad status line {lines[0]!r}")
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if head_only else int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise Failure(f"connection closed {length - len(rest)} bytes before the end of the body")
        rest += chunk
    return status, headers, rest[:length], rest[length:]


# ---------------------------------------------------------------------------------------------------------
# Well-behaved clients: every failure counts

def echo_ok(rng, address, counters, mode):
    lines = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz0123456789 ") for _ in range(rng.randint(0, 200))) + b"\n"
             for _ in range(rng.randint(1, 20))]
    expected = b"".join(lines)
    half_close = rng.random() < 0.5
    kind = "echo half-close" if half_close else "echo"
    try:
        with connect(address) as sock:
            if half_close:
                sock.sendall(expected)
                sock.shutdown(socket.SHUT_WR)
                received = read_until_closed(sock)
            else:
                received = b""
                for line in lines:
                    sock.sendall(line)
                    target = len(received) + len(line)
                    while len(received) < target:
                        chunk = sock.recv(65536)
                        if not chunk:
                            raise Failure("closed before the echo")
                        received += chunk
            if received != expected:
                raise Failure(f"mismatch: sent {len(expected)} bytes, got {len(received)}")
        counters.success(kind)
    except (OSError, Failure) as error:
        counters.failure(kind, f"{type(error).__name__}: {error}")


HTTP_REQUESTS = [
    ("GET", "/small.txt", 200, SMALL_BODY),
    ("HEAD", "/small.txt", 200, b""),
    ("GET", "/dir/", 200, b"a.txt"),
    ("GET", "/dir", 301, None),
    ("GET", "/missing.txt", 404, None),
    ("GET", "/%2e%2e/etc/passwd", 404, None),
]


def http_ok(rng, address, counters, mode):
    keep_alive = mode != "sync"
    count = rng.randint(1, 3) if keep_alive else 1
    try:
        with connect(address) as sock:
            buffered = b""
            for index in range(count):
                method, path, status, body = rng.choice(HTTP_REQUESTS)
                last = index == count - 1
                connection = "close" if last or not keep_alive else "keep-alive"
                started = time.monotonic()
                sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: soak\r\nConnection: {connection}\r\n\r\n".encode())
                got, headers, payload, buffered = read_response(sock, buffered, head_only=method == "HEAD")
                if got != status and FLOODS.overlaps(started, time.monotonic()):
                    if got in FLOOD_STATUSES:
                        counters.success("http unavailable during a flood")
                        return
                if got != status:
                    raise Failure(f"{method} {path}: status {got}, expected {status}")
                if body is not None and method == "GET" and status == 200:
                    if (body == SMALL_BODY and payload != body) or body not in payload:
                        raise Failure(f"{method} {path}: wrong body ({len(payload)} bytes)")
                if method == "HEAD" and headers.get("content-length") != str(len(SMALL_BODY)):
                    raise Failure(f"HEAD: content-length {headers.get('content-length')}")
        for _ in range(count):
            counters.success("http")
    except (OSError, Failure, ValueError) as error:
        counters.failure("http", f"{type(error).__name__}: {error}")


def udp_ok(rng, address, counters, mode):
    payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 1000)))
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2.0)
            for _ in range(3):
                sock.sendto(payload, address)
                try:
                    reply, _ = sock.recvfrom(65536)
                except socket.timeout:
                    continue
                if reply != payload:
                    raise Failure(f"reply of {len(reply)} bytes for {len(payload)}")
                counters.success("udp")
                return
            raise Failure("no reply in three tries")
    except (OSError, Failure) as error:
        counters.failure("udp", f"{type(error).__name__}: {error}")


# ---------------------------------------------------------------------------------------------------------
# Abusive clients: outcomes are tallied, never failures (the servers' survival and figures are the test)

def slow_send(sock, data, interval, limit):
    deadline = time.monotonic() + limit
    for byte in data:
        if time.monotonic() >= deadline:
            return
        sock.sendall(bytes([byte]))
        time.sleep(interval)


def echo_abuse(rng, address, counters, mode):
    kind = rng.choice(["oversized line", "reset mid-request", "reset mid-response", "slowloris",
                       "connect-and-silence", "garbage"])

    def run():
        with connect(address, timeout=SERVER_TIMEOUT + 5) as sock:
            if kind == "oversized line":
                sock.sendall(b"x" * (100 * 1024))
                sock.sendall(b"\n")
                read_until_closed(sock)
            elif kind == "reset mid-request":
                sock.sendall(b"half a li")
                reset(sock)
            elif kind == "reset mid-response":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.settimeout(1.0)
                try:
                    sock.sendall((b"y" * 1023 + b"\n") * 2048)
                except socket.timeout:
                    pass
                reset(sock)
            elif kind == "slowloris":
                slow_send(sock, b"slow" * 100, 0.1, SERVER_TIMEOUT + 1.5)
                reset(sock)
            elif kind == "connect-and-silence":
                read_until_closed(sock)
            else:
                junk = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096)))
                sock.sendall(junk)
                sock.shutdown(socket.SHUT_WR)
                read_until_closed(sock)

    counters.abused("echo " + kind, outcome_of(run))


def http_abuse(rng, address, counters, mode):
    kind = rng.choice(["slowloris", "garbage", "reset mid-request", "reset mid-response", "half-close mid-head",
                       "oversized request line", "oversized headers", "connect-and-silence"])

    def run():
        with connect(address, timeout=SERVER_TIMEOUT + 5) as sock:
            if kind == "slowloris":
                sock.sendall(b"GET /small.txt HTTP/1.1\r\nHost: soak\r\n")
                slow_send(sock, b"X-Slow: " + b"s" * 100, 0.1, SERVER_TIMEOUT + 1.5)
                read_until_closed(sock)
            elif kind == "garbage":
                sock.sendall(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096))) + b"\r\n\r\n")
                read_until_closed(sock)
            elif kind == "reset mid-request":
                sock.sendall(b"GET /small.txt HTTP/1.1\r\nHo")
                reset(sock)
            elif kind == "reset mid-response":
                sock.sendall(b"GET /large.bin HTTP/1.1\r\nHost: soak\r\n\r\n")
                sock.recv(8192)
                reset(sock)
            elif kind == "half-close mid-head":
                sock.sendall(b"GET /small.txt HTTP/1.1\r\nHost: so")
                sock.shutdown(socket.SHUT_WR)
                read_until_closed(sock)
            elif kind == "oversized request line":
                sock.sendall(b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: soak\r\n\r\n")
                read_until_closed(sock)
            elif kind == "oversized headers":
                sock.sendall(b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(200)) + b"\r\n")
                read_until_closed(sock)
            else:
                read_until_closed(sock)

    counters.abused("http " + kind, outcome_of(run))


def udp_abuse(rng, address, counters, mode):
    kind = rng.choice(["oversized datagram", "garbage datagram", "empty datagram"])

    def run():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(1.0)
            if kind == "oversized datagram":
                payload = bytes(rng.getrandbits(8) for _ in range(60000))
            elif kind == "garbage datagram":
                payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 2000)))
            else:
                payload = b""
            sock.sendto(payload, address)
            reply, _ = sock.recvfrom(65536)
            if kind == "oversized datagram" and reply != payload[:8192]:
                raise OSError("truncated reply is not the first 8192 bytes")

    counters.abused("udp " + kind, outcome_of(run))


def flood(address, counters, mode, stop):
    """Opens up to FLOOD_CONNECTIONS connections at once; holds them FLOOD_HOLD s (sync: closes at once)."""
    held = []
    window = FLOODS.begin()
    try:
        for _ in range(FLOOD_CONNECTIONS):
            if stop.is_set():
                break
            try:
                sock = socket.create_connection(address, timeout=1.0)
            except OSError:
                counters.abused("flood connect", "refused or timed out")
                continue
            if mode == "sync":
                sock.close()
                counters.abused("flood connect", "connected, closed at once")
            else:
                held.append(sock)
        if held:
            counters.abused("flood", f"held {len(held) // 50 * 50}+ connections")
            stop.wait(FLOOD_HOLD)
    finally:
        for sock in held:
            sock.close()
        FLOODS.end(window)


def burst(server, counters, count=8):
    """`count` requests sent at once, their replies read one connection after the other (so that sync mode,
    which serves one connection until it closes, answers them too)."""
    kind = f"{server.service} warm-up burst"
    try:
        if server.service == "udp-echo":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(5.0)
                for index in range(count):
                    sock.sendto(b"burst %d" % index, server.address)
                replies = {sock.recvfrom(65536)[0] for _ in range(count)}
                if replies != {b"burst %d" % index for index in range(count)}:
                    raise Failure(f"replies {sorted(replies)}")
            counters.success(kind)
            return
        sockets = [connect(server.address) for _ in range(count)]
        try:
            for sock in sockets:
                if server.service == "http":
                    sock.sendall(b"GET /small.txt HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
                else:
                    sock.sendall(b"burst\n")
                    sock.shutdown(socket.SHUT_WR)
            for sock in sockets:
                reply = read_until_closed(sock)
                expected = SMALL_BODY if server.service == "http" else b"burst\n"
                if not reply.endswith(expected):
                    raise Failure(f"reply {reply[:80]!r}")
        finally:
            for sock in sockets:
                sock.close()
        counters.success(kind)
    except (OSError, Failure) as error:
        counters.failure(kind, f"{type(error).__name__}: {error}")


# ---------------------------------------------------------------------------------------------------------
# One mode

def worker(function, server, counters, mode, deadline, seed):
    rng = random.Random(seed)
    for _ in range(MAX_ITERATIONS):
        if time.monotonic() >= deadline or not server.alive():
            return
        function(rng, server.address, counters, mode)


def flooder(server, counters, mode, deadline, stop):
    """Floods `server` from the start of the load, then every 2 s after the last flood ended, so that every
    third of the run has floods."""
    for _ in range(MAX_ITERATIONS):
        if time.monotonic() >= deadline or stop.is_set():
            return
        flood(server.address, counters, mode, stop)
        stop.wait(2.0)


def sampler(servers, deadline, stop):
    while not stop.is_set() and time.monotonic() < deadline:
        now = time.monotonic()
        for server in servers:
            figures = server.figures()
            if figures is not None:
                server.samples.append((now,) + figures)
        stop.wait(SAMPLE_INTERVAL)


def trend(samples, column, tolerance):
    """(largest of the first third, median of the last third, limit, grew?)"""
    values = [sample[column] for sample in samples]
    third = max(len(values) // 3, 1)
    first, last = max(values[:third]), statistics.median(values[-third:])
    relative, absolute = tolerance
    limit = first * (1 + relative) + absolute
    return first, last, limit, last > limit


def run_mode(demo, mode, seconds, workdir, root, seed, strict):
    print(f"== {mode}: {seconds:.0f} s", flush=True)
    counters = Counters()
    servers, problems, rows = [], [], []
    try:
        for service in ("http", "echo", "udp-echo"):
            try:
                servers.append(Server(demo, service, mode, workdir, root))
            except Failure as error:
                if service == "udp-echo" and getattr(error, "unsupported", False):
                    print(f"   udp-echo has no --mode {mode}: skipped")
                    continue
                raise
        by_service = {server.service: server for server in servers}

        # Warm-up: well-behaved requests, one at a time and then eight at once (a pool starts its workers as
        # requests queue up), then the idle figures the end of the run must come back to.
        rng = random.Random(seed)
        for _ in range(3):
            if "http" in by_service:
                http_ok(rng, by_service["http"].address, counters, mode)
            if "echo" in by_service:
                echo_ok(rng, by_service["echo"].address, counters, mode)
            if "udp-echo" in by_service:
                udp_ok(rng, by_service["udp-echo"].address, counters, mode)
        for server in servers:
            burst(server, counters)
        baselines = {server.name: idle_figures(server) for server in servers}

        deadline = time.monotonic() + seconds
        stop = threading.Event()
        plan = []
        holders = 1 if mode == "sync" else 2      # abusers that may hold a connection, per TCP service
        if "http" in by_service:
            plan += [(http_ok, by_service["http"])] * 3 + [(http_abuse, by_service["http"])] * holders
        if "echo" in by_service:
            plan += [(echo_ok, by_service["echo"])] * 3 + [(echo_abuse, by_service["echo"])] * holders
        if "udp-echo" in by_service:
            plan += [(udp_ok, by_service["udp-echo"]), (udp_abuse, by_service["udp-echo"])]
        threads = [threading.Thread(target=worker, args=(function, server, counters, mode, deadline, seed + index))
                   for index, (function, server) in enumerate(plan)]
        threads += [threading.Thread(target=flooder, args=(server, counters, mode, deadline, stop))
                    for server in servers if server.service != "udp-echo"]
        monitor = threading.Thread(target=sampler, args=(servers, deadline, stop))
        for thread in threads + [monitor]:
            thread.start()
        for thread in threads:
            # Each client operation is bounded by its socket timeouts (at most ~CLIENT_TIMEOUT s).
            thread.join(timeout=seconds + 4 * CLIENT_TIMEOUT)
            if thread.is_alive():
                problems.append("a client thread did not finish")
        stop.set()
        monitor.join(timeout=10)

        for server in servers:
            baseline = baselines[server.name]
            if not server.alive():
                problems.append(f"{server.name} died (status {server.process.returncode}): {server.stderr_tail()}")
                continue
            end = settled_to(server, baseline)
            row = {"name": server.name, "baseline": baseline, "end": end, "samples": len(server.samples)}
            if baseline is None or end is None:
                problems.append(f"{server.name}: no figures")
                continue
            if not back_to_idle(server, end, baseline):
                problems.append(f"{server.name}: idle after the load with {end[2]} descriptors, {end[3]} threads, "
                                f"{end[4]} children; before it {baseline[2]}, {baseline[3]}, {baseline[4]}")
            # RSS over the whole run; descriptors and threads between floods (a flood fills them to the limit by
            # design, and what it leaves behind is what the idle check above catches).
            quiet = [sample for sample in server.samples if not FLOODS.overlaps(sample[0], sample[0])]
            if len(server.samples) < 6:
                problems.append(f"{server.name}: only {len(server.samples)} samples")
            for label, column, tolerance, samples in (("RSS", 1, RSS_TOLERANCE, server.samples),
                                                      ("descriptors", 3, (0, FD_TOLERANCE), quiet),
                                                      ("threads", 4, (0, THREAD_TOLERANCE), quiet)):
                if len(samples) < 6:
                    continue
                first, last, limit, grew = trend(samples, column, tolerance)
                row[label] = (first, last)
                if grew:
                    problems.append(f"{server.name}: {label} grew: last third median {last:.0f}, "
                                    f"first third max {first:.0f}, limit {limit:.0f}")
            row["peak"] = max([sample[2] for sample in server.samples] + [end[1]])
            row["max fds"] = max([sample[3] for sample in server.samples] + [end[2]])
            row["max threads"] = max([sample[4] for sample in server.samples] + [end[3]])
            rows.append(row)
    finally:
        for server in servers:
            status = server.stop()
            if status != 0:
                problems.append(f"{server.name}: exit status {status} after SIGTERM (expected 0): {server.stderr_tail()}")

    failures = sum(counters.failed.values())
    if failures:
        problems.append(f"{failures} well-behaved requests failed: " + "; ".join(counters.examples))
    if strict and counters.known_issues:
        problems.append("known issues occurred (--strict): "
                        + "; ".join(f"{kind}: {issue} x{count}" for (kind, issue), count in counters.known_issues.items()))
    report(mode, counters, rows, problems)
    return problems, counters, rows


def report(mode, counters, rows, problems):
    served = sum(counters.ok.values())
    print(f"   well-behaved requests served: {served} ("
          + ", ".join(f"{kind} {count}" for kind, count in sorted(counters.ok.items())) + ")")
    abuse_total = sum(counters.abuse.values())
    by_kind = {}
    for (kind, outcome), count in counters.abuse.items():
        by_kind.setdefault(kind, []).append(f"{outcome} {count}")
    print(f"   abusive attempts: {abuse_total}")
    for kind in sorted(by_kind):
        print(f"     {kind}: " + ", ".join(sorted(by_kind[kind])))
    if counters.failed:
        print("   well-behaved failures: " + ", ".join(f"{kind} ({reason}) {count}"
                                                     for (kind, reason), count in sorted(counters.failed.items())))
    else:
        print("   well-behaved failures: 0")
    for (kind, issue), count in sorted(counters.known_issues.items()):
        print(f"   KNOWN ISSUE: {kind}: {issue}: {count}")
    for row in rows:
        base, end = row["baseline"], row["end"]
        rss = row.get("RSS")
        rss_text = f"RSS first-third max {rss[0] / 1024:.1f} MiB, last-third median {rss[1] / 1024:.1f} MiB" if rss else "RSS ?"
        print(f"   {row['name']:<16} {rss_text}, peak {row['peak'] / 1024:.1f} MiB; "
              f"descriptors {base[2]} -> max {row['max fds']} -> {end[2]}; threads {base[3]} -> max {row['max threads']} "
              f"-> {end[3]}; children left {end[4]}")
    for problem in problems:
        print(f"   PROBLEM: {problem}")


def print_summary(summary, seconds):
    """One Markdown table of the run: a row per mode, the figures of each server in it."""
    print(f"\nsummary ({seconds:.0f} s per mode; RSS: first-third max -> last-third median, peak; "
          "descriptors and threads: idle -> max -> after the load)\n")
    print("| mode | well-behaved ok / failed | abusive | known issues | server | RSS MiB | descriptors | threads "
          "| children left |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for mode, counters, rows, problems in summary:
        ok, failed = sum(counters.ok.values()), sum(counters.failed.values())
        abuse, known = sum(counters.abuse.values()), sum(counters.known_issues.values())
        for index, row in enumerate(rows):
            rss = row.get("RSS", (0, 0))
            base, end = row["baseline"], row["end"]
            lead = f"| {mode} | {ok} / {failed} | {abuse} | {known} " if index == 0 else "| | | | "
            print(lead + f"| {row['name'].split('/')[0]} | {rss[0] / 1024:.1f} -> {rss[1] / 1024:.1f}, "
                  f"{row['peak'] / 1024:.1f} | {base[2]} -> {row['max fds']} -> {end[2]} "
                  f"| {base[3]} -> {row['max threads']} -> {end[3]} | {end[4]} |")


def demo_modes(demo):
    """The --mode values the demo's help lists, in the order of the known ones."""
    known = ["sync", "threading", "forking", "pool", "event", "async"]
    help_text = subprocess.run([demo, "echo", "--help"], capture_output=True, text=True, timeout=30).stdout
    help_text = " ".join(help_text.split())     # the help is wrapped at the terminal width
    return [mode for mode in known if f"{mode} (" in help_text or f"'{mode}'" in help_text] or known[:5]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demo", required=True, help="path to a (release) socketserver-demo")
    parser.add_argument("--seconds", type=float, default=60, help="load per mode (default 60)")
    parser.add_argument("--modes", help="comma-separated subset of the demo's modes")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--strict", action="store_true", help="known issues fail the run too")
    options = parser.parse_args()

    # Floods need descriptors on this side too: raise the soft limit as far as the hard one allows.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * FLOOD_CONNECTIONS + 256
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted, hard))
    modes = demo_modes(options.demo)
    if options.modes:
        wanted = options.modes.split(",")
        modes = [mode for mode in modes if mode in wanted]
    workdir = tempfile.mkdtemp(prefix="socketserver-soak.")
    all_problems = {}
    summary = []
    try:
        root = os.path.join(workdir, "root")
        os.makedirs(os.path.join(root, "dir"))
        with open(os.path.join(root, "small.txt"), "wb") as small:
            small.write(SMALL_BODY)
        for name in ("a.txt", "b.txt"):
            with open(os.path.join(root, "dir", name), "wb") as listed:
                listed.write(b"listed\n")
        with open(os.path.join(root, "large.bin"), "wb") as large:
            large.write(bytes(range(256)) * (LARGE_SIZE // 256))
        print(f"soak: modes {', '.join(modes)}; {options.seconds:.0f} s each; servers limited to "
              f"{SERVER_FD_LIMIT} descriptors, --timeout {SERVER_TIMEOUT}", flush=True)
        for index, mode in enumerate(modes):
            try:
                problems, counters, rows = run_mode(options.demo, mode, options.seconds, workdir, root,
                                                    options.seed + 100 * index, options.strict)
                summary.append((mode, counters, rows, problems))
            except Failure as error:
                problems = [str(error)]
                print(f"   PROBLEM: {error}")
            if problems:
                all_problems[mode] = problems
        print_summary(summary, options.seconds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if all_problems:
        print(f"soak FAILED in: {', '.join(all_problems)}", file=sys.stderr)
        return 1
    print(f"soak passed: {', '.join(modes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
