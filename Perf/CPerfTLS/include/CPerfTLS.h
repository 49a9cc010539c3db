/* The perf harness's TLS client (OpenSSL 3): one non-blocking HTTPS request per connection, driven from the
   load generator's epoll loop. Used only by the TLS workloads (tls-connect, tls-bulk, tls-idle). */
#ifndef C_PERF_TLS_H
#define C_PERF_TLS_H
#include <stddef.h>
#include <stdint.h>

/* What perf_tls_step asks the caller to do next. */
enum {
    PERF_TLS_FAILED = -1,     /* handshake or transfer failed, or the response was not a 200 with Content-Length */
    PERF_TLS_AGAIN = 0,       /* made progress and may have more buffered: call again without waiting */
    PERF_TLS_WANT_READ = 1,   /* wait until the socket is readable */
    PERF_TLS_WANT_WRITE = 2,  /* wait until the socket is writable */
    PERF_TLS_COMPLETE = 3     /* the whole response (head and Content-Length body bytes) is in */
};

typedef struct perf_tls_client perf_tls_client;
typedef struct perf_tls_connection perf_tls_connection;

/* A client context trusting `ca_file` (PEM), verifying the server's certificate, TLS 1.2 or 1.3, with no session
   cache and no tickets, so that every connection makes a full handshake. NULL on failure. */
perf_tls_client *perf_tls_client_new(const char *ca_file);
void perf_tls_client_free(perf_tls_client *client);

/* A TLS client on the connected non-blocking socket `fd` (not owned) that will send `request` (copied) once the
   handshake is done. NULL on failure. */
perf_tls_connection *perf_tls_connection_new(perf_tls_client *client, int fd, const char *request, size_t length);

/* Drives handshake, request and response as far as the socket allows. Adds the response body bytes that arrived to
   *body_bytes. */
int perf_tls_step(perf_tls_connection *connection, uint64_t *body_bytes);

/* Starts the next request on the same (keep-alive) connection after PERF_TLS_COMPLETE. */
void perf_tls_restart(perf_tls_connection *connection);

/* Whether the handshake has completed. */
int perf_tls_handshake_done(const perf_tls_connection *connection);

/* Sends close_notify (once, without waiting for the peer's) and frees the session; the caller closes fd. */
void perf_tls_connection_free(perf_tls_connection *connection);
#endif
