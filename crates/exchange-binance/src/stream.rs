//! The user data stream (binance-spot-api-docs `user-data-stream.md`): the account's order updates
//! pushed over a WebSocket.
//!
//! [`open`] asks for a listen key (`POST /api/v3/userDataStream`, USER_STREAM: the `X-MBX-APIKEY`
//! header alone, never signed), connects to `<stream base>/ws/<listenKey>` and starts one task that
//! reads the socket (answering the venue's pings as it reads) and one that keeps the key alive with
//! a `PUT` every [`crate::BinanceConfig::listen_key_keepalive`] (Binance drops a key 60 minutes after
//! its last keepalive). Both belong to the returned stream: dropping it aborts them and closes the
//! socket. The key is not deleted then: an account has one listen key at Binance, shared by every
//! stream of the account (another node's, or the reconnection that follows), and an unused key
//! expires by itself.
//!
//! Each `executionReport` becomes an [`OrderEvent`]; other events are skipped. The stream ends with
//! one `Err` when the socket closes (including Binance's disconnection at the 24-hour mark),
//! `listenKeyExpired` arrives, a keepalive is refused, or an event cannot be read; the caller then
//! reconnects and polls meanwhile.
//!
//! TLS (`wss://`) is made here with tokio-rustls over aws-lc-rs and the platform's trust roots, as
//! the REST client's reqwest does, and handed to tokio-tungstenite as a plain byte stream, so no
//! other TLS stack is linked. The listen key reaches neither a log nor an error: whoever has it can
//! read the account's order updates.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use exchange::{Credentials, ExchangeError, OrderEvent, OrderEventStream};
use futures_util::{Stream, StreamExt as _};
use rustls_platform_verifier::BuilderVerifierExt as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use url::Url;

use crate::client::BinanceClient;
use crate::wire::UserEvent;

/// Events read but not yet taken by the caller; the reader waits (and stops reading) past this.
const EVENT_BUFFER: usize = 1_024;
/// The largest message or frame accepted; an execution report is about 600 bytes.
const MAX_MESSAGE: usize = 1 << 20;
/// The longest wait before a failed keepalive is tried again (sooner if the keepalive interval is).
const KEEPALIVE_RETRY: Duration = Duration::from_secs(60);

/// A listen key. Its `Debug` hides it: whoever has it can read the account's stream.
#[derive(Clone)]
pub(crate) struct ListenKey(String);

impl ListenKey {
    pub(crate) fn new(key: String) -> ListenKey {
        ListenKey(key)
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ListenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ListenKey(..)")
    }
}

type Item = Result<OrderEvent, ExchangeError>;

/// What the socket runs over: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

type Socket = WebSocketStream<Box<dyn Io>>;

/// Aborts its task when dropped, so the task lives exactly as long as its owner.
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Opens the account's user data stream.
///
/// # Errors
/// What the listen-key request reports; `ExchangeError::Unreachable` when the WebSocket cannot be
/// opened (no connection, TLS or handshake failure, refused listen key, timeout).
pub(crate) async fn open(
    client: Arc<BinanceClient>,
    credentials: Arc<dyn Credentials>,
) -> Result<OrderEventStream, ExchangeError> {
    let listen_key = client.new_listen_key(credentials.api_key()).await?;
    let url = socket_url(client.stream_base_url(), &listen_key);
    let socket = connect(&url, client.config.request_timeout).await?;
    let (sender, receiver) = mpsc::channel(EVENT_BUFFER);
    let keepalive = AbortOnDrop(tokio::spawn(keep_alive(client, credentials, listen_key, sender.clone())));
    let reader = AbortOnDrop(tokio::spawn(read(socket, sender, keepalive)));
    Ok(OrderEventStream::new(Events { receiver, _reader: reader }))
}

/// `<base>/ws/<listenKey>`, keeping a path the base may have.
fn socket_url(base: &Url, listen_key: &ListenKey) -> Url {
    let mut url = base.clone();
    let path = format!("{}/ws/{}", base.path().trim_end_matches('/'), listen_key.expose());
    url.set_path(&path);
    url
}

/// The caller's side: events as the reader sends them. It owns the reader task, which owns the
/// keepalive task.
struct Events {
    receiver: mpsc::Receiver<Item>,
    _reader: AbortOnDrop,
}

impl Stream for Events {
    type Item = Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        match self.get_mut().receiver.poll_recv(cx) {
            // Both tasks gone without a word (they always send one, but a panic would not): the
            // stream still ends with an error, as the port promises. `OrderEventStream` ends after it.
            Poll::Ready(None) => {
                Poll::Ready(Some(Err(ExchangeError::Unreachable("the user data stream ended".to_owned()))))
            }
            other => other,
        }
    }
}

/// Reads the socket until it ends, forwarding each order update; the last message is the `Err`
/// saying why it ended. Holding `_keepalive` ends the keepalive with the reading.
async fn read(mut socket: Socket, events: mpsc::Sender<Item>, _keepalive: AbortOnDrop) {
    let why = loop {
        let message = match socket.next().await {
            None | Some(Ok(Message::Close(_))) => {
                break ExchangeError::Unreachable("the user data stream was closed".to_owned());
            }
            Some(Err(_)) => break ExchangeError::Unreachable("the user data stream connection failed".to_owned()),
            Some(Ok(Message::Text(text))) => text,
            // Pings are answered by tungstenite as the socket is read; nothing else is Binance's.
            Some(Ok(_)) => continue,
        };
        let event = match UserEvent::parse(message.as_str()) {
            Ok(UserEvent::ExecutionReport(report)) => report.into_event(),
            Ok(UserEvent::ListenKeyExpired) => {
                break ExchangeError::Unreachable("the user data stream's listen key expired".to_owned());
            }
            Ok(UserEvent::Other) => continue,
            Err(err) => Err(err),
        };
        match event {
            Ok(event) => {
                if events.send(Ok(event)).await.is_err() {
                    return; // The caller is gone.
                }
            }
            Err(err) => break err,
        }
    };
    tracing::info!(venue = "binance", why = %why, "the user data stream ended");
    let _ = events.send(Err(why)).await;
}

/// Keeps the listen key alive until aborted. A transient failure is tried again within a minute
/// (the key lives 60 minutes after the last keepalive); any other ends the stream.
async fn keep_alive(
    client: Arc<BinanceClient>,
    credentials: Arc<dyn Credentials>,
    listen_key: ListenKey,
    events: mpsc::Sender<Item>,
) {
    let every = client.config.listen_key_keepalive;
    let mut wait = every;
    loop {
        tokio::time::sleep(wait).await;
        match client.keep_listen_key_alive(credentials.api_key(), &listen_key).await {
            Ok(()) => wait = every,
            Err(err) if err.is_transient() => {
                wait = match err {
                    ExchangeError::RateLimited { retry_after } | ExchangeError::IpBanned { retry_after } => retry_after,
                    _ => every.min(KEEPALIVE_RETRY),
                };
                tracing::warn!(venue = "binance", error = %err, retry_in_s = wait.as_secs(), "a listen key keepalive failed");
            }
            Err(err) => {
                tracing::warn!(venue = "binance", error = %err, "a listen key keepalive was refused; ending the stream");
                let _ = events.send(Err(err)).await;
                return;
            }
        }
    }
}

/// TCP (and TLS for `wss`), then the WebSocket handshake, all within `timeout`.
async fn connect(url: &Url, timeout: Duration) -> Result<Socket, ExchangeError> {
    let unreachable = |why: &str| ExchangeError::Unreachable(format!("the user data stream: {why}"));
    let port = url.port_or_known_default().ok_or_else(|| unreachable("no port"))?;
    let host = url.host().ok_or_else(|| unreachable("no host"))?;
    let opening = async {
        let tcp = match &host {
            url::Host::Domain(name) => TcpStream::connect((*name, port)).await,
            url::Host::Ipv4(ip) => TcpStream::connect((*ip, port)).await,
            url::Host::Ipv6(ip) => TcpStream::connect((*ip, port)).await,
        }
        .map_err(|_| unreachable("cannot connect"))?;
        tcp.set_nodelay(true).map_err(|_| unreachable("cannot connect"))?;
        let io: Box<dyn Io> = if url.scheme() == "wss" {
            let name = match &host {
                url::Host::Domain(name) => {
                    ServerName::try_from((*name).to_owned()).map_err(|_| unreachable("not a TLS server name"))?
                }
                url::Host::Ipv4(ip) => ServerName::from(std::net::IpAddr::V4(*ip)),
                url::Host::Ipv6(ip) => ServerName::from(std::net::IpAddr::V6(*ip)),
            };
            let connector = TlsConnector::from(tls_config()?);
            Box::new(connector.connect(name, tcp).await.map_err(|_| unreachable("the TLS handshake failed"))?)
        } else {
            Box::new(tcp)
        };
        let config = WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE)).max_frame_size(Some(MAX_MESSAGE));
        let (socket, _) = tokio_tungstenite::client_async_with_config(url.as_str(), io, Some(config)).await.map_err(
            |err| match err {
                tokio_tungstenite::tungstenite::Error::Http(response) => {
                    unreachable(&format!("the connection was refused (HTTP {})", response.status().as_u16()))
                }
                _ => unreachable("the WebSocket handshake failed"),
            },
        )?;
        Ok(socket)
    };
    tokio::time::timeout(timeout, opening).await.map_err(|_| unreachable("no answer in time"))?
}

/// rustls over aws-lc-rs with the platform's trust roots (what reqwest's `rustls` feature uses for
/// the REST client), offering HTTP/1.1 for the upgrade.
fn tls_config() -> Result<Arc<ClientConfig>, ExchangeError> {
    let failed = |_| ExchangeError::Unreachable("the user data stream: cannot set up TLS".to_owned());
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(failed)?
        .with_platform_verifier()
        .map_err(failed)?
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_url_appends_ws_and_the_key_and_debug_hides_the_key() {
        let key = ListenKey::new("pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1".to_owned());
        let base = Url::parse("wss://stream.binance.com:9443").unwrap();
        assert_eq!(socket_url(&base, &key).as_str(), format!("wss://stream.binance.com:9443/ws/{}", key.expose()));
        let prefixed = Url::parse("wss://proxy.example/binance/").unwrap();
        assert_eq!(socket_url(&prefixed, &key).path(), format!("/binance/ws/{}", key.expose()));
        assert_eq!(format!("{key:?}"), "ListenKey(..)");
    }

    #[test]
    fn the_tls_configuration_builds_on_aws_lc_rs() {
        let config = tls_config().unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}
