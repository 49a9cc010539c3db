// OpenSSL's function-like macros, which Swift cannot import (SSL_OP_* are SSL_OP_BIT(n) expressions,
// SSL_CTX_set_mode and friends expand to SSL_CTX_ctrl calls), as real C functions and constants.
//
// Only compiler headers here, and OpenSSL's types as incomplete structs: Swift sees them as OpaquePointer,
// the same as through COpenSSL, and this module owns no system declaration.
#ifndef CSOCKETSERVERTLSSHIMS_H
#define CSOCKETSERVERTLSSHIMS_H

#include <stddef.h>
#include <stdint.h>

struct ssl_st;
struct ssl_ctx_st;
struct bio_st;
struct x509_st;

/// The options every context of SocketServerTLS sets: no compression, no renegotiation, the server's cipher
/// order, a missing close_notify read as end of input (SSL_OP_IGNORE_UNEXPECTED_EOF).
uint64_t CSocketServerTLS_default_options(void);

/// SSL_CTX_set_options(ctx, options); returns the options now set.
uint64_t CSocketServerTLS_ctx_set_options(struct ssl_ctx_st *ctx, uint64_t options);

/// SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER): idle connections
/// give their record buffers back, and a retried write may come from another address.
long CSocketServerTLS_ctx_set_default_mode(struct ssl_ctx_st *ctx);

/// SSL_CTX_set_min_proto_version / SSL_CTX_set_max_proto_version (0: no bound). Return 1 on success.
int CSocketServerTLS_ctx_set_min_proto_version(struct ssl_ctx_st *ctx, int version);
int CSocketServerTLS_ctx_set_max_proto_version(struct ssl_ctx_st *ctx, int version);

/// SSL_CTX_add1_chain_cert: adds an intermediate certificate (the context takes its own reference).
int CSocketServerTLS_ctx_add1_chain_cert(struct ssl_ctx_st *ctx, struct x509_st *certificate);

/// SSL_CTX_set_tlsext_servername_callback and its argument (SNI).
void CSocketServerTLS_ctx_set_servername_callback(
    struct ssl_ctx_st *ctx, int (*callback)(struct ssl_st *, int *, void *), void *argument);

/// SSL_TLSEXT_ERR_OK, SSL_TLSEXT_ERR_NOACK, SSL_TLSEXT_ERR_ALERT_FATAL, SSL_AD_UNRECOGNIZED_NAME.
int CSocketServerTLS_tlsext_err_ok(void);
int CSocketServerTLS_tlsext_err_noack(void);
int CSocketServerTLS_tlsext_err_alert_fatal(void);

/// BIO_set_mem_eof_return(bio, -1): an empty memory BIO reads as "retry", not end of file.
void CSocketServerTLS_bio_set_mem_eof_retry(struct bio_st *bio);

/// SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS ...) is set per context; this reads SSL_get_mode for tests.
long CSocketServerTLS_get_mode(struct ssl_st *ssl);

/// SSL_MODE_RELEASE_BUFFERS.
long CSocketServerTLS_mode_release_buffers(void);

/// The certificate's subject in RFC 2253 form ("CN=client,O=Example") into `buffer` (NUL-terminated, cut to
/// `size`); returns its length, or -1.
int CSocketServerTLS_subject_rfc2253(struct x509_st *certificate, char *buffer, int size);

#endif
