//! The server's typed configuration. Only the `bulwark` crate reads the environment; it fills this.

use std::path::PathBuf;
use std::time::Duration;

use auth::{HashParams, PasswordPolicy};
use ipnet::IpNet;

pub use crate::rate::{Rate, RequestRateConfig};
use store::ThrottleRule;
use url::Url;

/// Throttle rules by purpose. Defaults are documented in `docs/security-model.md`.
#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    /// Failed sign-ins (and failed password confirmations) per account, whether or not it exists.
    pub login_account: ThrottleRule,
    /// Failed sign-ins per client IP, across accounts (credential stuffing).
    pub login_ip: ThrottleRule,
    /// Requests that send mail (register, password reset, resend verification) per client IP.
    pub mail_ip: ThrottleRule,
    /// Mails per recipient account (reset links, verification resends), so nobody is mail-bombed.
    pub mail_account: ThrottleRule,
    /// Failed exchange-key connections per user (refused or rejected keys), so a session cannot
    /// use the server to test stolen keys against the exchange.
    pub key_connect_user: ThrottleRule,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        ThrottleConfig {
            // 10 failures block 15 minutes, doubling with every further 10, up to a day; the
            // 100th consecutive failure locks the account's password sign-in until a reset by
            // mail or a successful sign-in (AU-4: at most 100 consecutive failures).
            login_account: ThrottleRule {
                limit: 10,
                base_block: minutes(15),
                max_block: minutes(24 * 60),
                forget_after: minutes(30 * 24 * 60),
                lock_after: Some(100),
            },
            login_ip: ThrottleRule {
                limit: 50,
                base_block: minutes(15),
                max_block: minutes(24 * 60),
                forget_after: minutes(60),
                lock_after: None,
            },
            mail_ip: ThrottleRule {
                limit: 20,
                base_block: minutes(60),
                max_block: minutes(24 * 60),
                forget_after: minutes(60),
                lock_after: None,
            },
            mail_account: ThrottleRule {
                limit: 5,
                base_block: minutes(60),
                max_block: minutes(24 * 60),
                forget_after: minutes(60),
                lock_after: None,
            },
            key_connect_user: ThrottleRule {
                limit: 10,
                base_block: minutes(60),
                max_block: minutes(24 * 60),
                forget_after: minutes(24 * 60),
                lock_after: None,
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Base of links in mails and the one allowed `Origin`.
    pub public_url: Url,
    /// Sessions end after this long without a request (SE-2).
    pub session_idle: Duration,
    /// Sessions end this long after sign-in whatever happens (SE-2).
    pub session_absolute: Duration,
    /// How long a re-authentication counts as recent for sensitive actions.
    pub reauth_window: Duration,
    /// How long the link confirming a new email address works.
    pub email_change_ttl: Duration,
    /// How long a started TOTP setup may wait for its confirming code.
    pub totp_setup_ttl: Duration,
    pub verify_token_ttl: Duration,
    pub reset_token_ttl: Duration,
    pub password_policy: PasswordPolicy,
    pub hash_params: HashParams,
    /// Argon2 computations that may run at once (threads of the blocking pool in use for hashing).
    pub hash_concurrency: usize,
    /// Hash requests that may wait for a slot; beyond it requests are refused with 429 at once.
    pub hash_queue: usize,
    pub throttles: ThrottleConfig,
    /// Peers whose `X-Forwarded-For` is believed. Empty: the socket peer is the client.
    pub trusted_proxies: Vec<IpNet>,
    /// JSON bodies above this are refused with 413.
    pub max_body_bytes: usize,
    /// The sender of every mail.
    pub mail_from: String,
    /// How often the vault's key ring is reloaded from the database (and the rewrap job of an
    /// unfinished rotation runs). A retired key is destroyed three intervals after its rotation
    /// at the earliest (`LiveVault::destroy_grace`).
    pub vault_refresh: Duration,
    /// How often the housekeeping loop runs: the expired-session purge and the daily exchange key
    /// checks (which pick accounts last checked more than 24 h ago).
    pub housekeeping_every: Duration,
    /// How often the bot engine's cycle runs (prices, order reconciliation, the timer).
    pub engine_interval: Duration,
    /// How often the manual orders whose outcome is not known yet (pending, or open at the venue)
    /// are looked up at their venues (`manual_orders`, run by every node).
    pub manual_order_interval: Duration,
    /// How long a node's lease on a bot lasts; renewed every cycle. A node that dies loses its
    /// bots to the others after this long.
    pub bot_lease: Duration,
    /// This node's name in bot leases: `serve` reads it from `<data dir>/node-id` (drawn at random on
    /// the first start), so a restarted node takes its own leases back at once and nodes with
    /// their own data dirs never share one.
    pub node_id: String,
    /// The webhook routes' limits (`spec/webhooks.md` section 4).
    pub webhooks: WebhookConfig,
    /// Requests to the pages and the API handled at once; one more is answered 503 `overloaded`
    /// with `Retry-After` at once instead of queueing (load shedding, NET-1).
    pub max_in_flight: usize,
    /// The same for the two webhook routes, counted apart: a flood on the API or the sign-in page
    /// does not take the webhooks' share, nor the reverse.
    pub webhook_max_in_flight: usize,
    /// Connection-level limits of the accept loop (`edge`, NET-1).
    pub edge: EdgeConfig,
    /// The certificate and key (PEM files) to serve HTTPS with; `None`: plain HTTP (loopback or
    /// behind a TLS-terminating proxy: the binary refuses anything else).
    pub tls: Option<TlsFiles>,
    /// Per-address and per-account request rates of the pages and the API (429 `rate_limited`
    /// with `Retry-After` beyond them).
    pub request_rates: RequestRateConfig,
    /// How long a graceful shutdown waits for the bot engine to finish what it is sending (the
    /// requests in flight get `EdgeConfig::drain_timeout`); what is left then is looked up at the
    /// next start.
    pub shutdown_grace: Duration,
    /// The bearer token `GET /metrics` asks for; `None`: only loopback peers that are not trusted
    /// proxies may read it (`metrics::allowed`).
    pub metrics_token: Option<MetricsToken>,
}

/// The operator's token for `GET /metrics` (`BULWARK_METRICS_TOKEN`). `Debug` redacts it and it is
/// zeroized on drop; a presented token is compared by SHA-256 digest in constant time, so neither
/// its bytes nor its length show in the timing.
#[derive(Clone)]
pub struct MetricsToken(zeroize::Zeroizing<String>);

/// Why a metrics token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MetricsTokenError {
    #[error("the metrics token must be 32 to 512 characters long (e.g. `openssl rand -hex 32`)")]
    Length,
    #[error("the metrics token must be printable ASCII without spaces (it travels in an HTTP header)")]
    Characters,
}

impl MetricsToken {
    /// The shortest token accepted: a guessable one would open the metrics to anyone who can
    /// reach the server.
    pub const MIN_LEN: usize = 32;

    /// # Errors
    /// A token shorter than `MIN_LEN` or longer than 512 characters, or with characters that cannot
    /// be sent in a header as they are.
    pub fn parse(raw: &str) -> Result<MetricsToken, MetricsTokenError> {
        if !(Self::MIN_LEN..=512).contains(&raw.len()) {
            return Err(MetricsTokenError::Length);
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(MetricsTokenError::Characters);
        }
        Ok(MetricsToken(zeroize::Zeroizing::new(raw.to_owned())))
    }

    /// Whether `presented` is this token (constant time over the digests).
    pub fn matches(&self, presented: &[u8]) -> bool {
        use sha2::{Digest, Sha256};
        use subtle::ConstantTimeEq;
        let ours: [u8; 32] = Sha256::digest(self.0.as_bytes()).into();
        let theirs: [u8; 32] = Sha256::digest(presented).into();
        bool::from(ours[..].ct_eq(&theirs[..]))
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(***)")
    }
}

/// The PEM files of the served certificate (chain first, leaf first) and its private key. Both are
/// read again when either file changes (checked every `EdgeConfig::tls_reload_check`) and on SIGHUP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Limits on connections, enforced by the accept loop before any request is read (NET-1). The
/// defaults are written down in `docs/security-model.md`.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// A connection that has not sent a request's complete headers this long after it opened (or
    /// after its previous response) is closed (slowloris).
    pub header_read_timeout: Duration,
    /// A request whose body has not all arrived this long after its headers is answered 408
    /// `request_timeout` and its connection closed (a slow body holds a request slot).
    pub body_read_timeout: Duration,
    /// A TLS handshake not finished this long after the connection opened is abandoned.
    pub tls_handshake_timeout: Duration,
    /// Open connections from one client address; a connection beyond it is closed at once. Peers
    /// in `trusted_proxies` are exempt (every client of a proxy shares its address).
    pub max_connections_per_ip: usize,
    /// Open connections in all; a connection beyond it is closed at once.
    pub max_connections: usize,
    /// How often the TLS files' modification times are looked at for a reload.
    pub tls_reload_check: Duration,
    /// On shutdown, how long the requests in flight are waited for before their connections are
    /// dropped.
    pub drain_timeout: Duration,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            tls_handshake_timeout: Duration::from_secs(10),
            max_connections_per_ip: 64,
            max_connections: 1024,
            tls_reload_check: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// How the webhook routes limit and remember what they receive.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Every hit from one source address.
    pub per_ip: Rate,
    /// Hits with a wrong bot id or secret from one source address (token guessing).
    pub failures_per_ip: Rate,
    /// Authenticated hits for one bot.
    pub per_bot: Rate,
    /// An identical body for the same bot inside this window is a replay (409 `duplicate_signal`).
    pub dedupe_window: Duration,
    /// A signal still not acted on this long after it was due expires (its bot was not running).
    pub expire_after: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            // TradingView sends every user's alerts from four addresses: an address's limit must
            // carry a team's alerts firing on the same candle close.
            per_ip: Rate { per_minute: 3_000, burst: 300 },
            failures_per_ip: Rate { per_minute: 10, burst: 20 },
            // A multi-pair bot's alerts can fire for each of its pairs on one close.
            per_bot: Rate { per_minute: 600, burst: 60 },
            dedupe_window: Duration::from_secs(60),
            expire_after: Duration::from_secs(300),
        }
    }
}

impl ServerConfig {
    pub fn new(public_url: Url) -> ServerConfig {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        ServerConfig {
            public_url,
            session_idle: Duration::from_secs(30 * 60),
            session_absolute: Duration::from_secs(12 * 3600),
            reauth_window: Duration::from_secs(5 * 60),
            totp_setup_ttl: Duration::from_secs(15 * 60),
            email_change_ttl: Duration::from_secs(3600),
            verify_token_ttl: Duration::from_secs(24 * 3600),
            reset_token_ttl: Duration::from_secs(3600),
            password_policy: PasswordPolicy::default(),
            hash_params: HashParams::default(),
            // One core is always left to everything else (webhooks, the runner): a sign-in flood
            // must not starve them (B7). On one core, hashing still gets it.
            hash_concurrency: cores.saturating_sub(1).max(1),
            hash_queue: 64 * cores,
            throttles: ThrottleConfig::default(),
            trusted_proxies: Vec::new(),
            max_body_bytes: 1024 * 1024,
            mail_from: "Bulwark <no-reply@bulwark.localhost>".to_owned(),
            vault_refresh: Duration::from_secs(30),
            housekeeping_every: Duration::from_secs(600),
            engine_interval: Duration::from_secs(1),
            manual_order_interval: Duration::from_secs(5),
            bot_lease: Duration::from_secs(30),
            node_id: "node".to_owned(),
            webhooks: WebhookConfig::default(),
            max_in_flight: 512,
            webhook_max_in_flight: 256,
            edge: EdgeConfig::default(),
            tls: None,
            request_rates: RequestRateConfig::default(),
            shutdown_grace: Duration::from_secs(30),
            metrics_token: None,
        }
    }

    /// The origin (`scheme://host[:port]`) pages are served from.
    pub fn origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }

    pub fn is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// `public_url` joined with a path and query, for links in mails.
    pub fn link(&self, path_and_query: &str) -> String {
        format!("{}{}", self.public_url.as_str().trim_end_matches('/'), path_and_query)
    }
}
