/* Thread per request, the design of ThreadingMode (and Python's ThreadingMixIn): the main thread accepts
 * and starts a detached thread per connection, which echoes until the client closes, then closes it. With
 * --udp, the main thread receives each datagram and a new thread sends the echo back. The floor for
 * `threading`. */
#include "peer_common.h"

#include <pthread.h>

static volatile sig_atomic_t stopping = 0;
static int listener;

static void on_signal(int signal_number) {
    (void)signal_number;
    stopping = 1;
    peer_wake_listener();
}

static void *serve_connection(void *argument) {
    int fd = (int)(intptr_t)argument;
    char buffer[65536];
    peer_echo_stream(fd, buffer, sizeof buffer, &stopping);
    close(fd);
    return NULL;
}

struct datagram {
    struct sockaddr_storage sender;
    socklen_t length;
    size_t size;
    char bytes[];
};

static void *serve_datagram(void *argument) {
    struct datagram *datagram = argument;
    sendto(listener, datagram->bytes, datagram->size, 0, (struct sockaddr *)&datagram->sender, datagram->length);
    free(datagram);
    return NULL;
}

static void start_thread(void *(*body)(void *), void *argument) {
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    if (pthread_create(&thread, &attributes, body, argument) != 0) body(argument); /* out of threads: inline */
    pthread_attr_destroy(&attributes);
}

int main(int argc, char **argv) {
    struct peer_options options = peer_parse(argc, argv);
    peer_on_stop(on_signal);
    listener = peer_bind(options, options.udp ? SOCK_DGRAM : SOCK_STREAM);
    peer_announce(listener);
    static char buffer[65536];
    while (!stopping) {
        if (options.udp) {
            struct sockaddr_storage sender;
            socklen_t length = sizeof sender;
            ssize_t received = recvfrom(listener, buffer, sizeof buffer, 0, (struct sockaddr *)&sender, &length);
            if (received < 0) continue;
            struct datagram *datagram = malloc(sizeof *datagram + (size_t)received);
            if (datagram == NULL) continue;
            datagram->sender = sender;
            datagram->length = length;
            datagram->size = (size_t)received;
            memcpy(datagram->bytes, buffer, (size_t)received);
            start_thread(serve_datagram, datagram);
            continue;
        }
        int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) start_thread(serve_connection, (void *)(intptr_t)fd);
    }
    return 0;
}
