#include "CSocketServerTLSShims.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <string.h>

uint64_t CSocketServerTLS_default_options(void) {
    return SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE
        | SSL_OP_IGNORE_UNEXPECTED_EOF;
}

uint64_t CSocketServerTLS_ctx_set_options(struct ssl_ctx_st *ctx, uint64_t options) {
    return SSL_CTX_set_options(ctx, options);
}

long CSocketServerTLS_ctx_set_default_mode(struct ssl_ctx_st *ctx) {
    return SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

int CSocketServerTLS_ctx_set_min_proto_version(struct ssl_ctx_st *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}

int CSocketServerTLS_ctx_set_max_proto_version(struct ssl_ctx_st *ctx, int version) {
    return (int)SSL_CTX_set_max_proto_version(ctx, version);
}

int CSocketServerTLS_ctx_add1_chain_cert(struct ssl_ctx_st *ctx, struct x509_st *certificate) {
    return (int)SSL_CTX_add1_chain_cert(ctx, certificate);
}

void CSocketServerTLS_ctx_set_servername_callback(
    struct ssl_ctx_st *ctx, int (*callback)(struct ssl_st *, int *, void *), void *argument) {
    SSL_CTX_set_tlsext_servername_callback(ctx, callback);
    SSL_CTX_set_tlsext_servername_arg(ctx, argument);
}

int CSocketServerTLS_tlsext_err_ok(void) { return SSL_TLSEXT_ERR_OK; }
int CSocketServerTLS_tlsext_err_noack(void) { return SSL_TLSEXT_ERR_NOACK; }
int CSocketServerTLS_tlsext_err_alert_fatal(void) { return SSL_TLSEXT_ERR_ALERT_FATAL; }

void CSocketServerTLS_bio_set_mem_eof_retry(struct bio_st *bio) {
    BIO_set_mem_eof_return(bio, -1);
}

long CSocketServerTLS_get_mode(struct ssl_st *ssl) { return (long)SSL_get_mode(ssl); }

long CSocketServerTLS_mode_release_buffers(void) { return SSL_MODE_RELEASE_BUFFERS; }

int CSocketServerTLS_subject_rfc2253(struct x509_st *certificate, char *buffer, int size) {
    if (size <= 0) return -1;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL) return -1;
    int result = -1;
    if (X509_NAME_print_ex(bio, X509_get_subject_name(certificate), 0, XN_FLAG_RFC2253) >= 0) {
        int length = BIO_read(bio, buffer, size - 1);
        if (length < 0) length = 0;
        buffer[length] = 0;
        result = length;
    }
    BIO_free(bio);
    return result;
}
