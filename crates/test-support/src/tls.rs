//! A TLS client for tests of the server's HTTPS: rustls (aws-lc-rs) limited to the protocol
//! versions a test names, which accepts whatever certificate the server shows (the handshake's
//! signatures are still checked) and reports it, so the test compares its fingerprint with the
//! one it expects. Also a hand-made TLS 1.0/1.1 ClientHello, which rustls cannot send.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::crypto::{CryptoProvider, aws_lc_rs, verify_tls12_signature, verify_tls13_signature};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{self, DigitallySignedStruct, SignatureScheme};

pub use tokio_rustls::rustls::version::{TLS12, TLS13};

/// What one HTTPS request saw.
#[derive(Debug)]
pub struct TlsReply {
    /// `TLSv1_2` or `TLSv1_3`.
    pub version: String,
    /// The SHA-256 fingerprint of the certificate the server showed.
    pub fingerprint: String,
    /// The status line and the headers, lower-cased names, as received.
    pub head: String,
    pub body: String,
}

impl TlsReply {
    pub fn status(&self) -> u16 {
        self.head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `GET path` over HTTPS to `addr`, offering only `versions`.
///
/// # Errors
/// The connection, the handshake or the exchange failed (a refused version ends here).
pub async fn https_get(
    addr: SocketAddr,
    path: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> io::Result<TlsReply> {
    let provider = Arc::new(aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
    let mut stream = TlsConnector::from(Arc::new(config)).connect(name, tcp).await?;
    let (version, fingerprint) = {
        let (_, connection) = stream.get_ref();
        let version = connection.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default();
        let leaf = connection.peer_certificates().and_then(|chain| chain.first()).map(|c| c.to_vec());
        (version, leaf.map(|der| server::edge::fingerprint(&der)).unwrap_or_default())
    };
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw).await {
        Ok(_) => {}
        // A server that closes without close_notify after a complete answer is fine for a test.
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(err) => return Err(err),
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Ok(TlsReply { version, fingerprint, head: head.to_owned(), body: body.to_owned() })
}

/// A ClientHello whose best version is TLS 1.`minor - 1` (`minor` 1: TLS 1.0, 2: TLS 1.1, 3: TLS
/// 1.2): the legacy version fields and no `supported_versions` extension, as such clients sent
/// it. It offers the ECDHE-CBC suites of those versions and also the ECDHE-GCM ones and ECDSA
/// P-256 signatures a TLS 1.2 server takes, so the same hello with `minor` 3 is accepted and a
/// refusal of 1 or 2 is about the version alone. rustls can no longer send one; this is its wire
/// format (RFC 2246 / RFC 4346 / RFC 5246 7.4.1.2).
pub fn legacy_client_hello(minor: u8) -> Vec<u8> {
    let suites: [u16; 8] = [0xc02b, 0xc02c, 0xc02f, 0xc030, 0xc013, 0xc014, 0xc009, 0xc00a];
    let mut extensions = Vec::new();
    // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256
    extensions.extend_from_slice(&[0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01]);
    // supported_groups: secp256r1, x25519
    extensions.extend_from_slice(&[0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x17, 0x00, 0x1d]);
    // ec_point_formats: uncompressed
    extensions.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
    let mut body = vec![0x03, minor];
    body.extend_from_slice(&[0x5a; 32]); // client random
    body.push(0); // no session id
    body.extend_from_slice(&u16::try_from(suites.len() * 2).unwrap_or(0).to_be_bytes());
    for suite in suites {
        body.extend_from_slice(&suite.to_be_bytes());
    }
    body.extend_from_slice(&[0x01, 0x00]); // compression: null only
    body.extend_from_slice(&u16::try_from(extensions.len()).unwrap_or(0).to_be_bytes());
    body.extend_from_slice(&extensions);
    let mut handshake = vec![0x01]; // ClientHello
    handshake.extend_from_slice(&u32::try_from(body.len()).unwrap_or(0).to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, minor]; // handshake record
    record.extend_from_slice(&u16::try_from(handshake.len()).unwrap_or(0).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}
