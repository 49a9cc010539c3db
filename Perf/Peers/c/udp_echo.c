/* UDP echo on a raw libevent event: each datagram goes straight back to its sender. */
#include "peer_common.h"

#include <event2/event.h>

static struct event_base *base;

static void on_readable(evutil_socket_t fd, short what, void *context) {
    (void)what, (void)context;
    char buffer[65536];
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage sender;
        socklen_t length = sizeof sender;
        ssize_t received = recvfrom(fd, buffer, sizeof buffer, MSG_DONTWAIT, (struct sockaddr *)&sender, &length);
        if (received < 0) return;
        sendto(fd, buffer, (size_t)received, MSG_DONTWAIT, (struct sockaddr *)&sender, length);
    }
}

static void on_signal(evutil_socket_t signal_number, short what, void *context) {
    (void)signal_number, (void)what, (void)context;
    event_base_loopexit(base, NULL);
}

int main(int argc, char **argv) {
    struct peer_options options = peer_parse(argc, argv);
    base = event_base_new();
    int fd = peer_bind(options, SOCK_DGRAM);
    struct event *readable = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, NULL);
    struct event *terminate = evsignal_new(base, SIGTERM, on_signal, NULL);
    struct event *interrupt = evsignal_new(base, SIGINT, on_signal, NULL);
    if (base == NULL || readable == NULL || terminate == NULL || interrupt == NULL) return 1;
    event_add(readable, NULL);
    event_add(terminate, NULL);
    event_add(interrupt, NULL);
    peer_announce(fd);
    event_base_dispatch(base);
    return 0;
}
