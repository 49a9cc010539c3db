/* Shared by the C peers: argument parsing, the "listening on ADDRESS" contract, listening sockets.
 * Each peer takes `--port N` (0 picks a free port) and `--host H` (default 127.0.0.1); the sequential,
 * thread-per-connection and process-per-connection peers also `--udp` (a datagram echo of the same design). */
#define _GNU_SOURCE
#ifndef PEER_COMMON_H
#define PEER_COMMON_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PEER_BACKLOG 4096 /* the same as SocketServer's default (SOMAXCONN) */

struct peer_options {
    const char *host;
    int port;
    int udp; /* --udp: serve datagrams (the peers that offer both) */
};

static struct peer_options peer_parse(int argc, char **argv) {
    struct peer_options options = {"127.0.0.1", 0, 0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            options.port = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            options.host = argv[++i];
        } else if (strcmp(argv[i], "--udp") == 0) {
            options.udp = 1;
        } else {
            fprintf(stderr, "usage: %s [--host H] [--port N] [--udp]\n", argv[0]);
            exit(2);
        }
    }
    return options;
}

/* The bound socket, so that a stop signal can wake a blocked accept or recvfrom (see peer_wake_listener). */
static int peer_listener = -1;

/* Binds (and for stream sockets listens on) host:port; exits with a message on failure. */
static int peer_bind(struct peer_options options, int type) {
    struct sockaddr_in address;
    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_port = htons((unsigned short)options.port);
    if (inet_pton(AF_INET, options.host, &address.sin_addr) != 1) {
        fprintf(stderr, "bad host %s\n", options.host);
        exit(2);
    }
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&address, sizeof address) != 0 ||
        (type == SOCK_STREAM && listen(fd, PEER_BACKLOG) != 0)) {
        perror("bind/listen");
        exit(1);
    }
    peer_listener = fd;
    return fd;
}

/* From a signal handler: shuts the bound socket down, so that an accept or recvfrom blocked on it, or about
 * to block (the signal may land between the loop's check of its flag and the call), returns at once. */
static inline void peer_wake_listener(void) {
    if (peer_listener >= 0) shutdown(peer_listener, SHUT_RDWR);
}

/* Prints the contract's first line, "listening on HOST:PORT", and flushes it. */
static void peer_announce(int fd) {
    struct sockaddr_in address;
    socklen_t length = sizeof address;
    getsockname(fd, (struct sockaddr *)&address, &length);
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &address.sin_addr, text, sizeof text);
    printf("listening on %s:%d\n", text, ntohs(address.sin_port));
    fflush(stdout);
}

/* Echoes a blocking stream connection until the peer closes it (or an error); does not close it.
 * `stopping` ends the loop at the next interrupted call. */
static inline void peer_echo_stream(int fd, char *buffer, size_t capacity, volatile sig_atomic_t *stopping) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (;;) {
        ssize_t received = recv(fd, buffer, capacity, 0);
        if (received < 0 && errno == EINTR && !*stopping) continue;
        if (received <= 0) return;
        ssize_t offset = 0;
        while (offset < received) {
            ssize_t written = send(fd, buffer + offset, (size_t)(received - offset), MSG_NOSIGNAL);
            if (written < 0 && errno == EINTR) continue;
            if (written < 0) return;
            offset += written;
        }
    }
}

/* Installs `handler` for SIGTERM and SIGINT without SA_RESTART (a blocked accept or recv returns EINTR)
 * and ignores SIGPIPE. */
static inline void peer_on_stop(void (*handler)(int)) {
    signal(SIGPIPE, SIG_IGN);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = handler;
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
}

#endif
