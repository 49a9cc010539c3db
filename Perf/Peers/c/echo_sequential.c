/* Sequential TCP echo: accept, echo until the client closes, close; one connection at a time.
 * The ceiling for a synchronous server. */
#include "peer_common.h"

static volatile sig_atomic_t stopping = 0;

static void on_signal(int signal_number) {
    (void)signal_number;
    stopping = 1;
}

int main(int argc, char **argv) {
    struct peer_options options = peer_parse(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal; /* no SA_RESTART: a blocked accept or recv returns EINTR */
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    int listener = peer_bind(options, SOCK_STREAM);
    peer_announce(listener);
    char buffer[65536];
    while (!stopping) {
        int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        for (;;) {
            ssize_t received = recv(fd, buffer, sizeof buffer, 0);
            if (received < 0 && errno == EINTR && !stopping) continue;
            if (received <= 0) break;
            ssize_t offset = 0;
            while (offset < received) {
                ssize_t written = send(fd, buffer + offset, (size_t)(received - offset), MSG_NOSIGNAL);
                if (written < 0 && errno == EINTR) continue;
                if (written < 0) break;
                offset += written;
            }
            if (offset < received) break;
        }
        close(fd);
    }
    return 0;
}
