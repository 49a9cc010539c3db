/* TCP echo on raw libevent events with its own buffers: the ceiling of what libevent gives.
 * An idle connection costs one small struct and one event; bytes that the kernel did not take at once
 * are the only heap buffers, kept until EV_WRITE drains them. */
#include "peer_common.h"

#include <event2/event.h>
#include <fcntl.h>

struct connection {
    struct event *event;
    char *pending;        /* bytes not yet written, or NULL */
    size_t pending_start; /* first unwritten byte in pending */
    size_t pending_end;
};

static struct event_base *base;

static void close_connection(struct connection *connection) {
    evutil_socket_t fd = event_get_fd(connection->event);
    event_free(connection->event);
    close(fd);
    free(connection->pending);
    free(connection);
}

/* Writes what the kernel takes; keeps the rest. Returns -1 when the connection failed. */
static int flush_pending(struct connection *connection, int fd) {
    while (connection->pending_start < connection->pending_end) {
        ssize_t written = send(fd, connection->pending + connection->pending_start,
                               connection->pending_end - connection->pending_start, MSG_NOSIGNAL);
        if (written < 0) return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
        connection->pending_start += (size_t)written;
    }
    free(connection->pending);
    connection->pending = NULL;
    connection->pending_start = connection->pending_end = 0;
    return 0;
}

static void on_ready(evutil_socket_t fd, short what, void *context) {
    struct connection *connection = context;
    if (what & EV_WRITE) {
        if (flush_pending(connection, fd) < 0) return close_connection(connection);
        if (connection->pending != NULL) return; /* still blocked: keep waiting for EV_WRITE only */
        event_del(connection->event);
        event_assign(connection->event, base, fd, EV_READ | EV_PERSIST, on_ready, connection);
        event_add(connection->event, NULL);
        return;
    }
    char buffer[65536];
    ssize_t received = recv(fd, buffer, sizeof buffer, 0);
    if (received == 0 || (received < 0 && errno != EAGAIN && errno != EINTR)) return close_connection(connection);
    if (received < 0) return;
    ssize_t written = send(fd, buffer, (size_t)received, MSG_NOSIGNAL);
    if (written < 0 && errno != EAGAIN && errno != EINTR) return close_connection(connection);
    if (written < 0) written = 0;
    if (written == received) return;
    /* Back-pressure: keep the rest and stop reading until it is written. */
    size_t rest = (size_t)(received - written);
    connection->pending = malloc(rest);
    if (connection->pending == NULL) return close_connection(connection);
    memcpy(connection->pending, buffer + written, rest);
    connection->pending_start = 0;
    connection->pending_end = rest;
    event_del(connection->event);
    event_assign(connection->event, base, fd, EV_WRITE | EV_PERSIST, on_ready, connection);
    event_add(connection->event, NULL);
}

static void on_accept(evutil_socket_t listener, short what, void *context) {
    (void)what, (void)context;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct connection *connection = calloc(1, sizeof *connection);
        if (connection == NULL) {
            close(fd);
            continue;
        }
        connection->event = event_new(base, fd, EV_READ | EV_PERSIST, on_ready, connection);
        if (connection->event == NULL) {
            free(connection);
            close(fd);
            continue;
        }
        event_add(connection->event, NULL);
    }
}

static void on_signal(evutil_socket_t signal_number, short what, void *context) {
    (void)signal_number, (void)what, (void)context;
    event_base_loopexit(base, NULL);
}

int main(int argc, char **argv) {
    struct peer_options options = peer_parse(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    int fd = peer_bind(options, SOCK_STREAM);
    evutil_make_socket_nonblocking(fd);
    struct event *accepting = event_new(base, fd, EV_READ | EV_PERSIST, on_accept, NULL);
    struct event *terminate = evsignal_new(base, SIGTERM, on_signal, NULL);
    struct event *interrupt = evsignal_new(base, SIGINT, on_signal, NULL);
    if (base == NULL || accepting == NULL || terminate == NULL || interrupt == NULL) return 1;
    event_add(accepting, NULL);
    event_add(terminate, NULL);
    event_add(interrupt, NULL);
    peer_announce(fd);
    event_base_dispatch(base);
    return 0;
}
