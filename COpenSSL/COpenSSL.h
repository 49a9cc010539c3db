// The system OpenSSL 3 (Debian's libssl-dev) as one Swift module, for SocketServerTLS only.
#ifndef COPENSSL_H
#define COPENSSL_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#endif
