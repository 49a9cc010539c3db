/* Process per request, the design of ForkingMode (and Python's ForkingMixIn): the parent accepts and
 * forks a child per connection, which echoes until the client closes and exits; the parent reaps
 * finished children (waitpid WNOHANG) after each request, as Python's collect_children does. With --udp,
 * the parent receives each datagram and a forked child sends the echo back. The floor for `forking`. */
#include "peer_common.h"

#include <sys/wait.h>

static volatile sig_atomic_t stopping = 0;

static void on_signal(int signal_number) {
    (void)signal_number;
    stopping = 1;
    peer_wake_listener();
}

static void reap_finished(void) {
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
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
            if (received < 0) continue;
            pid_t child = fork();
            if (child == 0) {
                sendto(listener, buffer, (size_t)received, 0, (struct sockaddr *)&sender, length);
                _exit(0);
            }
            if (child < 0) sendto(listener, buffer, (size_t)received, 0, (struct sockaddr *)&sender, length);
            reap_finished();
            continue;
        }
        int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        pid_t child = fork();
        if (child == 0) {
            close(listener);
            peer_echo_stream(fd, buffer, sizeof buffer, &stopping);
            close(fd);
            _exit(0);
        }
        if (child < 0) peer_echo_stream(fd, buffer, sizeof buffer, &stopping); /* no process left: inline */
        close(fd);
        reap_finished();
    }
    return 0;
}
