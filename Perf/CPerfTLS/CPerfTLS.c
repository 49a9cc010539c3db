/* The perf harness's TLS client: see include/CPerfTLS.h. */
#define _GNU_SOURCE
#include "CPerfTLS.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct perf_tls_client {
    SSL_CTX *context;
};

struct perf_tls_connection {
    SSL *ssl;
    char *request;
    size_t request_length;
    size_t request_sent;
    int handshake_done;
    /* The response head so far (until the blank line), then the body bytes still to come. */
    char head[8192];
    size_t head_length;
    int64_t body_remaining; /* -1 while the head is incomplete */
};

perf_tls_client *perf_tls_client_new(const char *ca_file) {
    SSL_CTX *context = SSL_CTX_new(TLS_client_method());
    if (context == NULL) return NULL;
    SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
    SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(context, SSL_OP_NO_TICKET);
    SSL_CTX_set_verify(context, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_load_verify_locations(context, ca_file, NULL) != 1) {
        SSL_CTX_free(context);
        return NULL;
    }
    perf_tls_client *client = calloc(1, sizeof *client);
    if (client == NULL) {
        SSL_CTX_free(context);
        return NULL;
    }
    client->context = context;
    return client;
}

void perf_tls_client_free(perf_tls_client *client) {
    if (client == NULL) return;
    SSL_CTX_free(client->context);
    free(client);
}

perf_tls_connection *perf_tls_connection_new(perf_tls_client *client, int fd, const char *request, size_t length) {
    perf_tls_connection *connection = calloc(1, sizeof *connection);
    if (connection == NULL) return NULL;
    connection->ssl = SSL_new(client->context);
    connection->request = malloc(length);
    if (connection->ssl == NULL || connection->request == NULL || SSL_set_fd(connection->ssl, fd) != 1) {
        perf_tls_connection_free(connection);
        return NULL;
    }
    SSL_set_tlsext_host_name(connection->ssl, "localhost");
    SSL_set_connect_state(connection->ssl);
    memcpy(connection->request, request, length);
    connection->request_length = length;
    connection->body_remaining = -1;
    return connection;
}

void perf_tls_restart(perf_tls_connection *connection) {
    connection->request_sent = 0;
    connection->head_length = 0;
    connection->body_remaining = -1;
}

int perf_tls_handshake_done(const perf_tls_connection *connection) { return connection->handshake_done; }

void perf_tls_connection_free(perf_tls_connection *connection) {
    if (connection == NULL) return;
    if (connection->ssl != NULL) {
        if (connection->handshake_done) {
            SSL_set_quiet_shutdown(connection->ssl, 0);
            (void)SSL_shutdown(connection->ssl);
        }
        SSL_free(connection->ssl);
    }
    free(connection->request);
    free(connection);
    ERR_clear_error();
}

/* The wait an OpenSSL call that returned `status` asks for, or PERF_TLS_FAILED. */
static int wait_for(perf_tls_connection *connection, int status) {
    switch (SSL_get_error(connection->ssl, status)) {
    case SSL_ERROR_WANT_READ: return PERF_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE: return PERF_TLS_WANT_WRITE;
    default: ERR_clear_error(); return PERF_TLS_FAILED;
    }
}

/* Parses a complete head: 1 when it is a 200 with a Content-Length (body_remaining set), 0 otherwise. */
static int parse_head(perf_tls_connection *connection, size_t head_end) {
    connection->head[head_end] = '\0';
    if (strncmp(connection->head, "HTTP/1.", 7) != 0 || strncmp(connection->head + 8, " 200", 4) != 0) return 0;
    const char *line = strcasestr(connection->head, "\r\ncontent-length:");
    if (line == NULL) return 0;
    char *end = NULL;
    long long length = strtoll(line + 17, &end, 10);
    if (end == line + 17 || length < 0) return 0;
    connection->body_remaining = length;
    return 1;
}

int perf_tls_step(perf_tls_connection *connection, uint64_t *body_bytes) {
    if (!connection->handshake_done) {
        int status = SSL_do_handshake(connection->ssl);
        if (status != 1) return wait_for(connection, status);
        connection->handshake_done = 1;
    }
    while (connection->request_sent < connection->request_length) {
        size_t written = 0;
        int status = SSL_write_ex(connection->ssl, connection->request + connection->request_sent,
                                  connection->request_length - connection->request_sent, &written);
        if (status != 1) return wait_for(connection, (int)status);
        connection->request_sent += written;
    }
    /* Read at most 4 MiB per call, so that a bulk transfer returns to the caller's clock. */
    static __thread char buffer[65536];
    size_t budget = 4u << 20;
    while (budget > 0) {
        size_t got = 0;
        int status = SSL_read_ex(connection->ssl, buffer, sizeof buffer, &got);
        if (status != 1) return wait_for(connection, status);
        budget = got > budget ? 0 : budget - got;
        size_t offset = 0;
        if (connection->body_remaining < 0) {
            size_t room = sizeof connection->head - 1 - connection->head_length;
            size_t take = got < room ? got : room;
            memcpy(connection->head + connection->head_length, buffer, take);
            size_t before = connection->head_length;
            connection->head_length += take;
            connection->head[connection->head_length] = '\0';
            char *blank = strstr(connection->head, "\r\n\r\n");
            if (blank == NULL) {
                if (take < got) return PERF_TLS_FAILED; /* a head larger than 8 KiB */
                continue;
            }
            size_t head_end = (size_t)(blank - connection->head) + 4;
            if (!parse_head(connection, head_end - 2)) return PERF_TLS_FAILED;
            offset = head_end - before;
        }
        uint64_t body = got - offset;
        if ((int64_t)body > connection->body_remaining) return PERF_TLS_FAILED; /* more than Content-Length */
        connection->body_remaining -= (int64_t)body;
        *body_bytes += body;
        if (connection->body_remaining == 0) return PERF_TLS_COMPLETE;
    }
    return PERF_TLS_AGAIN;
}
