import COpenSSL
import CSocketServerTLSShims

/// One generation of OpenSSL contexts: the default one and one per server name, all configured alike.
///
/// Immutable once built and safe to share (OpenSSL contexts are thread-safe for making sessions), so
/// `TLSContext` swaps whole sets on reload. Every session retains the set it came from: the contexts'
/// callbacks (SNI, ALPN) point at it, so it must outlive every handshake that may call them.
final class ContextSet: @unchecked Sendable {
    /// The default context.
    let defaultContext: OpaquePointer
    /// Lower-case host name (or `*.domain`) → context.
    private let named: [String: OpaquePointer]
    /// The ALPN list in wire form (length-prefixed names).
    private let alpnWire: [UInt8]

    /// Builds every context of `configuration`, reading its files now.
    /// - Throws: `TLSError.invalidCertificate` for a missing or bad file, a key that does not match, a wrong
    ///   password, a bad CA file.
    init(_ configuration: TLSConfiguration) throws {
        var wire: [UInt8] = []
        for name in configuration.alpn {
            let bytes = Array(name.utf8)
            guard !bytes.isEmpty, bytes.count < 256 else {
                throw TLSError(.invalidCertificate, "ALPN protocol name \"\(name)\" must be 1 to 255 bytes")
            }
            wire.append(UInt8(bytes.count))
            wire.append(contentsOf: bytes)
        }
        alpnWire = wire
        var made: [OpaquePointer] = []
        do {
            let main = try Self.makeContext(configuration.certificate, configuration)
            made.append(main)
            var named: [String: OpaquePointer] = [:]
            for (name, source) in configuration.serverNames {
                let context = try Self.makeContext(source, configuration)
                made.append(context)
                named[name.lowercased()] = context
            }
            defaultContext = main
            self.named = named
        } catch {
            for context in made { SSL_CTX_free(context) }
            throw error
        }
        let argument = Unmanaged.passUnretained(self).toOpaque()
        for context in [defaultContext] + Array(named.values) {
            if !named.isEmpty {
                CSocketServerTLS_ctx_set_servername_callback(context, serverNameCallback, argument)
            }
            if !alpnWire.isEmpty { SSL_CTX_set_alpn_select_cb(context, alpnCallback, argument) }
        }
    }

    deinit {
        SSL_CTX_free(defaultContext)
        for context in named.values { SSL_CTX_free(context) }
    }

    /// The context for `serverName`: an exact match, else `*.` plus everything after the first label.
    func context(for serverName: String) -> OpaquePointer? {
        let name = serverName.lowercased()
        if let exact = named[name] { return exact }
        if let dot = name.firstIndex(of: ".") { return named["*" + name[dot...]] }
        return nil
    }

    /// Picks the server's most preferred protocol that the client offered (`offered` in wire form); nil
    /// when none matches. The result points into `offered`.
    func selectALPN(_ offered: UnsafeBufferPointer<UInt8>) -> (UnsafePointer<UInt8>, UInt8)? {
        var serverIndex = 0
        while serverIndex < alpnWire.count {
            let length = Int(alpnWire[serverIndex])
            let wanted = alpnWire[(serverIndex + 1)..<min(serverIndex + 1 + length, alpnWire.count)]
            var clientIndex = 0
            while clientIndex < offered.count {
                let offeredLength = Int(offered[clientIndex])
                let start = clientIndex + 1
                let end = start + offeredLength
                guard end <= offered.count else { break }
                if offeredLength == length, offered[start..<end].elementsEqual(wanted), let base = offered.baseAddress {
                    return (base + start, UInt8(length))
                }
                clientIndex = end
            }
            serverIndex += 1 + length
        }
        return nil
    }

    /// A server context with `source`'s chain and key and the configuration's versions, options and
    /// client verification.
    private static func makeContext(_ source: TLSCertificateSource, _ configuration: TLSConfiguration) throws
        -> OpaquePointer
    {
        ERR_clear_error()
        guard let context = SSL_CTX_new(TLS_server_method()) else {
            throw TLSError.fromQueue(.invalidCertificate, fallback: "SSL_CTX_new failed")
        }
        do {
            _ = CSocketServerTLS_ctx_set_options(context, CSocketServerTLS_default_options())
            _ = CSocketServerTLS_ctx_set_default_mode(context)
            guard configuration.minimumVersion <= configuration.maximumVersion,
                CSocketServerTLS_ctx_set_min_proto_version(context, configuration.minimumVersion.rawValue) == 1,
                CSocketServerTLS_ctx_set_max_proto_version(context, configuration.maximumVersion.rawValue) == 1
            else {
                throw TLSError(.invalidCertificate, "invalid TLS version range")
            }
            let sessionContext: [UInt8] = Array("socketserver".utf8)
            _ = SSL_CTX_set_session_id_context(context, sessionContext, UInt32(sessionContext.count))
            try loadChainAndKey(source, into: context)
            try configureClientAuthentication(configuration.clientAuthentication, context)
            return context
        } catch {
            SSL_CTX_free(context)
            throw error
        }
    }

    private static func loadChainAndKey(_ source: TLSCertificateSource, into context: OpaquePointer) throws {
        let chain: [UInt8]
        let key: [UInt8]
        let password: String?
        let origin: String
        switch source {
        case .files(let chainPath, let keyPath, let passwordFile):
            chain = try PEMFile.read(chainPath)
            key = try PEMFile.read(keyPath)
            password = try passwordFile.map(PEMFile.readPassword)
            origin = "\(chainPath), \(keyPath)"
        case .pem(let chainText, let keyText, let passwordText):
            chain = Array(chainText.utf8)
            key = Array(keyText.utf8)
            password = passwordText
            origin = "PEM data"
        }
        let certificates = try readCertificates(chain, origin: origin)
        defer { for certificate in certificates { X509_free(certificate) } }
        guard let leaf = certificates.first else {
            throw TLSError(.invalidCertificate, "\(origin): no certificate in the chain")
        }
        guard SSL_CTX_use_certificate(context, leaf) == 1 else {
            throw TLSError.fromQueue(.invalidCertificate, fallback: "\(origin): unusable certificate")
        }
        for intermediate in certificates.dropFirst() {
            guard CSocketServerTLS_ctx_add1_chain_cert(context, intermediate) == 1 else {
                throw TLSError.fromQueue(.invalidCertificate, fallback: "\(origin): unusable intermediate")
            }
        }
        let privateKey: OpaquePointer? = key.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            // With no callback, OpenSSL takes the last argument as the NUL-terminated passphrase; without
            // one, an encrypted key fails instead of prompting on a terminal.
            if let password {
                return password.withCString { PEM_read_bio_PrivateKey(bio, nil, nil, UnsafeMutableRawPointer(mutating: $0)) }
            }
            return PEM_read_bio_PrivateKey(bio, nil, { _, _, _, _ in 0 }, nil)
        }
        guard let privateKey else {
            throw TLSError.fromQueue(.invalidCertificate, fallback: "\(origin): no usable private key (wrong password?)")
        }
        defer { EVP_PKEY_free(privateKey) }
        guard SSL_CTX_use_PrivateKey(context, privateKey) == 1, SSL_CTX_check_private_key(context) == 1 else {
            throw TLSError.fromQueue(.invalidCertificate, fallback: "\(origin): the key does not match the certificate")
        }
    }

    /// Every certificate of a PEM text, in order (caller frees them).
    private static func readCertificates(_ pem: [UInt8], origin: String) throws -> [OpaquePointer] {
        try pem.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else {
                throw TLSError(.invalidCertificate, "\(origin): out of memory")
            }
            defer { BIO_free(bio) }
            var certificates: [OpaquePointer] = []
            while let certificate = PEM_read_bio_X509(bio, nil, nil, nil) {
                certificates.append(certificate)
            }
            ERR_clear_error()  // the end of the text reads as a "no start line" error
            return certificates
        }
    }

    private static func configureClientAuthentication(
        _ authentication: TLSConfiguration.ClientAuthentication, _ context: OpaquePointer
    ) throws {
        let caFile: String
        let required: Bool
        switch authentication {
        case .none: return
        case .optional(let file): (caFile, required) = (file, false)
        case .required(let file): (caFile, required) = (file, true)
        }
        let certificates = try readCertificates(try PEMFile.read(caFile), origin: caFile)
        defer { for certificate in certificates { X509_free(certificate) } }
        guard !certificates.isEmpty else { throw TLSError(.invalidCertificate, "\(caFile): no CA certificate") }
        guard let store = SSL_CTX_get_cert_store(context) else {
            throw TLSError(.invalidCertificate, "\(caFile): no certificate store")
        }
        for certificate in certificates {
            guard X509_STORE_add_cert(store, certificate) == 1, SSL_CTX_add_client_CA(context, certificate) == 1
            else {
                throw TLSError.fromQueue(.invalidCertificate, fallback: "\(caFile): unusable CA certificate")
            }
        }
        if required {
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
        } else {
            // Ask, and finish the handshake whatever the outcome: the result is reported, not enforced.
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER) { _, _ in 1 }
        }
    }
}

/// SNI: switches the session to the named context, if there is one; the default one serves otherwise.
private func serverNameCallback(
    _ ssl: OpaquePointer?, _ alert: UnsafeMutablePointer<Int32>?, _ argument: UnsafeMutableRawPointer?
) -> Int32 {
    guard let ssl, let argument, let name = SSL_get_servername(ssl, Int32(TLSEXT_NAMETYPE_host_name)) else {
        return CSocketServerTLS_tlsext_err_ok()
    }
    let set = Unmanaged<ContextSet>.fromOpaque(argument).takeUnretainedValue()
    if let context = set.context(for: String(cString: name)) { _ = SSL_set_SSL_CTX(ssl, context) }
    return CSocketServerTLS_tlsext_err_ok()
}

/// ALPN: the server's preference among what the client offered; no answer when nothing matches.
private func alpnCallback(
    _ ssl: OpaquePointer?, _ selected: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
    _ selectedLength: UnsafeMutablePointer<UInt8>?, _ offered: UnsafePointer<UInt8>?, _ offeredLength: UInt32,
    _ argument: UnsafeMutableRawPointer?
) -> Int32 {
    guard let argument, let offered, let selected, let selectedLength else {
        return CSocketServerTLS_tlsext_err_noack()
    }
    let set = Unmanaged<ContextSet>.fromOpaque(argument).takeUnretainedValue()
    guard let (choice, length) = set.selectALPN(UnsafeBufferPointer(start: offered, count: Int(offeredLength))) else {
        return CSocketServerTLS_tlsext_err_noack()
    }
    selected.pointee = choice
    selectedLength.pointee = length
    return CSocketServerTLS_tlsext_err_ok()
}
