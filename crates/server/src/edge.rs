//! The edge: the one place that accepts connections (ARCHITECTURE.md invariant 14). It takes TCP
//! connections from the listener, enforces the connection-level limits of NET-1 before a request
//! is read (a global and a per-address cap on open connections, a TLS handshake timeout, a
//! header-read timeout against slowloris), terminates TLS when the server has a certificate
//! (SE-6: rustls with aws-lc-rs, TLS 1.2 and 1.3 only, forward-secret suites only), reloads that
//! certificate when its files change or on SIGHUP, and hands each request to the router with the
//! peer's address (`ConnectInfo<SocketAddr>`) and, over TLS, the `ServedOverTls` marker.
//!
//! Shutdown is graceful: once `shutdown` resolves no connection is accepted, idle connections are
//! closed, and requests in flight are answered before `run` returns.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use ipnet::IpNet;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

use crate::config::{EdgeConfig, TlsFiles};
use crate::metrics::{ConnectionGuard, ConnectionRefusal, HandshakeFailure, Metrics};

/// A request extension present on every request that arrived over a TLS connection this server
/// terminated (HSTS is sent on those).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServedOverTls;

/// The server's TLS setup: the rustls configuration and the certificate it serves, replaceable
/// while connections use the old one.
pub struct Tls {
    files: TlsFiles,
    certificate: Arc<CurrentCertificate>,
    acceptor: TlsAcceptor,
    /// What the files looked like when last read; a change triggers a reload.
    stamp: Mutex<Stamp>,
}

impl Tls {
    /// Reads the certificate and key.
    ///
    /// # Errors
    /// A file that cannot be read, holds no certificate or key, or a key that does not match the
    /// certificate.
    pub fn load(files: &TlsFiles) -> io::Result<Arc<Tls>> {
        let provider = Arc::new(provider());
        let stamp = stamp(files);
        let key =
            load_certified_key(files, &provider).map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
        let certificate = Arc::new(CurrentCertificate(RwLock::new(Arc::new(key))));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(PROTOCOL_VERSIONS)
            .map_err(|err| io::Error::other(err.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(certificate.clone());
        // HTTP/1.1 only: its header-read timeout is what bounds a slow client (NET-1).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(Tls {
            files: files.clone(),
            certificate,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            stamp: Mutex::new(stamp),
        }))
    }

    /// The SHA-256 fingerprint of the leaf certificate being served.
    pub fn fingerprint(&self) -> String {
        let current = self.certificate.0.read().unwrap_or_else(PoisonError::into_inner).clone();
        current.cert.first().map(|der| fingerprint(der)).unwrap_or_default()
    }

    /// Reads the files again; on failure the certificate served so far stays and the error is
    /// returned.
    ///
    /// # Errors
    /// As `load`.
    pub fn reload(&self) -> Result<String, String> {
        let provider = provider();
        *self.stamp.lock().unwrap_or_else(PoisonError::into_inner) = stamp(&self.files);
        let key = load_certified_key(&self.files, &provider)?;
        *self.certificate.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
        Ok(self.fingerprint())
    }

    /// Reloads the certificate when its files change (looked at every `every`) and on SIGHUP
    /// (`hangup`, registered by the caller before it serves, so an early signal is not fatal).
    async fn watch(self: Arc<Self>, every: Duration, #[cfg(unix)] mut hangup: Option<tokio::signal::unix::Signal>) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        tick.tick().await;
        loop {
            #[cfg(unix)]
            let asked = tokio::select! {
                _ = tick.tick() => false,
                Some(()) = async { match hangup.as_mut() { Some(signal) => signal.recv().await, None => std::future::pending().await } } => true,
            };
            #[cfg(not(unix))]
            let asked = {
                tick.tick().await;
                false
            };
            let changed = stamp(&self.files) != *self.stamp.lock().unwrap_or_else(PoisonError::into_inner);
            if !(asked || changed) {
                continue;
            }
            match self.reload() {
                Ok(fingerprint) => tracing::info!(%fingerprint, "TLS certificate reloaded"),
                Err(err) => {
                    tracing::error!(error = %err, "TLS certificate reload failed; still serving the previous one")
                }
            }
        }
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("files", &self.files)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// TLS 1.3 and 1.2; never 1.1, 1.0 or SSL (SE-6).
const PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// aws-lc-rs, the workspace's one TLS provider. Its default suites are all forward-secret (ECDHE
/// for TLS 1.2; TLS 1.3 has no other kind); `the_suites_are_forward_secret` keeps it so.
fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

#[derive(Debug)]
struct CurrentCertificate(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for CurrentCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(PoisonError::into_inner).clone())
    }
}

fn load_certified_key(files: &TlsFiles, provider: &rustls::crypto::CryptoProvider) -> Result<CertifiedKey, String> {
    let cert = files.cert.display();
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|items| items.collect::<Result<Vec<_>, _>>())
        .map_err(|err| format!("reading the certificate {cert}: {err}"))?;
    if chain.is_empty() {
        return Err(format!("{cert} holds no PEM certificate"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|err| format!("reading the private key {}: {err}", files.key.display()))?;
    CertifiedKey::from_der(chain, key, provider)
        .map_err(|err| format!("the key {} does not fit the certificate {cert}: {err}", files.key.display()))
}

/// What a file looked like: a change of any part means it was rewritten or replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<std::time::SystemTime>,
    len: u64,
    inode: u64,
}

type Stamp = (Option<FileStamp>, Option<FileStamp>);

fn stamp(files: &TlsFiles) -> Stamp {
    let one = |path: &Path| {
        std::fs::metadata(path).ok().map(|meta| FileStamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            #[cfg(unix)]
            inode: std::os::unix::fs::MetadataExt::ino(&meta),
            #[cfg(not(unix))]
            inode: 0,
        })
    };
    (one(&files.cert), one(&files.key))
}

/// The first certificate (the leaf) of a PEM chain file, as DER: for `bulwark doctor`, which reads
/// its expiry.
///
/// # Errors
/// The file cannot be read or holds no certificate.
pub fn leaf_certificate(path: &Path) -> io::Result<Vec<u8>> {
    let mut items = CertificateDer::pem_file_iter(path)
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err.to_string()))?;
    match items.next() {
        Some(Ok(der)) => Ok(der.to_vec()),
        Some(Err(err)) => Err(io::Error::new(io::ErrorKind::InvalidData, err.to_string())),
        None => Err(io::Error::new(io::ErrorKind::InvalidData, "no certificate")),
    }
}

/// The SHA-256 of a DER certificate as colon-separated upper-case hex (how browsers show it).
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// The self-signed certificate of `BULWARK_TLS=auto`: `tls-cert.pem` and `tls-key.pem` (mode 0600)
/// in `dir`, made on the first call (ECDSA P-256, for `names`, valid for ten years) and reused
/// afterwards. Returns the files and the certificate's fingerprint.
///
/// # Errors
/// The files cannot be written or read, or hold something other than a certificate and its key.
pub fn self_signed(dir: &Path, names: Vec<String>) -> io::Result<(TlsFiles, String)> {
    let files = TlsFiles { cert: dir.join("tls-cert.pem"), key: dir.join("tls-key.pem") };
    if !(files.cert.exists() && files.key.exists()) {
        let invalid = |err: rcgen::Error| io::Error::new(io::ErrorKind::InvalidData, err.to_string());
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(invalid)?;
        let mut params = rcgen::CertificateParams::new(names).map_err(invalid)?;
        params.distinguished_name.push(rcgen::DnType::CommonName, "Bulwark self-signed");
        params.not_before = rcgen::date_time_ymd(2025, 1, 1);
        params.not_after = rcgen::date_time_ymd(2035, 1, 1);
        let cert = params.self_signed(&key).map_err(invalid)?;
        // The key first, 0600 from its creation; the certificate last, so a crash in between
        // leaves no certificate and the next start makes both again.
        write_new(&files.key, key.serialize_pem().as_bytes(), 0o600)?;
        write_new(&files.cert, cert.pem().as_bytes(), 0o644)?;
    }
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|items| items.collect::<Result<Vec<_>, _>>())
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err.to_string()))?;
    let leaf = chain.first().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no certificate"))?;
    Ok((files.clone(), fingerprint(leaf)))
}

/// Writes `bytes` to a new file created with `mode`, through a temporary file renamed into place.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    use std::io::Write as _;
    let temporary = PathBuf::from(format!("{}.tmp", path.display()));
    let _ = std::fs::remove_file(&temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)
}

/// Open connections, in all and per client address.
#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// A taken connection slot, given back when the connection ends.
#[derive(Debug)]
struct Slot {
    open: Arc<Mutex<Open>>,
    ip: IpAddr,
    counted_per_ip: bool,
    _counted: ConnectionGuard,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if self.counted_per_ip
            && let Some(count) = open.by_ip.get_mut(&self.ip)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.by_ip.remove(&self.ip);
            }
        }
    }
}

fn take_slot(
    open: &Arc<Mutex<Open>>,
    ip: IpAddr,
    per_ip: bool,
    limits: &EdgeConfig,
    metrics: &Arc<Metrics>,
) -> Result<Slot, ConnectionRefusal> {
    let mut state = open.lock().unwrap_or_else(PoisonError::into_inner);
    if state.total >= limits.max_connections {
        return Err(ConnectionRefusal::TotalCap);
    }
    if per_ip {
        let count = state.by_ip.entry(ip).or_insert(0);
        if *count >= limits.max_connections_per_ip {
            return Err(ConnectionRefusal::AddressCap);
        }
        *count += 1;
    }
    state.total += 1;
    Ok(Slot { open: open.clone(), ip, counted_per_ip: per_ip, _counted: metrics.connection_opened() })
}

/// Accepts connections on `listener` and serves `app` on them until `shutdown` resolves, then
/// waits for the requests in flight. With `tls`, every connection must complete a TLS handshake
/// first (no plain HTTP is served). Peers in `trusted_proxies` are exempt from the per-address cap.
///
/// # Errors
/// None today: accept errors are logged and accepting goes on (as `axum::serve` does).
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: EdgeConfig,
    tls: Option<Arc<Tls>>,
    trusted_proxies: Vec<IpNet>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    run_counted(listener, app, limits, tls, trusted_proxies, Arc::new(Metrics::new()), shutdown).await
}

/// [`run`], counting connections, refusals, failed TLS handshakes and header timeouts into
/// `metrics` (`GET /metrics`).
///
/// # Errors
/// As `run`.
pub async fn run_counted(
    listener: TcpListener,
    app: Router,
    limits: EdgeConfig,
    tls: Option<Arc<Tls>>,
    trusted_proxies: Vec<IpNet>,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let graceful = GracefulShutdown::new();
    let open = Arc::new(Mutex::new(Open::default()));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let http = Arc::new(http);
    let reload = tls.clone().map(|tls| {
        #[cfg(unix)]
        let hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(signal) => Some(signal),
            Err(err) => {
                tracing::warn!(error = %err, "no SIGHUP handler: the certificate reloads only when its files change");
                None
            }
        };
        tokio::spawn(tls.watch(
            limits.tls_reload_check,
            #[cfg(unix)]
            hangup,
        ))
    });
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) if is_connection_error(&err) => continue,
                Err(err) => {
                    // Out of file descriptors and the like: wait for connections to end.
                    tracing::error!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let exempt = trusted_proxies.iter().any(|net| net.contains(&peer.ip()));
        let slot = match take_slot(&open, peer.ip(), !exempt, &limits, &metrics) {
            Ok(slot) => slot,
            Err(refusal) => {
                tracing::debug!(peer = %peer.ip(), "connection limit reached; connection closed");
                metrics.connection_refused(refusal);
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let (app, http, tls, metrics) = (app.clone(), http.clone(), tls.clone(), metrics.clone());
        let handshake_timeout = limits.tls_handshake_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                None => serve_connection(&http, stream, peer, false, app, watcher, &metrics).await,
                Some(tls) => match tokio::time::timeout(handshake_timeout, tls.acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => serve_connection(&http, stream, peer, true, app, watcher, &metrics).await,
                    Ok(Err(err)) => {
                        tracing::debug!(error = %err, "TLS handshake failed");
                        metrics.tls_handshake_failed(HandshakeFailure::Error);
                    }
                    Err(_) => {
                        tracing::debug!("TLS handshake timed out");
                        metrics.tls_handshake_failed(HandshakeFailure::Timeout);
                    }
                },
            }
        });
    }
    drop(listener);
    if let Some(reload) = reload {
        reload.abort();
    }
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown()).await.is_err() {
        tracing::warn!(
            drain_s = limits.drain_timeout.as_secs(),
            "shutting down: requests still in flight after the drain timeout are dropped"
        );
    }
    Ok(())
}

async fn serve_connection<S>(
    http: &hyper::server::conn::http1::Builder,
    stream: S,
    peer: SocketAddr,
    over_tls: bool,
    app: Router,
    watcher: hyper_util::server::graceful::Watcher,
    metrics: &Metrics,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        if over_tls {
            request.extensions_mut().insert(ServedOverTls);
        }
        tower::ServiceExt::oneshot(app.clone(), request)
    });
    let connection = http.serve_connection(TokioIo::new(stream), service);
    if let Err(err) = watcher.watch(connection).await {
        if err.is_timeout() {
            metrics.header_timeout();
        }
        tracing::debug!(error = %err, "connection ended with an error");
    }
}

/// Errors of one connection that do not concern the listener (as `axum::serve` sorts them).
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::provider;
    use tokio_rustls::rustls::SupportedCipherSuite;

    #[test]
    fn the_suites_are_forward_secret() {
        for suite in provider().cipher_suites {
            match suite {
                SupportedCipherSuite::Tls13(_) => {}
                SupportedCipherSuite::Tls12(suite) => {
                    let name = format!("{:?}", suite.common.suite);
                    assert!(name.starts_with("TLS_ECDHE_"), "{name} is not forward-secret");
                }
            }
        }
    }
}
