//! The `bulwark` binary: reads configuration (flags and `BULWARK_*` variables), picks the storage
//! backend and the mailer, and runs the chosen subcommand. The only crate that reads the
//! environment or names a concrete adapter (ARCHITECTURE.md invariants 6 and the layer rule).

mod config;
mod doctor;

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;

use config::{Cli, Command, ExchangeSimArgs, ServeArgs, VaultArgs, VaultCommand};

fn main() -> anyhow::Result<()> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // `doctor` reports a configuration that does not parse as a FAIL line naming the variable.
        Err(err)
            if std::env::args().nth(1).as_deref() == Some("doctor")
                && !matches!(
                    err.kind(),
                    clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
                ) =>
        {
            doctor::parse_failure(&err);
            std::process::exit(1);
        }
        Err(err) => err.exit(),
    };
    match cli.command {
        Command::Doctor(args) => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            if !runtime.block_on(doctor::run(*args)) {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Serve(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(serve(*args))
        }
        Command::Vault(args) => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(vault_command(args))
        }
        Command::ExchangeSim(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(exchange_sim(*args))
        }
    }
}

/// The wall clock, for production. Tests pass a fake one.
#[derive(Debug)]
struct SystemClock;

impl domain::Clock for SystemClock {
    fn now(&self) -> domain::Timestamp {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        domain::Timestamp::from_unix_millis(millis)
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(&args.log, args.log_format.format);
    no_core_dumps();
    let settings = args.resolve()?;
    let fresh = !settings.data_dir.exists();
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating the data dir {}", settings.data_dir.display()))?;
    #[cfg(unix)]
    if fresh {
        // The data dir holds the database (password hashes, the audit log) and the mail outbox
        // (single-use links): only its owner may read it.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&settings.data_dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {}", settings.data_dir.display()))?;
    }

    let tls = match &settings.tls {
        config::TlsSetting::Off => None,
        config::TlsSetting::Files(files) => Some(files.clone()),
        config::TlsSetting::Auto => {
            let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
            if !settings.bind.ip().is_unspecified() && !settings.bind.ip().is_loopback() {
                names.push(settings.bind.ip().to_string());
            }
            let (files, fingerprint) = server::edge::self_signed(&settings.data_dir, names)
                .with_context(|| format!("the self-signed certificate in {}", settings.data_dir.display()))?;
            tracing::info!(
                cert = %files.cert.display(),
                %fingerprint,
                "BULWARK_TLS=auto: serving a self-signed certificate; a browser warns about it: \
                 accept it only if it shows SHA-256 fingerprint {fingerprint}"
            );
            Some(files)
        }
    };

    let store = connect_store(&settings.database_url).await?;

    let mailer: Arc<dyn mail::Mailer> = match &settings.smtp_url {
        Some(url) => {
            let smtp = mail::SmtpMailer::new(url, &settings.server.mail_from)?;
            tracing::info!(mailer = ?smtp, "mail: SMTP");
            Arc::new(smtp)
        }
        None => {
            let outbox = mail::OutboxMailer::new(settings.data_dir.join("outbox"), &settings.server.mail_from)?;
            tracing::info!(dir = %outbox.dir().display(), "mail: no BULWARK_SMTP_URL, so every mail is written as an .eml file into the outbox folder");
            Arc::new(outbox)
        }
    };

    let clock: Arc<dyn domain::Clock> = Arc::new(SystemClock);
    let vault =
        open_vault(&settings.root_key_file, store.clone(), clock.clone(), settings.server.vault_refresh).await?;
    let binance = exchange_binance::BinanceConfig::new(settings.binance_url.clone());
    let binance = Arc::new(exchange_binance::BinanceClient::new(binance, clock.clone())?);
    tracing::info!(url = %settings.binance_url, "venue binance");
    let mut venue_list: Vec<Arc<dyn exchange::Venues>> =
        vec![Arc::new(exchange_binance::BinanceVenue { name: "binance", client: binance })];
    let paper_venue = |url: url::Url| -> anyhow::Result<Arc<dyn exchange::Venues>> {
        let client = exchange_binance::BinanceClient::new(exchange_binance::BinanceConfig::new(url), clock.clone())?;
        Ok(Arc::new(exchange_binance::BinanceVenue { name: exchange_sim::PAPER_VENUE, client: Arc::new(client) }))
    };
    let paper: Option<Arc<dyn exchange::PaperMarket>> =
        if let config::PaperMarketSetting::Remote(url) = &settings.paper_market {
            let remote = exchange_sim::RemotePaperMarket::new(url.clone())?;
            remote.ping().await.with_context(|| format!("the paper market at {url} does not answer"))?;
            venue_list.push(paper_venue(url.clone())?);
            tracing::info!(%url, "paper market: shared exchange-sim");
            Some(Arc::new(remote))
        } else if let Some(paper) = paper_market(&settings.data_dir, &settings.paper_market).await? {
            let paper = Arc::new(paper);
            venue_list.push(paper_venue(url::Url::parse(&paper.base_url()).context("the paper market's URL")?)?);
            Some(paper)
        } else {
            None
        };
    let venues: Arc<dyn exchange::Venues> = Arc::new(exchange::VenueSet(venue_list));
    let deps = server::AppDeps {
        store,
        mailer,
        clock,
        random: Arc::new(auth::OsRandom),
        vault: Arc::new(vault),
        venues,
        paper,
    };
    let listener = TcpListener::bind(settings.bind).await.with_context(|| format!("binding {}", settings.bind))?;
    let local = listener.local_addr()?;
    let mut config = settings.server;
    config.tls = tls;
    config.node_id = node_id(&settings.data_dir)?;
    tracing::info!(node = %config.node_id, "bot leases are held under this node id");
    if !settings.explicit_public_url {
        let scheme = if config.tls.is_some() { "https" } else { "http" };
        config.public_url = url::Url::parse(&format!("{scheme}://{local}"))?;
    }
    let public_url = config.public_url.clone();
    let state = server::AppState::new(config, deps)?;
    tracing::info!(address = %local, public_url = %public_url, "Bulwark is listening; open {public_url}");
    server::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// This node's name in bot leases, kept in `<data dir>/node-id` and drawn at random on the first
/// start. Persisted, so a node restarted after a crash takes its own leases back at once instead of
/// waiting `bot_lease` (30 s) for them to expire; random per data dir, so nodes sharing one
/// PostgreSQL database (each with its own data dir) never run the same bot. A data dir copied to
/// make another node must leave this file out.
fn node_id(data_dir: &std::path::Path) -> anyhow::Result<String> {
    use std::io::Write as _;
    let path = data_dir.join("node-id");
    let read = |path: &std::path::Path| -> anyhow::Result<String> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let id = text.trim();
        let hex = id.strip_prefix("node-").unwrap_or_default();
        anyhow::ensure!(
            hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{} does not hold a node id (node- and 32 hex digits); delete it to draw a new one",
            path.display()
        );
        Ok(id.to_owned())
    };
    if path.exists() {
        return read(&path);
    }
    let mut bytes = [0u8; 16];
    auth::Random::fill(&auth::OsRandom, &mut bytes);
    let id = format!("node-{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
    // Written whole to a file of its own, then linked into place: a crash never leaves a partial
    // node-id, and of two processes starting on one data dir the second reads the first one's.
    let temporary = data_dir.join(format!("{id}.tmp"));
    let mut file = std::fs::File::create(&temporary).with_context(|| format!("creating {}", temporary.display()))?;
    file.write_all(format!("{id}\n").as_bytes())?;
    file.sync_all()?;
    drop(file);
    let linked = std::fs::hard_link(&temporary, &path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(id),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => read(&path),
        Err(err) => Err(err).with_context(|| format!("creating {}", path.display())),
    }
}

async fn connect_store(url: &str) -> anyhow::Result<Arc<dyn store::Store>> {
    Ok(if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        tracing::info!("storage: PostgreSQL");
        Arc::new(store_postgres::PgStore::connect(url).await?)
    } else if url.starts_with("sqlite:") {
        tracing::info!(url = %url, "storage: SQLite");
        Arc::new(store_sqlite::SqliteStore::connect(url).await?)
    } else {
        anyhow::bail!("BULWARK_DATABASE_URL must start with sqlite: or postgres://");
    })
}

/// `bulwark vault status` (reads the ring and the sealed secrets; writes nothing, never creates a
/// root key or a key-encryption key) and `bulwark vault rotate`. The report goes to stdout, logs
/// to stderr (dev-notes rule 14).
async fn vault_command(args: VaultArgs) -> anyhow::Result<()> {
    init_logging_to_stderr("warn", config::LogFormat::Text);
    let store = connect_store(&args.storage.database_url()).await?;
    let path = args.storage.root_key_file();
    match args.command {
        VaultCommand::Status => vault_status(&*store, &path).await,
        VaultCommand::Rotate { wait } => vault_rotate(store, &path, args.refresh.interval(), wait).await,
    }
}

async fn vault_status(store: &dyn store::Store, path: &std::path::Path) -> anyhow::Result<()> {
    use std::io::Write as _;
    let keks = store.vault_keks().await?;
    // Each blob's header against the version recorded beside it: rotation trusts the column.
    let (mut unreadable, mut mismatched) = (0usize, 0usize);
    for (recorded, blob) in store.sealed_blobs().await? {
        match vault::envelope::kek_version_of(&blob) {
            Ok(version) if version == recorded => {}
            Ok(_) => mismatched += 1,
            Err(_) => unreadable += 1,
        }
    }
    let state = match read_root_key(path)? {
        None => format!("sealed: no root key file at {}", path.display()),
        Some(root) => {
            if keks.is_empty() {
                "no key ring yet: `bulwark serve` creates it on first start".to_owned()
            } else if server::live_vault::ring_from_records(&root, &keks).is_ok() {
                format!("unsealed: {} opens the key ring", path.display())
            } else {
                format!("sealed: {} does not open the key ring", path.display())
            }
        }
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "vault: {state}")?;
    writeln!(out, "{:<8}{:<14}{:<26}{:<26}sealed secrets", "version", "state", "created", "demoted")?;
    for kek in &keks {
        writeln!(
            out,
            "{:<8}{:<14}{:<26}{:<26}{}",
            kek.version,
            kek.state.as_str(),
            kek.created_at.to_rfc3339(),
            kek.demoted_at.map_or_else(|| "-".to_owned(), domain::Timestamp::to_rfc3339),
            store.count_blobs_with_kek(kek.version).await?
        )?;
    }
    if keks.iter().any(|k| k.state == store::KekState::DecryptOnly) {
        writeln!(
            out,
            "a rotation is unfinished: `bulwark serve` rewraps what names a decrypt_only key and then destroys it"
        )?;
    }
    if unreadable > 0 {
        writeln!(out, "{unreadable} sealed values do not parse as vault blobs")?;
    }
    if mismatched > 0 {
        writeln!(out, "{mismatched} sealed values name another key version than the one recorded beside them")?;
    }
    Ok(())
}

/// `bulwark vault rotate [--wait]`: needs the root key that opens the ring (it wraps the new key).
async fn vault_rotate(
    store: Arc<dyn store::Store>,
    path: &std::path::Path,
    refresh: std::time::Duration,
    wait: bool,
) -> anyhow::Result<()> {
    use server::live_vault::RingError;
    use std::io::Write as _;
    let Some(root) = read_root_key(path)? else {
        anyhow::bail!(
            "no root key file at {}: rotating needs the key that opens the key ring (BULWARK_ROOT_KEY_FILE)",
            path.display()
        );
    };
    if store.vault_keks().await?.is_empty() {
        anyhow::bail!("no key ring yet: `bulwark serve` creates it on first start");
    }
    let clock: Arc<dyn domain::Clock> = Arc::new(SystemClock);
    let keys = server::LiveVault::load(store, clock, root, refresh).await.map_err(|err| match err {
        RingError::Vault(_) => anyhow::anyhow!(
            "{} does not open this database's key ring (another key file?); nothing was rotated",
            path.display()
        ),
        other => other.into(),
    })?;
    let version = keys.rotate().await?;
    let previous = version - 1;
    let mut out = std::io::stdout().lock();
    writeln!(out, "vault: key-encryption key {version} is active; {previous} is decrypt-only")?;
    if !wait {
        writeln!(
            out,
            "`bulwark serve` rewraps the sealed secrets onto {version} in the background and destroys {previous} \
             once nothing names it and {} s have passed (`bulwark vault status` shows the progress)",
            keys.destroy_grace().as_secs()
        )?;
        return Ok(());
    }
    let report = keys.finish_rotations().await?;
    writeln!(out, "rewrapped {} sealed secrets onto key {version}", report.rewrapped)?;
    if report.changed > 0 {
        writeln!(out, "{} changed meanwhile and were left as they are", report.changed)?;
    }
    if report.failed > 0 {
        writeln!(out, "{} do not open (corrupt or tampered; see the log) and keep their key", report.failed)?;
    }
    for destroyed in &report.destroyed {
        writeln!(out, "key-encryption key {destroyed} destroyed")?;
    }
    for waiting in &report.waiting {
        if waiting.remaining > 0 {
            writeln!(
                out,
                "key {} still seals {} secrets; `bulwark serve` keeps rewrapping and destroys it when none is left",
                waiting.version, waiting.remaining
            )?;
        } else {
            writeln!(
                out,
                "key {} is no longer used; `bulwark serve` destroys it after {} (grace period: every node reloads the ring first)",
                waiting.version,
                waiting.destroy_after.to_rfc3339()
            )?;
        }
    }
    Ok(())
}

/// SEC-6: a crash must not write the process memory (which holds unsealed keys while it signs) to a
/// core file, and no other process of the same user may attach to read it: core size limit 0 and
/// `PR_SET_DUMPABLE` 0. Failing to set either is logged, not fatal.
fn no_core_dumps() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};
        if let Err(err) = setrlimit(Resource::Core, Rlimit { current: Some(0), maximum: Some(0) }) {
            tracing::warn!(error = %err, "could not disable core dumps");
        }
        if let Err(err) = set_dumpable_behavior(DumpableBehavior::NotDumpable) {
            tracing::warn!(error = %err, "could not mark the process non-dumpable");
        }
    }
}

/// The vault of this node (SEC-3). On the first start of a database (no key ring yet) the root key
/// file is created if missing and key-encryption key version 1 is written, wrapped by it. Later, a
/// missing root key file, or one that does not open the ring, leaves the node *sealed*: everything
/// works except sealing and opening secrets, and `/healthz` says so. A missing file is never
/// replaced once the database has a ring. An unsealed node keeps the root key in memory to follow
/// key rotations (SEC-4).
async fn open_vault(
    path: &std::path::Path,
    store: Arc<dyn store::Store>,
    clock: Arc<dyn domain::Clock>,
    refresh: std::time::Duration,
) -> anyhow::Result<server::LiveVault> {
    use server::live_vault::RingError;
    let keks = store.vault_keks().await?;
    let root = match read_root_key(path)? {
        Some(root) => root,
        None if keks.is_empty() => create_root_key(path)?,
        None => {
            tracing::error!(file = %path.display(), "the root key file is missing: starting SEALED; two-factor codes cannot be checked until it is restored");
            return Ok(server::LiveVault::sealed(store, clock, refresh));
        }
    };
    if keks.is_empty() {
        let first = vault::envelope::Kek::generate(1)?;
        if !store.insert_first_kek(&first.wrap(&root)?, clock.now()).await? {
            tracing::info!("another node wrote the first key-encryption key; using it");
        }
    }
    match server::LiveVault::load(store.clone(), clock.clone(), root, refresh).await {
        Ok(live) => {
            tracing::info!(file = %path.display(), active_kek = ?live.vault().active_version(), "vault unsealed");
            Ok(live)
        }
        Err(RingError::Vault(err)) => {
            tracing::error!(file = %path.display(), error = %err, "the root key does not open this database's key ring (another key file?): starting SEALED");
            Ok(server::LiveVault::sealed(store, clock, refresh))
        }
        Err(other) => Err(other.into()),
    }
}

/// The root key from its file, or `None` when the file does not exist.
fn read_root_key(path: &std::path::Path) -> anyhow::Result<Option<vault::RootKey>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(path)?.permissions().mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(file = %path.display(), mode = format!("{:o}", mode & 0o777), "the root key file is readable by others; chmod 600 it");
                }
            }
            let text = zeroize::Zeroizing::new(text);
            let key = vault::RootKey::from_file_text(&text)
                .with_context(|| format!("reading the root key {}", path.display()))?;
            Ok(Some(key))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading the root key {}", path.display())),
    }
}

/// Creates the root key file with mode 0600, never overwriting one.
fn create_root_key(path: &std::path::Path) -> anyhow::Result<vault::RootKey> {
    use std::io::Write as _;
    let key = vault::RootKey::generate()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("creating the root key file {}", path.display()))?;
    file.write_all(key.to_file_text().as_bytes())?;
    file.sync_all()?;
    tracing::info!(file = %path.display(), "created a new root key; back it up apart from the database");
    Ok(key)
}

fn init_logging(filter: &str, format: config::LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    match format {
        config::LogFormat::Text => logs.with_ansi(ansi).init(),
        config::LogFormat::Json => logs.json().flatten_event(true).with_current_span(true).with_span_list(true).init(),
    }
}

/// Logging for report-style subcommands: stdout carries their output (dev-notes rule 14).
fn init_logging_to_stderr(filter: &str, format: config::LogFormat) {
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_target(false)
        .with_writer(std::io::stderr);
    match format {
        config::LogFormat::Text => logs.with_ansi(ansi).init(),
        config::LogFormat::Json => logs.json().flatten_event(true).with_current_span(true).with_span_list(true).init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// The paper market: an exchange-sim in this process, on a loopback port of its own, with a seeded
/// random walk per symbol (or the configured candle replays), kept in `<data dir>/paper-market.json`
/// across restarts. Paper accounts are opened in it and used through the Binance adapter like real
/// keys. `None` when it is off.
async fn paper_market(
    data_dir: &std::path::Path,
    setting: &config::PaperMarketSetting,
) -> anyhow::Result<Option<exchange_sim::ExchangeSim>> {
    use exchange_sim::{Candle, PricePath, SimConfig, SimSymbol};
    use rust_decimal::Decimal;

    let mut seed = [0u8; 8];
    auth::Random::fill(&auth::OsRandom, &mut seed);
    let mut config = SimConfig::new(u64::from_le_bytes(seed));
    match setting {
        config::PaperMarketSetting::Off | config::PaperMarketSetting::Remote(_) => {
            tracing::info!(
                "paper market: off (BULWARK_PAPER_MARKET=off, or PostgreSQL without BULWARK_PAPER_MARKET=builtin)"
            );
            return Ok(None);
        }
        config::PaperMarketSetting::Builtin => {
            let walk = PricePath::RandomWalk { volatility: Decimal::new(1, 3) };
            for (symbol, base, price, step) in [
                ("BTCUSDT", "BTC", Decimal::new(60_000, 0), Decimal::new(1, 5)),
                ("ETHUSDT", "ETH", Decimal::new(3_000, 0), Decimal::new(1, 4)),
                ("BNBUSDT", "BNB", Decimal::new(600, 0), Decimal::new(1, 3)),
                ("SOLUSDT", "SOL", Decimal::new(150, 0), Decimal::new(1, 3)),
            ] {
                let mut rules = SimSymbol::new(symbol, base, "USDT", price);
                rules.step_size = step;
                rules.min_qty = step;
                rules.path = walk.clone();
                config.symbols.push(rules);
            }
        }
        config::PaperMarketSetting::Replay(files) => {
            for (symbol, file) in files {
                let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
                let candles = Candle::parse_csv(&text).map_err(|err| anyhow::anyhow!("{}: {err}", file.display()))?;
                let first = candles.first().with_context(|| format!("{} holds no candles", file.display()))?;
                let quote = ["USDT", "USDC", "FDUSD", "BTC", "ETH", "EUR"]
                    .into_iter()
                    .find(|q| symbol.len() > q.len() && symbol.ends_with(q))
                    .with_context(|| format!("cannot tell the quote asset of {symbol}"))?;
                let mut rules = SimSymbol::new(symbol, &symbol[..symbol.len() - quote.len()], quote, first.open);
                rules.path = PricePath::Replay { candles: candles.into() };
                config.symbols.push(rules);
            }
        }
    }
    let state = data_dir.join("paper-market.json");
    let fresh = !state.exists();
    let template = config.clone();
    config.state_file = Some(state.clone());
    config.validate().map_err(|err| anyhow::anyhow!("the paper market: {err}"))?;
    let sim = exchange_sim::ExchangeSim::spawn(config).await.context("starting the paper market")?;
    if fresh && matches!(setting, config::PaperMarketSetting::Builtin) {
        backfill_paper_history(template, &sim).await?;
    }
    let symbols: Vec<String> = match setting {
        config::PaperMarketSetting::Replay(files) => files.iter().map(|(s, _)| s.clone()).collect(),
        _ => vec!["BTCUSDT".into(), "ETHUSDT".into(), "BNBUSDT".into(), "SOLUSDT".into()],
    };
    tracing::info!(state = %state.display(), symbols = %symbols.join(","), "paper market: on");
    Ok(Some(sim))
}

/// A new built-in market gets the last hour of its walk at once, so the first chart a newcomer sees
/// is not empty: a second simulator with the same rules and a clock an hour behind walks that
/// hour, and its candles are applied to the real market (which has no orders yet).
async fn backfill_paper_history(
    mut template: exchange_sim::SimConfig,
    sim: &exchange_sim::ExchangeSim,
) -> anyhow::Result<()> {
    const HOUR_MS: i64 = 60 * 60_000;
    template.state_file = None;
    template.frozen_clock_ms = Some(sim.server_time_ms() - HOUR_MS);
    let symbols: Vec<String> = template.symbols.iter().map(|s| s.symbol.clone()).collect();
    let past = exchange_sim::ExchangeSim::spawn(template).await.context("walking the paper market's last hour")?;
    past.advance_clock_ms(HOUR_MS);
    for symbol in &symbols {
        for candle in past.candles(symbol) {
            sim.apply_candle(symbol, &candle).map_err(|err| anyhow::anyhow!("backfilling {symbol}: {err}"))?;
        }
    }
    Ok(())
}

/// `bulwark exchange-sim`: one account on a Binance-compatible exchange on loopback. Prints the
/// base URL on stdout once listening (tests and scripts read it there); logs go to stderr.
async fn exchange_sim(args: ExchangeSimArgs) -> anyhow::Result<()> {
    use std::io::Write as _;

    init_logging_to_stderr("info", args.log_format.format);
    if !args.bind.ip().is_loopback() {
        anyhow::bail!("exchange-sim listens on loopback only");
    }
    let (config, market) = exchange_sim_config(&args)?;
    let listener = TcpListener::bind(args.bind).await.with_context(|| format!("binding {}", args.bind))?;
    let url = format!("http://{}", listener.local_addr()?);
    let state_note = match &args.state {
        Some(path) if path.exists() => {
            format!("state: {} (loaded; saved every {} s and on shutdown)", path.display(), args.state_every)
        }
        Some(path) => format!("state: {} (new; saved every {} s and on shutdown)", path.display(), args.state_every),
        None => "state: not kept (no --state)".to_owned(),
    };
    let accounts: Vec<String> = config.accounts.iter().map(|account| account.api_key.clone()).collect();
    let sim = exchange_sim::ExchangeSim::start(config, listener)?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "exchange-sim listening on {url}")?;
        match &args.accounts {
            // The simulator's own test account, chosen on its command line: printed so a newcomer
            // can paste it into Bulwark. No real exchange secret ever passes here.
            None => {
                writeln!(out, "account: api key {}", args.api_key)?;
                writeln!(out, "         secret  {} (HMAC)", args.api_secret)?;
                writeln!(out, "         balances {}", args.balances)?;
            }
            Some(file) => writeln!(out, "accounts from {}: {}", file.display(), accounts.join(", "))?,
        }
        for line in &market {
            writeln!(out, "market: {line}")?;
        }
        writeln!(out, "{state_note}")?;
        if let Some(faults) = &args.faults {
            writeln!(out, "faults: {faults}")?;
        }
        out.flush()?;
    }
    let mut sim = sim;
    tokio::select! {
        () = shutdown_signal() => {}
        () = sim.closed() => {}
    }
    sim.stop().context("writing the state file on shutdown")?;
    if let Some(path) = &args.state {
        tracing::info!(path = %path.display(), "exchange-sim: state saved");
    }
    Ok(())
}

/// The simulator's configuration from the command line, and one line per symbol saying how its
/// price moves.
fn exchange_sim_config(args: &ExchangeSimArgs) -> anyhow::Result<(exchange_sim::SimConfig, Vec<String>)> {
    use std::str::FromStr;

    use exchange_sim::{Candle, FaultRates, PricePath, SimAccount, SimConfig, SimKey, SimPermissions, SimSymbol};
    use rust_decimal::Decimal;

    let pairs = |raw: &str| -> anyhow::Result<Vec<(String, Decimal)>> {
        raw.split(',')
            .filter(|item| !item.trim().is_empty())
            .map(|item| {
                let (name, value) = item.split_once('=').with_context(|| format!("{item:?} is not NAME=AMOUNT"))?;
                let value = Decimal::from_str(value.trim()).with_context(|| format!("{value:?} is not a number"))?;
                Ok((name.trim().to_ascii_uppercase(), value))
            })
            .collect()
    };
    let prices = pairs(&args.start_prices)?;
    // `--volatility 0.001,ETHUSDT=0.002`: a bare number for every symbol, pairs for single ones.
    let mut default_volatility = Decimal::new(1, 3);
    let mut volatilities = Vec::new();
    for item in args.volatility.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        match item.split_once('=') {
            None => {
                default_volatility =
                    Decimal::from_str(item).with_context(|| format!("--volatility {item:?} is not a number"))?
            }
            Some(_) => volatilities.extend(pairs(item)?),
        }
    }
    let mut replays = Vec::new();
    for item in &args.replay {
        let (symbol, file) = item.split_once('=').with_context(|| format!("--replay {item:?} is not SYMBOL=FILE"))?;
        let text = std::fs::read_to_string(file).with_context(|| format!("reading the candle file {file}"))?;
        let candles = Candle::parse_csv(&text).with_context(|| format!("--replay {file}"))?;
        replays.push((symbol.trim().to_ascii_uppercase(), file.to_owned(), candles));
    }

    let mut config = SimConfig::new(args.seed);
    let mut market = Vec::new();
    for symbol in args.symbols.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let symbol = symbol.to_ascii_uppercase();
        let quote = ["USDT", "USDC", "FDUSD", "BUSD", "EUR", "TRY", "BTC", "ETH", "BNB"]
            .into_iter()
            .find(|q| symbol.len() > q.len() && symbol.ends_with(q))
            .with_context(|| format!("cannot tell the quote asset of {symbol}"))?;
        let base = &symbol[..symbol.len() - quote.len()];
        let price = prices.iter().find(|(name, _)| *name == symbol).map_or(Decimal::new(100, 0), |(_, p)| *p);
        let mut rules = SimSymbol::new(&symbol, base, quote, price);
        if let Some((_, file, candles)) = replays.iter().find(|(name, _, _)| *name == symbol) {
            market.push(format!("{symbol} replays {} candles from {file}", candles.len()));
            rules.path = PricePath::Replay { candles: candles.clone().into() };
        } else {
            let volatility =
                volatilities.iter().find(|(name, _)| *name == symbol).map_or(default_volatility, |(_, v)| *v);
            if volatility.is_zero() {
                market.push(format!("{symbol} stays at {price}"));
            } else {
                market.push(format!("{symbol} random walk from {price}, volatility {volatility} a step"));
                rules.path = PricePath::RandomWalk { volatility };
            }
        }
        config.symbols.push(rules);
    }
    if let Some((symbol, _, _)) = replays.iter().find(|(name, _, _)| !config.symbols.iter().any(|s| s.symbol == *name))
    {
        anyhow::bail!("--replay names {symbol}, which --symbols does not list");
    }
    if let Some(speed) = &args.speed {
        let speed = Decimal::from_str(speed).with_context(|| format!("--speed {speed:?} is not a number"))?;
        anyhow::ensure!(speed > Decimal::ZERO, "--speed must be above 0");
        let step_ms = (Decimal::from(1_000) / speed).round().max(Decimal::ONE);
        let step_ms = u64::try_from(step_ms).context("--speed is too small")?;
        config.step_every = std::time::Duration::from_millis(step_ms);
        market.push(format!("one step every {step_ms} ms"));
    } else {
        market.push("one step a minute".to_owned());
    }
    match &args.accounts {
        Some(file) => {
            let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
            config.accounts =
                SimAccount::parse_toml_list(&text).with_context(|| format!("--accounts {}", file.display()))?;
        }
        None => config.accounts.push(SimAccount {
            api_key: args.api_key.clone(),
            key: SimKey::Hmac { secret: args.api_secret.clone() },
            permissions: SimPermissions {
                withdrawals: args.withdrawals,
                ip_restricted: !args.no_ip_restriction,
                spot_trading: !args.no_trading,
                ..SimPermissions::trading()
            },
            balances: pairs(&args.balances)?,
        }),
    }
    config.state_file.clone_from(&args.state);
    config.state_save_every = std::time::Duration::from_secs(args.state_every);
    if let Some(spec) = &args.faults {
        config.fault_rates = FaultRates::parse(spec)?;
    }
    config.validate().map_err(|err| anyhow::anyhow!("{err}"))?;
    Ok((config, market))
}
