import COpenSSL
import CSocketServerTLSShims
import Glibc
import SocketServer

/// One connection's TLS session: an OpenSSL `SSL` over the socket itself (blocking modes) or over two memory
/// BIOs that the connection's event loop fills and drains (event and async mode).
///
/// Owned by the connection's `Socket` (as its `transport`), freed with it. Used by one thread at a time: the
/// thread that runs the request, or the connection's loop; `info` is set once, when the handshake finishes.
final class TLSSession: EventStreamTransport, @unchecked Sendable {
    private let ssl: OpaquePointer
    /// Retained: the contexts' SNI and ALPN callbacks point at it.
    private let contexts: ContextSet
    let handshakeTimeout: Duration
    /// The memory BIOs (owned by `ssl`); nil over a socket.
    private let incoming: OpaquePointer?
    private let outgoing: OpaquePointer?
    /// The socket's descriptor, for the blocking handshake's `poll` and the final close_notify.
    private let descriptor: Int32
    private(set) var isEstablished = false
    private var isClosed = false
    /// What the handshake established; nil until it finished.
    private(set) var info: TLSConnectionInfo?

    /// A session reading and writing `descriptor` directly (blocking modes).
    init(socket descriptor: Int32, contexts: ContextSet, handshakeTimeout: Duration) throws {
        ERR_clear_error()
        guard let ssl = SSL_new(contexts.defaultContext) else {
            throw TLSError.fromQueue(.handshakeFailed, fallback: "SSL_new failed")
        }
        guard SSL_set_fd(ssl, descriptor) == 1 else {
            SSL_free(ssl)
            throw TLSError.fromQueue(.handshakeFailed, fallback: "SSL_set_fd failed")
        }
        SSL_set_accept_state(ssl)
        self.ssl = ssl
        self.contexts = contexts
        self.handshakeTimeout = handshakeTimeout
        self.incoming = nil
        self.outgoing = nil
        self.descriptor = descriptor
    }

    /// A session over memory BIOs (event and async mode): no I/O of its own.
    init(memoryFor descriptor: Int32, contexts: ContextSet, handshakeTimeout: Duration) throws {
        ERR_clear_error()
        guard let ssl = SSL_new(contexts.defaultContext) else {
            throw TLSError.fromQueue(.handshakeFailed, fallback: "SSL_new failed")
        }
        guard let incoming = BIO_new(BIO_s_mem()), let outgoing = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw TLSError.fromQueue(.handshakeFailed, fallback: "BIO_new failed")
        }
        CSocketServerTLS_bio_set_mem_eof_retry(incoming)
        CSocketServerTLS_bio_set_mem_eof_retry(outgoing)
        SSL_set_bio(ssl, incoming, outgoing)  // the session owns both from here
        SSL_set_accept_state(ssl)
        self.ssl = ssl
        self.contexts = contexts
        self.handshakeTimeout = handshakeTimeout
        self.incoming = incoming
        self.outgoing = outgoing
        self.descriptor = descriptor
    }

    deinit {
        SSL_free(ssl)
    }

    // MARK: - Blocking modes

    /// Runs the whole handshake on the (blocking) socket, non-blocking underneath and polled, so that it
    /// ends by `handshakeTimeout` whatever the client does (silence, one byte at a time).
    /// - Throws: `TLSError` (`.handshakeTimedOut`, `.handshakeFailed` with OpenSSL's reason).
    func handshake(on socket: Socket) throws {
        let wasNonBlocking = socket.isNonBlocking
        if !wasNonBlocking { try socket.setNonBlocking(true) }
        defer { if !wasNonBlocking { try? socket.setNonBlocking(false) } }
        let deadline = ContinuousClock.now.advanced(by: handshakeTimeout)
        while true {
            ERR_clear_error()
            let result = SSL_do_handshake(ssl)
            if result == 1 {
                established()
                return
            }
            let events: Int16
            switch SSL_get_error(ssl, result) {
            case SSL_ERROR_WANT_READ: events = Int16(POLLIN)
            case SSL_ERROR_WANT_WRITE: events = Int16(POLLOUT)
            default: throw handshakeFailure(result)
            }
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { throw handshakeTimedOut }
            var entry = pollfd(fd: descriptor, events: events, revents: 0)
            let milliseconds = Int32(clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1)
            let ready = poll(&entry, 1, milliseconds)
            if ready < 0 && errno != EINTR { throw TLSError(.handshakeFailed, "poll: \(String(cString: strerror(errno)))") }
        }
    }

    func receive(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard incoming == nil else { throw SocketError(operation: "SSL_read", code: EINVAL) }
        guard !buffer.isEmpty, !isClosed else { return 0 }
        while true {
            ERR_clear_error()
            let count = SSL_read(ssl, buffer.baseAddress, Int32(clamping: buffer.count))
            if count > 0 { return Int(count) }
            let code = errno
            switch SSL_get_error(ssl, count) {
            case SSL_ERROR_ZERO_RETURN:
                return 0
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                // A blocking socket only says "again" when its SO_RCVTIMEO (the handler's timeout) expired.
                throw SocketError(operation: "SSL_read", code: ETIMEDOUT)
            case SSL_ERROR_SYSCALL:
                if code == EINTR { continue }
                if code == 0 { return 0 }
                throw SocketError(operation: "SSL_read", code: code)
            default:
                throw TLSError.fromQueue(.protocolError, fallback: "SSL_read failed")
            }
        }
    }

    func send(_ bytes: UnsafeRawBufferPointer) throws -> Int {
        guard incoming == nil else { throw SocketError(operation: "SSL_write", code: EINVAL) }
        guard !bytes.isEmpty else { return 0 }
        while true {
            ERR_clear_error()
            let count = SSL_write(ssl, bytes.baseAddress, Int32(clamping: bytes.count))
            if count > 0 { return Int(count) }
            let code = errno
            switch SSL_get_error(ssl, count) {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                throw SocketError(operation: "SSL_write", code: ETIMEDOUT)
            case SSL_ERROR_SYSCALL:
                if code == EINTR { continue }
                throw SocketError(operation: "SSL_write", code: code == 0 ? EPIPE : code)
            default:
                throw TLSError.fromQueue(.protocolError, fallback: "SSL_write failed")
            }
        }
    }

    /// Sends close_notify once, never waiting: the socket goes non-blocking first (it is closed next).
    func shutdown() {
        guard incoming == nil, isEstablished, !isClosed else { return }
        isClosed = true
        let flags = fcntl(descriptor, F_GETFL)
        if flags >= 0 { _ = fcntl(descriptor, F_SETFL, flags | O_NONBLOCK) }
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        ERR_clear_error()
    }

    // MARK: - Event and async mode (memory BIOs)

    var handshakeTimedOut: any Error {
        TLSError(.handshakeTimedOut, "no handshake within \(handshakeTimeout)")
    }

    var hasPendingInput: Bool {
        guard let incoming else { return false }
        return BIO_ctrl_pending(incoming) > 0 || SSL_has_pending(ssl) == 1
    }

    func feed(_ received: UnsafeRawBufferPointer) throws {
        guard let incoming, !received.isEmpty else { return }
        let count = BIO_write(incoming, received.baseAddress, Int32(clamping: received.count))
        guard count == received.count else { throw TLSError(.protocolError, "out of memory for received records") }
    }

    func advanceHandshake() throws -> Bool {
        ERR_clear_error()
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            established()
            return true
        }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return false
        default: throw handshakeFailure(result)
        }
    }

    func decode(into buffer: UnsafeMutableRawBufferPointer) throws -> Int? {
        guard !buffer.isEmpty else { return nil }
        ERR_clear_error()
        let count = SSL_read(ssl, buffer.baseAddress, Int32(clamping: buffer.count))
        if count > 0 { return Int(count) }
        switch SSL_get_error(ssl, count) {
        case SSL_ERROR_ZERO_RETURN: return 0
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return nil
        default: throw TLSError.fromQueue(.protocolError, fallback: "SSL_read failed")
        }
    }

    func encode(_ plaintext: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < plaintext.count {
            ERR_clear_error()
            let rest = UnsafeRawBufferPointer(rebasing: plaintext[offset...])
            let count = SSL_write(ssl, rest.baseAddress, Int32(clamping: rest.count))
            guard count > 0 else { throw TLSError.fromQueue(.protocolError, fallback: "SSL_write failed") }
            offset += Int(count)
        }
    }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        ERR_clear_error()
    }

    var pendingOutputCount: Int {
        guard let outgoing else { return 0 }
        return Int(BIO_ctrl_pending(outgoing))
    }

    func takeOutput(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard let outgoing, !buffer.isEmpty else { return 0 }
        return max(Int(BIO_read(outgoing, buffer.baseAddress, Int32(clamping: buffer.count))), 0)
    }

    // MARK: - Internals

    /// Why a handshake stopped, from the error queue or `errno`.
    private func handshakeFailure(_ result: Int32) -> TLSError {
        let code = errno
        if SSL_get_error(ssl, result) == SSL_ERROR_SYSCALL {
            let queued = TLSError.fromQueue(.handshakeFailed, fallback: "")
            if !queued.reason.isEmpty { return queued }
            return TLSError(.handshakeFailed, code == 0 ? "the peer closed the connection" : String(cString: strerror(code)))
        }
        return TLSError.fromQueue(.handshakeFailed, fallback: "SSL_do_handshake failed")
    }

    /// Records what the handshake established.
    private func established() {
        isEstablished = true
        let version = SSL_get_version(ssl).map { String(cString: $0) } ?? "unknown"
        let cipher = SSL_get_current_cipher(ssl).flatMap { SSL_CIPHER_get_name($0) }.map { String(cString: $0) } ?? ""
        var alpnData: UnsafePointer<UInt8>?
        var alpnLength: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &alpnData, &alpnLength)
        let alpn = alpnData.map { String(decoding: UnsafeBufferPointer(start: $0, count: Int(alpnLength)), as: UTF8.self) }
        let serverName = SSL_get_servername(ssl, Int32(TLSEXT_NAMETYPE_host_name)).map { String(cString: $0) }
        var subject: String?
        var verification = TLSConnectionInfo.PeerVerification.noCertificate
        if let certificate = SSL_get1_peer_certificate(ssl) {
            defer { X509_free(certificate) }
            var text = [CChar](repeating: 0, count: 1024)
            if CSocketServerTLS_subject_rfc2253(certificate, &text, Int32(text.count)) >= 0 {
                subject = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            let result = SSL_get_verify_result(ssl)
            verification = result == X509_V_OK
                ? .verified : .failed(X509_verify_cert_error_string(result).map { String(cString: $0) } ?? "error \(result)")
        }
        info = TLSConnectionInfo(
            protocolVersion: version, cipher: cipher, alpnProtocol: alpn?.isEmpty == false ? alpn : nil,
            serverName: serverName, peerSubject: subject, peerVerification: verification)
    }
}
