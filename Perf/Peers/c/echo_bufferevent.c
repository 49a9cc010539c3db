/* TCP echo on libevent bufferevents: what a typical libevent server looks like (one loop, one thread). */
#include "peer_common.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

static void on_read(struct bufferevent *connection, void *context) {
    (void)context;
    evbuffer_add_buffer(bufferevent_get_output(connection), bufferevent_get_input(connection));
}

static void on_event(struct bufferevent *connection, short what, void *context) {
    (void)context;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) bufferevent_free(connection);
}

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *address, int length,
                      void *context) {
    (void)address, (void)length, (void)context;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct bufferevent *connection =
        bufferevent_socket_new(evconnlistener_get_base(listener), fd, BEV_OPT_CLOSE_ON_FREE);
    if (connection == NULL) {
        close(fd);
        return;
    }
    bufferevent_setcb(connection, on_read, NULL, on_event, NULL);
    bufferevent_enable(connection, EV_READ);
}

static void on_signal(evutil_socket_t signal_number, short what, void *base) {
    (void)signal_number, (void)what;
    event_base_loopexit(base, NULL);
}

int main(int argc, char **argv) {
    struct peer_options options = peer_parse(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new();
    int fd = peer_bind(options, SOCK_STREAM);
    evutil_make_socket_nonblocking(fd);
    struct evconnlistener *listener =
        evconnlistener_new(base, on_accept, NULL, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    struct event *terminate = evsignal_new(base, SIGTERM, on_signal, base);
    struct event *interrupt = evsignal_new(base, SIGINT, on_signal, base);
    if (base == NULL || listener == NULL || terminate == NULL || interrupt == NULL) return 1;
    event_add(terminate, NULL);
    event_add(interrupt, NULL);
    peer_announce(fd);
    event_base_dispatch(base);
    evconnlistener_free(listener);
    event_free(terminate);
    event_free(interrupt);
    event_base_free(base);
    return 0;
}
