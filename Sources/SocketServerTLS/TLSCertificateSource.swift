/// Where a certificate chain and its private key come from: PEM files (read again on every reload) or PEM
/// text in memory (from a configuration system or a secret store).
public enum TLSCertificateSource: Sendable, Hashable {
    /// A PEM file holding the server certificate followed by its intermediates, and a PEM private-key file;
    /// an encrypted key (PKCS#8 or traditional) is decrypted with the first line of `passwordFile`.
    case files(certificateChain: String, privateKey: String, passwordFile: String? = nil)
    /// The same as PEM text; `password` decrypts an encrypted key.
    case pem(certificateChain: String, privateKey: String, password: String? = nil)
}
