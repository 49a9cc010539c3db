/* Sequential echo: accept, echo until the client closes, close; one connection at a time. With --udp, a
 * blocking recvfrom/sendto loop: one datagram at a time. The ceiling for a synchronous server. */
#include "peer_common.h"

static volatile sig_atomic_t stopping = 0;

static void on_signal(int signal_number) {
    (void)signal_number;
    stopping = 1;
    peer_wake_listener();
}

int main(int argc, char **argv) {
    struct peer_options options = peer_parse(argc, argv);
    peer_on_stop(on_signal);
    int listener = peer_bind(options, options.udp ? SOCK_DGRAM : SOCK_STREAM);
    peer_announce(listener);
    static char buffer[65536];
    while (!stopping) {
        if (options.udp) {
            struct sockaddr_storage sender;
            socklen_t length = sizeof sender;
            ssize_t received = recvfrom(listener, buffer, sizeof buffer, 0, (struct sockaddr *)&sender, &length);
            if (received >= 0) sendto(listener, buffer, (size_t)received, 0, (struct sockaddr *)&sender, length);
            continue;
        }
        int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        peer_echo_stream(fd, buffer, sizeof buffer, &stopping);
        close(fd);
    }
    return 0;
}
