//! Command line and environment. Every flag has a `BULWARK_*` variable (`spec/api.md`); the
//! variables are what scripts and tests use.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
use url::Url;

#[derive(Debug, Parser)]
#[command(name = "bulwark", version, about = "Self-hosted, security-first crypto trading automation.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web UI and the JSON API. Creates the data dir and the SQLite database on first start.
    Serve(Box<ServeArgs>),
    /// The vault's key ring.
    Vault(VaultArgs),
    /// A Binance-compatible exchange on loopback (one account), for trying Bulwark and for tests.
    ExchangeSim(Box<ExchangeSimArgs>),
    /// Checks a deployment with the settings `serve` would use (same flags and variables): one line
    /// per check (ok, warn or FAIL, with the fix). Starts nothing and changes nothing; exit status 1
    /// when a check FAILs.
    Doctor(Box<ServeArgs>),
}

#[derive(Debug, Args)]
pub struct ExchangeSimArgs {
    /// Listen address (loopback only). Port 0 picks a free port; the base URL is printed.
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub bind: SocketAddr,
    /// The account's API key (1 to 64 letters or digits).
    #[arg(long, default_value = "SimApiKey0000000000000000000000000000000000000000000000000000001")]
    pub api_key: String,
    /// The account's HMAC secret.
    #[arg(long, default_value = "SimApiSecret000000000000000000000000000000000000000000000000001")]
    pub api_secret: String,
    /// Starting balances, e.g. USDT=10000,BTC=0.5.
    #[arg(long, default_value = "USDT=10000,BTC=0.5")]
    pub balances: String,
    /// Accounts from a TOML file instead of the one account of --api-key, --api-secret, --balances,
    /// --withdrawals, --no-ip-restriction and --no-trading (docs/exchange-sim.md shows the format).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["api_key", "api_secret", "balances", "withdrawals", "no_ip_restriction", "no_trading"]
    )]
    pub accounts: Option<PathBuf>,
    /// Symbols to list, e.g. BTCUSDT,ETHUSDT.
    #[arg(long, default_value = "BTCUSDT,ETHUSDT")]
    pub symbols: String,
    /// Starting prices, e.g. BTCUSDT=30000,ETHUSDT=2000 (symbols left out start at 100).
    #[arg(long, default_value = "BTCUSDT=30000,ETHUSDT=2000")]
    pub start_prices: String,
    /// Seed of generated ids and the synthetic book.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Give the key the withdrawal permission (to see Bulwark refuse it).
    #[arg(long)]
    pub withdrawals: bool,
    /// Report the key as usable from any IP address (strict mode refuses it).
    #[arg(long)]
    pub no_ip_restriction: bool,
    /// Take spot trading away from the key.
    #[arg(long)]
    pub no_trading: bool,
    /// Per-step standard deviation of the random walk's log-return: one fraction for every symbol
    /// (0.001 = 0.1 % a minute, like BTCUSDT) and/or SYMBOL=FRACTION pairs, e.g. 0.001,ETHUSDT=0.0015.
    /// 0 keeps a price still. Replayed symbols ignore it.
    #[arg(long, default_value = "0.001")]
    pub volatility: String,
    /// Replay one-minute candles for SYMBOL from a CSV file in Binance's kline column order (open
    /// time ms, open, high, low, close, volume, ...) instead of a random walk. Repeatable.
    #[arg(long, value_name = "SYMBOL=FILE")]
    pub replay: Vec<String>,
    /// Market steps (random-walk minutes or replayed candles) per second, e.g. 10 or 0.5. Default:
    /// one step per real minute.
    #[arg(long, value_name = "N")]
    pub speed: Option<String>,
    /// Keep accounts, balances, orders, trades, prices and ids in FILE: loaded on start when it
    /// exists, written every --state-every seconds and on shutdown (SIGINT, SIGTERM).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Seconds between two writes of the --state file.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub state_every: u64,
    /// Inject faults into requests at random at these rates (seeded by --seed), e.g.
    /// latency=0.1:200ms,5xx=0.02,429=0.01,lost=0.01.
    #[arg(long, value_name = "SPEC")]
    pub faults: Option<String>,
    #[command(flatten)]
    pub log_format: LogFormatArgs,
}

/// How log lines are written: `text` for people, `json` for log collectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    /// One JSON object per line: timestamp, level, message and the event's fields at the top
    /// level, and the spans it happened in.
    Json,
}

/// The log format option, shared by `serve` and `exchange-sim` (report-style subcommands keep
/// text on stderr).
#[derive(Debug, Args)]
pub struct LogFormatArgs {
    /// `text` or `json` (one JSON object per line: timestamp, level, message, fields, spans).
    #[arg(long = "log-format", env = "BULWARK_LOG_FORMAT", default_value = "text", value_parser = parse_log_format)]
    pub format: LogFormat,
}

fn parse_log_format(raw: &str) -> Result<LogFormat, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("BULWARK_LOG_FORMAT (--log-format) is `text` or `json`".to_owned()),
    }
}

/// A secret given on the command line or in the environment: `Debug` redacts it, it is zeroized on
/// drop, and it is checked after parsing so no error message repeats it.
#[derive(Clone)]
pub struct SecretArg(zeroize::Zeroizing<String>);

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretArg(***)")
    }
}

fn secret_arg(raw: &str) -> Result<SecretArg, std::convert::Infallible> {
    Ok(SecretArg(zeroize::Zeroizing::new(raw.to_owned())))
}

#[derive(Debug, Args)]
pub struct VaultArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub refresh: VaultRefreshArgs,
    #[command(subcommand)]
    pub command: VaultCommand,
}

#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Whether the root key opens the key ring, each key-encryption key's version, state, creation
    /// and demotion time, and how many sealed secrets name it. Changes nothing.
    Status,
    /// Starts a key rotation: a new key-encryption key (highest version + 1) becomes active, the
    /// active one decrypt-only. `bulwark serve` then rewraps every sealed secret onto the new key in
    /// the background and destroys the old one once nothing names it and its grace period (three
    /// refresh intervals) is over.
    Rotate {
        /// Also rewrap every sealed secret here and now, and destroy the old key if its grace
        /// period is already over (otherwise `bulwark serve` finishes).
        #[arg(long)]
        wait: bool,
    },
}

/// How often each node reloads the vault's key ring; `vault rotate` needs it too, because it sets
/// the grace period before a retired key may be destroyed.
#[derive(Debug, Args)]
pub struct VaultRefreshArgs {
    /// Seconds between reloads of the vault's key ring from the database (a rotation on another node
    /// is picked up within this time; a retired key is destroyed no sooner than three times this
    /// after its rotation). The same on every node of one database; 1 to 3600.
    #[arg(long, env = "BULWARK_VAULT_REFRESH_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub vault_refresh_seconds: u64,
}

impl VaultRefreshArgs {
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.vault_refresh_seconds)
    }
}

/// Where the data lives: shared by every subcommand that opens the database.
#[derive(Debug, Args)]
pub struct StorageArgs {
    /// Holds the SQLite file, the root key file and the mail outbox.
    #[arg(long, env = "BULWARK_DATA_DIR", default_value = "./bulwark-data")]
    pub data_dir: PathBuf,
    /// `sqlite://<file>` or `postgres://...` [default: sqlite://<data dir>/bulwark.db]
    #[arg(long, env = "BULWARK_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The root key that seals secrets at rest (TOTP seeds); created with mode 0600 on a database's
    /// first start. Keep it out of database backups; every node of one database needs the same file.
    /// [default: <data dir>/root.key]
    #[arg(long, env = "BULWARK_ROOT_KEY_FILE")]
    pub root_key_file: Option<PathBuf>,
}

impl StorageArgs {
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("bulwark.db").display()),
        }
    }

    pub fn root_key_file(&self) -> PathBuf {
        self.root_key_file.clone().unwrap_or_else(|| self.data_dir.join("root.key"))
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Listen address. A non-loopback address needs TLS: BULWARK_TLS_CERT and BULWARK_TLS_KEY,
    /// BULWARK_TLS=auto, or a TLS-terminating proxy in front named by BULWARK_TRUSTED_PROXIES.
    #[arg(long, env = "BULWARK_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// The served certificate chain (PEM). With BULWARK_TLS_KEY: HTTPS only (TLS 1.2 and 1.3);
    /// reloaded when the files change and on SIGHUP.
    #[arg(long, env = "BULWARK_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, env = "BULWARK_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// `off`, or `auto`: a self-signed certificate made in the data dir on the first start
    /// (tls-cert.pem, tls-key.pem) and reused; its SHA-256 fingerprint is printed at start.
    #[arg(long, env = "BULWARK_TLS", default_value = "off", value_parser = ["off", "auto"])]
    pub tls: String,
    /// Base of links in mails and the allowed Origin [default: http://<bind>]
    #[arg(long, env = "BULWARK_PUBLIC_URL")]
    pub public_url: Option<Url>,
    /// `smtp://127.0.0.1:2525` (plain, loopback only) or `smtps://user:pass@host:465`. Unset: mail goes to <data dir>/outbox/.
    #[arg(long, env = "BULWARK_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The sender of every mail.
    #[arg(long, env = "BULWARK_MAIL_FROM", default_value = "Bulwark <no-reply@bulwark.localhost>")]
    pub mail_from: String,
    /// Comma-separated CIDRs whose X-Forwarded-For is believed.
    #[arg(long, env = "BULWARK_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpNet>,
    /// Minutes without a request after which a session ends.
    #[arg(long, env = "BULWARK_SESSION_IDLE_MINUTES", default_value_t = 30)]
    pub session_idle_minutes: u64,
    /// Hours after sign-in at which a session ends regardless of use.
    #[arg(long, env = "BULWARK_SESSION_ABSOLUTE_HOURS", default_value_t = 12)]
    pub session_absolute_hours: u64,
    /// Seconds after a password confirmation during which sensitive actions (two-factor setup,
    /// new backup codes) need no new confirmation; 1 to 900.
    #[arg(long, env = "BULWARK_REAUTH_WINDOW_SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=900))]
    pub reauth_window_seconds: u64,
    #[command(flatten)]
    pub vault_refresh: VaultRefreshArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Where the `binance` venue lives (an operator setting; users never choose a URL). Plain
    /// http:// is accepted only for a loopback address, such as `bulwark exchange-sim`.
    #[arg(long, env = "BULWARK_BINANCE_URL", default_value = "https://api.binance.com")]
    pub binance_url: Url,
    /// The paper market: `builtin` (a random walk in this process), `replay:SYMBOL=FILE[,SYMBOL=FILE]`
    /// (one-minute candles in Binance kline CSV order, one per minute), the URL of a shared
    /// `bulwark exchange-sim` (http:// on loopback), or `off`. Default: `builtin` on SQLite, `off` on
    /// PostgreSQL (several nodes cannot share one process's market; give them a URL).
    #[arg(long, env = "BULWARK_PAPER_MARKET")]
    pub paper_market: Option<String>,
    /// tracing filter, e.g. `info` or `server=debug,info`.
    #[arg(long, env = "BULWARK_LOG", default_value = "info")]
    pub log: String,
    #[command(flatten)]
    pub log_format: LogFormatArgs,
    /// The bearer token `GET /metrics` requires (32 to 512 printable characters, e.g. `openssl rand
    /// -hex 32`); prefer the variable to the flag, which other users can see in the process list.
    /// Unset: /metrics answers only loopback peers that are not trusted proxies.
    #[arg(long, env = "BULWARK_METRICS_TOKEN", hide_env_values = true, value_parser = secret_arg)]
    pub metrics_token: Option<SecretArg>,
}

/// The request and connection limits of NET-1 (defaults and reasons in docs/configuration.md).
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Largest request body of the API and the pages, in bytes (413 `body_too_large` above it;
    /// the webhook routes keep their 16 KiB). 1 KiB to 64 MiB.
    #[arg(long, env = "BULWARK_MAX_BODY_BYTES", default_value_t = 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1024..=64 * 1024 * 1024))]
    pub max_body_bytes: u64,
    /// Page and API requests handled at once; one more is answered 503 `overloaded` at once.
    #[arg(long, env = "BULWARK_MAX_IN_FLIGHT", default_value_t = 512,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_in_flight: u64,
    /// Webhook requests handled at once (a pool of their own).
    #[arg(long, env = "BULWARK_WEBHOOK_MAX_IN_FLIGHT", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub webhook_max_in_flight: u64,
    /// Open connections in all; one more is closed at once.
    #[arg(long, env = "BULWARK_MAX_CONNECTIONS", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,
    /// Open connections from one client address (trusted proxies are exempt).
    #[arg(long, env = "BULWARK_MAX_CONNECTIONS_PER_IP", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections_per_ip: u64,
    /// Seconds a connection may take to send a request's headers (slowloris); 1 to 300.
    #[arg(long, env = "BULWARK_HEADER_TIMEOUT_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub header_timeout_seconds: u64,
    /// Seconds a request may take to send its body after its headers (408 `request_timeout`); 1 to 600.
    #[arg(long, env = "BULWARK_BODY_TIMEOUT_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub body_timeout_seconds: u64,
    /// Requests per minute and burst from one client address to the pages and the API, as
    /// PER_MINUTE:BURST (429 `rate_limited` with Retry-After beyond them).
    #[arg(long, env = "BULWARK_RATE_PER_IP", default_value = "6000:1200", value_parser = parse_rate)]
    pub rate_per_ip: server::config::Rate,
    /// Signed-in requests per minute and burst of one account, as PER_MINUTE:BURST.
    #[arg(long, env = "BULWARK_RATE_PER_ACCOUNT", default_value = "6000:1200", value_parser = parse_rate)]
    pub rate_per_account: server::config::Rate,
    /// Seconds a shutdown (SIGTERM, Ctrl-C) waits for requests in flight and for the bot engine to
    /// finish the orders it is sending; 1 to 600.
    #[arg(long, env = "BULWARK_SHUTDOWN_GRACE_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub shutdown_grace_seconds: u64,
}

/// `PER_MINUTE:BURST`, both whole numbers of at least 1.
fn parse_rate(raw: &str) -> Result<server::config::Rate, String> {
    let usage = || format!("`{raw}` is not PER_MINUTE:BURST (two whole numbers from 1, e.g. 3000:600)");
    let (per_minute, burst) = raw.trim().split_once(':').ok_or_else(usage)?;
    let per_minute: u32 = per_minute.trim().parse().map_err(|_| usage())?;
    let burst: u32 = burst.trim().parse().map_err(|_| usage())?;
    if per_minute == 0 || burst == 0 {
        return Err(usage());
    }
    Ok(server::config::Rate { per_minute, burst })
}

impl LimitArgs {
    fn apply(&self, server: &mut server::ServerConfig) {
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        server.max_body_bytes = size(self.max_body_bytes);
        server.max_in_flight = size(self.max_in_flight);
        server.webhook_max_in_flight = size(self.webhook_max_in_flight);
        server.edge.max_connections = size(self.max_connections);
        server.edge.max_connections_per_ip = size(self.max_connections_per_ip);
        server.edge.header_read_timeout = Duration::from_secs(self.header_timeout_seconds);
        server.edge.body_read_timeout = Duration::from_secs(self.body_timeout_seconds);
        server.request_rates.per_ip = self.rate_per_ip;
        server.request_rates.per_account = self.rate_per_account;
        let grace = Duration::from_secs(self.shutdown_grace_seconds);
        server.shutdown_grace = grace;
        server.edge.drain_timeout = grace;
    }
}

/// Configuration after defaults that depend on other values are filled in and checked.
#[derive(Debug)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub bind: SocketAddr,
    pub smtp_url: Option<String>,
    pub root_key_file: PathBuf,
    /// Whether BULWARK_PUBLIC_URL was given; if not, it follows the bound address.
    pub explicit_public_url: bool,
    pub binance_url: Url,
    pub paper_market: PaperMarketSetting,
    pub tls: TlsSetting,
    pub server: server::ServerConfig,
}

/// Where the served certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSetting {
    /// Plain HTTP (loopback, or behind a TLS-terminating proxy).
    Off,
    /// BULWARK_TLS_CERT and BULWARK_TLS_KEY.
    Files(server::TlsFiles),
    /// BULWARK_TLS=auto: self-signed, kept in the data dir.
    Auto,
}

impl Settings {
    /// The bind rule of `serve`: plain HTTP only on loopback, unless a TLS-terminating proxy is
    /// named by BULWARK_TRUSTED_PROXIES.
    ///
    /// # Errors
    /// The refusal, naming the fixes.
    pub fn bind_rule(&self) -> anyhow::Result<()> {
        bind_rule(self.bind, &self.tls, &self.server.trusted_proxies)
    }
}

fn bind_rule(bind: SocketAddr, tls: &TlsSetting, trusted_proxies: &[IpNet]) -> anyhow::Result<()> {
    if !bind.ip().is_loopback() && *tls == TlsSetting::Off && trusted_proxies.is_empty() {
        bail!(
            "refusing to listen on {bind} without TLS: Bulwark serves plain HTTP only on loopback. \
             Set BULWARK_TLS_CERT and BULWARK_TLS_KEY (or BULWARK_TLS=auto for a self-signed certificate), \
             or put a TLS-terminating proxy in front and set BULWARK_TRUSTED_PROXIES, or bind 127.0.0.1."
        );
    }
    Ok(())
}

/// Whether `url` names this machine's loopback interface.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    }
}

/// Where paper accounts trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaperMarketSetting {
    Off,
    /// A seeded random walk per symbol.
    Builtin,
    /// Symbols replaying candle files.
    Replay(Vec<(String, PathBuf)>),
    /// A `bulwark exchange-sim` shared by several nodes.
    Remote(Url),
}

impl PaperMarketSetting {
    /// # Errors
    /// A sentence naming the accepted forms.
    pub fn parse(raw: Option<&str>, postgres: bool) -> anyhow::Result<PaperMarketSetting> {
        let usage = "BULWARK_PAPER_MARKET is `builtin`, `off`, `replay:SYMBOL=FILE[,SYMBOL=FILE...]` or the \
                     http:// URL of a `bulwark exchange-sim` on loopback";
        Ok(match raw.map(str::trim) {
            None | Some("") if postgres => PaperMarketSetting::Off,
            None | Some("" | "builtin") => PaperMarketSetting::Builtin,
            Some("off") => PaperMarketSetting::Off,
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                let url = Url::parse(url).with_context(|| usage.to_owned())?;
                if !(url.scheme() == "https" || is_loopback(&url)) {
                    bail!("{usage}");
                }
                PaperMarketSetting::Remote(url)
            }
            Some(other) => {
                let list = other.strip_prefix("replay:").with_context(|| usage.to_owned())?;
                let mut files = Vec::new();
                for item in list.split(',').filter(|item| !item.trim().is_empty()) {
                    let (symbol, file) = item.split_once('=').with_context(|| usage.to_owned())?;
                    let symbol = symbol.trim().to_ascii_uppercase();
                    if symbol.is_empty() || !symbol.bytes().all(|b| b.is_ascii_alphanumeric()) || file.trim().is_empty()
                    {
                        bail!("{usage}");
                    }
                    files.push((symbol, PathBuf::from(file.trim())));
                }
                if files.is_empty() {
                    bail!("{usage}");
                }
                PaperMarketSetting::Replay(files)
            }
        })
    }
}

impl ServeArgs {
    /// # Errors
    /// When the values contradict each other or a safety rule (see `docs/configuration.md`).
    pub fn resolve(self) -> anyhow::Result<Settings> {
        let tls = self.tls_setting()?;
        bind_rule(self.bind, &tls, &self.trusted_proxies)?;
        self.resolve_with(tls)
    }

    /// Like [`ServeArgs::resolve`] without the bind rule, which `bulwark doctor` reports as a check
    /// of its own (with [`Settings::bind_rule`]) instead of stopping at it.
    ///
    /// # Errors
    /// As `resolve`, but for the bind rule.
    pub fn resolve_for_doctor(self) -> anyhow::Result<Settings> {
        let tls = self.tls_setting()?;
        self.resolve_with(tls)
    }

    fn tls_setting(&self) -> anyhow::Result<TlsSetting> {
        Ok(match (self.tls.as_str(), &self.tls_cert, &self.tls_key) {
            ("auto", Some(_), _) | ("auto", _, Some(_)) => {
                bail!("BULWARK_TLS=auto makes its own certificate: leave BULWARK_TLS_CERT and BULWARK_TLS_KEY unset")
            }
            ("auto", None, None) => TlsSetting::Auto,
            (_, Some(cert), Some(key)) => TlsSetting::Files(server::TlsFiles { cert: cert.clone(), key: key.clone() }),
            (_, None, None) => TlsSetting::Off,
            _ => bail!("BULWARK_TLS_CERT and BULWARK_TLS_KEY go together"),
        })
    }

    fn resolve_with(self, tls: TlsSetting) -> anyhow::Result<Settings> {
        if self.session_idle_minutes == 0 || self.session_absolute_hours == 0 {
            bail!("session timeouts must be positive (BULWARK_SESSION_IDLE_MINUTES, BULWARK_SESSION_ABSOLUTE_HOURS)");
        }
        let database_url = self.storage.database_url();
        if let Some(url) = &self.public_url
            && !matches!(url.scheme(), "http" | "https")
        {
            bail!("BULWARK_PUBLIC_URL must be an http:// or https:// URL");
        }
        // Until the listener is bound, the public URL is provisional: with no BULWARK_PUBLIC_URL it
        // becomes http(s)://<the bound address> (which matters when BULWARK_BIND asks for port 0).
        let explicit_public_url = self.public_url.is_some();
        let scheme = if tls == TlsSetting::Off { "http" } else { "https" };
        let public_url = match self.public_url {
            Some(url) => url,
            None => {
                Url::parse(&format!("{scheme}://{}", self.bind)).context("building the public URL from BULWARK_BIND")?
            }
        };
        let mut server = server::ServerConfig::new(public_url);
        server.session_idle = Duration::from_secs(self.session_idle_minutes * 60);
        server.session_absolute = Duration::from_secs(self.session_absolute_hours * 3600);
        server.reauth_window = Duration::from_secs(self.reauth_window_seconds);
        server.trusted_proxies = self.trusted_proxies;
        server.mail_from = self.mail_from;
        server.vault_refresh = self.vault_refresh.interval();
        self.limits.apply(&mut server);
        if let Some(token) = &self.metrics_token {
            server.metrics_token = Some(
                server::config::MetricsToken::parse(&token.0)
                    .map_err(|err| anyhow::anyhow!("BULWARK_METRICS_TOKEN: {err}"))?,
            );
        }
        let root_key_file = self.storage.root_key_file();
        if !(self.binance_url.scheme() == "https"
            || (self.binance_url.scheme() == "http" && is_loopback(&self.binance_url)))
        {
            bail!("BULWARK_BINANCE_URL must be https://, or http:// to a loopback address (a local simulator)");
        }
        let paper_market =
            PaperMarketSetting::parse(self.paper_market.as_deref(), database_url.starts_with("postgres"))?;
        Ok(Settings {
            paper_market,
            tls,
            binance_url: self.binance_url,
            root_key_file,
            data_dir: self.storage.data_dir,
            database_url,
            bind: self.bind,
            smtp_url: self.smtp_url,
            explicit_public_url,
            server,
        })
    }
}

#[cfg(test)]
mod paper_tests {
    use std::path::PathBuf;

    use super::PaperMarketSetting;

    #[test]
    fn the_paper_market_setting_reads_its_three_forms_and_defaults_by_backend() {
        assert_eq!(PaperMarketSetting::parse(None, false).unwrap(), PaperMarketSetting::Builtin);
        assert_eq!(PaperMarketSetting::parse(None, true).unwrap(), PaperMarketSetting::Off);
        assert_eq!(PaperMarketSetting::parse(Some("builtin"), true).unwrap(), PaperMarketSetting::Builtin);
        assert_eq!(PaperMarketSetting::parse(Some("off"), false).unwrap(), PaperMarketSetting::Off);
        assert_eq!(
            PaperMarketSetting::parse(Some("replay:btcusdt=/tmp/a.csv, ETHUSDT=b.csv"), false).unwrap(),
            PaperMarketSetting::Replay(vec![
                ("BTCUSDT".to_owned(), PathBuf::from("/tmp/a.csv")),
                ("ETHUSDT".to_owned(), PathBuf::from("b.csv"))
            ])
        );
        assert_eq!(
            PaperMarketSetting::parse(Some("http://127.0.0.1:9090"), true).unwrap(),
            PaperMarketSetting::Remote("http://127.0.0.1:9090".parse().unwrap())
        );
        for bad in
            ["replay:", "replay:BTCUSDT", "replay:=x.csv", "http://paper.example.com:9090", "on", "ftp://127.0.0.1"]
        {
            assert!(PaperMarketSetting::parse(Some(bad), false).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use super::{Cli, Command, VaultCommand};

    fn reauth_window(args: &[&str]) -> Result<Duration, String> {
        let cli = Cli::try_parse_from([&["bulwark", "serve"], args].concat()).map_err(|e| e.to_string())?;
        let Command::Serve(serve) = cli.command else { return Err("not serve".to_owned()) };
        Ok(serve.resolve().map_err(|e| e.to_string())?.server.reauth_window)
    }

    #[test]
    fn the_reauth_window_is_five_minutes_unless_set_within_range() {
        assert_eq!(reauth_window(&[]), Ok(Duration::from_secs(300)));
        assert_eq!(reauth_window(&["--reauth-window-seconds", "3"]), Ok(Duration::from_secs(3)));
        assert_eq!(reauth_window(&["--reauth-window-seconds", "900"]), Ok(Duration::from_secs(900)));
        for refused in ["0", "901", "-1", "five"] {
            assert!(reauth_window(&["--reauth-window-seconds", refused]).is_err(), "{refused}");
        }
    }

    #[test]
    fn a_non_loopback_address_needs_tls_or_a_proxy() {
        let resolve = |args: &[&str]| -> Result<super::TlsSetting, String> {
            let cli = Cli::try_parse_from([&["bulwark", "serve"], args].concat()).map_err(|e| e.to_string())?;
            let Command::Serve(serve) = cli.command else { return Err("not serve".to_owned()) };
            let settings = serve.resolve().map_err(|e| e.to_string())?;
            Ok(settings.tls)
        };
        let err = resolve(&["--bind", "0.0.0.0:8443"]).unwrap_err();
        for fix in ["BULWARK_TLS_CERT", "BULWARK_TLS=auto", "BULWARK_TRUSTED_PROXIES", "127.0.0.1"] {
            assert!(err.contains(fix), "{err}");
        }
        assert_eq!(resolve(&["--bind", "0.0.0.0:8443", "--tls", "auto"]), Ok(super::TlsSetting::Auto));
        assert_eq!(
            resolve(&["--bind", "0.0.0.0:8443", "--tls-cert", "c.pem", "--tls-key", "k.pem"]),
            Ok(super::TlsSetting::Files(server::TlsFiles { cert: "c.pem".into(), key: "k.pem".into() }))
        );
        assert_eq!(resolve(&["--bind", "0.0.0.0:8080", "--trusted-proxies", "10.0.0.0/8"]), Ok(super::TlsSetting::Off));
        assert!(resolve(&["--tls-cert", "c.pem"]).is_err(), "a certificate without its key");
        assert!(resolve(&["--tls", "auto", "--tls-cert", "c.pem", "--tls-key", "k.pem"]).is_err());
        assert!(resolve(&["--tls", "on"]).is_err(), "off or auto only");
        assert_eq!(resolve(&[]), Ok(super::TlsSetting::Off));
    }

    #[test]
    fn the_limits_have_their_defaults_and_take_settings_within_range() {
        let server = |args: &[&str]| -> Result<server::ServerConfig, String> {
            let cli = Cli::try_parse_from([&["bulwark", "serve"], args].concat()).map_err(|e| e.to_string())?;
            let Command::Serve(serve) = cli.command else { return Err("not serve".to_owned()) };
            Ok(serve.resolve().map_err(|e| e.to_string())?.server)
        };
        let defaults = server(&[]).unwrap();
        let built_in = server::ServerConfig::new("http://127.0.0.1:8080".parse().unwrap());
        assert_eq!(defaults.max_body_bytes, built_in.max_body_bytes);
        assert_eq!(defaults.max_in_flight, built_in.max_in_flight);
        assert_eq!(defaults.webhook_max_in_flight, built_in.webhook_max_in_flight);
        assert_eq!(defaults.request_rates, built_in.request_rates);
        assert_eq!(defaults.shutdown_grace, built_in.shutdown_grace);
        assert_eq!(defaults.edge.max_connections, built_in.edge.max_connections);
        assert_eq!(defaults.edge.max_connections_per_ip, built_in.edge.max_connections_per_ip);
        assert_eq!(defaults.edge.header_read_timeout, built_in.edge.header_read_timeout);
        assert_eq!(defaults.edge.body_read_timeout, built_in.edge.body_read_timeout);
        assert_eq!(defaults.edge.drain_timeout, built_in.edge.drain_timeout);

        let set = server(&[
            "--max-body-bytes",
            "2048",
            "--max-in-flight",
            "8",
            "--webhook-max-in-flight",
            "4",
            "--max-connections",
            "100",
            "--max-connections-per-ip",
            "5",
            "--header-timeout-seconds",
            "3",
            "--body-timeout-seconds",
            "7",
            "--rate-per-ip",
            "120:20",
            "--rate-per-account",
            " 60 : 5 ",
            "--shutdown-grace-seconds",
            "9",
        ])
        .unwrap();
        assert_eq!((set.max_body_bytes, set.max_in_flight, set.webhook_max_in_flight), (2048, 8, 4));
        assert_eq!((set.edge.max_connections, set.edge.max_connections_per_ip), (100, 5));
        assert_eq!(set.edge.header_read_timeout, Duration::from_secs(3));
        assert_eq!(set.edge.body_read_timeout, Duration::from_secs(7));
        assert_eq!(set.request_rates.per_ip, server::config::Rate { per_minute: 120, burst: 20 });
        assert_eq!(set.request_rates.per_account, server::config::Rate { per_minute: 60, burst: 5 });
        assert_eq!((set.shutdown_grace, set.edge.drain_timeout), (Duration::from_secs(9), Duration::from_secs(9)));

        for (flag, refused) in [
            ("--max-body-bytes", "100"),
            ("--max-in-flight", "0"),
            ("--header-timeout-seconds", "0"),
            ("--body-timeout-seconds", "601"),
            ("--rate-per-ip", "120"),
            ("--rate-per-ip", "0:5"),
            ("--rate-per-account", "10:0"),
            ("--rate-per-account", "ten:5"),
            ("--shutdown-grace-seconds", "0"),
        ] {
            let err = server(&[flag, refused]).err().unwrap_or_else(|| panic!("{flag} {refused} was taken"));
            assert!(err.contains(flag), "{flag} {refused}: {err}");
        }
    }

    #[test]
    fn the_log_format_is_text_unless_json_and_a_bad_one_names_the_variable() {
        let format = |args: &[&str]| -> Result<super::LogFormat, String> {
            let cli = Cli::try_parse_from([&["bulwark", "serve"], args].concat()).map_err(|e| e.to_string())?;
            let Command::Serve(serve) = cli.command else { return Err("not serve".to_owned()) };
            Ok(serve.log_format.format)
        };
        assert_eq!(format(&[]), Ok(super::LogFormat::Text));
        assert_eq!(format(&["--log-format", "json"]), Ok(super::LogFormat::Json));
        assert_eq!(format(&["--log-format", "text"]), Ok(super::LogFormat::Text));
        let err = format(&["--log-format", "xml"]).unwrap_err();
        assert!(err.contains("BULWARK_LOG_FORMAT"), "{err}");
        let cli = Cli::try_parse_from(["bulwark", "exchange-sim", "--log-format", "json"]).unwrap();
        let Command::ExchangeSim(sim) = cli.command else { panic!("not exchange-sim") };
        assert_eq!(sim.log_format.format, super::LogFormat::Json);
    }

    #[test]
    fn the_metrics_token_is_checked_and_never_repeated() {
        let token = |args: &[&str]| -> Result<Option<String>, String> {
            let cli = Cli::try_parse_from([&["bulwark", "serve"], args].concat()).map_err(|e| e.to_string())?;
            let Command::Serve(serve) = cli.command else { return Err("not serve".to_owned()) };
            let settings = serve.resolve().map_err(|e| e.to_string())?;
            Ok(settings.server.metrics_token.map(|t| format!("{t:?}")))
        };
        assert_eq!(token(&[]), Ok(None));
        let good = "0123456789abcdef0123456789abcdef";
        assert_eq!(token(&["--metrics-token", good]), Ok(Some("MetricsToken(***)".to_owned())));
        for bad in ["short-but-secret", "0123456789abcdef 0123456789abcdef"] {
            let err = token(&["--metrics-token", bad]).unwrap_err();
            assert!(err.contains("BULWARK_METRICS_TOKEN"), "{err}");
            assert!(!err.contains(bad), "the refusal repeats the token: {err}");
        }
    }

    #[test]
    fn the_vault_refresh_is_thirty_seconds_unless_set_within_range() {
        let refresh = |args: &[&str]| -> Result<Duration, String> {
            let cli = Cli::try_parse_from([&["bulwark", "serve"], args].concat()).map_err(|e| e.to_string())?;
            let Command::Serve(serve) = cli.command else { return Err("not serve".to_owned()) };
            Ok(serve.resolve().map_err(|e| e.to_string())?.server.vault_refresh)
        };
        assert_eq!(refresh(&[]), Ok(Duration::from_secs(30)));
        assert_eq!(refresh(&["--vault-refresh-seconds", "2"]), Ok(Duration::from_secs(2)));
        for refused in ["0", "3601", "soon"] {
            assert!(refresh(&["--vault-refresh-seconds", refused]).is_err(), "{refused}");
        }
        let cli =
            Cli::try_parse_from(["bulwark", "vault", "--vault-refresh-seconds", "5", "rotate", "--wait"]).unwrap();
        let Command::Vault(vault) = cli.command else { panic!("not vault") };
        assert_eq!(vault.refresh.interval(), Duration::from_secs(5));
        assert!(matches!(vault.command, VaultCommand::Rotate { wait: true }));
    }
}
