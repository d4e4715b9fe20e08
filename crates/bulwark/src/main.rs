//! The `bulwark` binary: reads configuration (flags and `BULWARK_*` variables), picks the storage
//! backend and the mailer, and runs the chosen subcommand. The only crate that reads the
//! environment or names a concrete adapter (ARCHITECTURE.md invariants 6 and the layer rule).

mod config;

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;

use config::{Cli, Command, ServeArgs};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(serve(args))
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
    init_logging(&args.log);
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

    let store: Arc<dyn store::Store> =
        if settings.database_url.starts_with("postgres://") || settings.database_url.starts_with("postgresql://") {
            tracing::info!("storage: PostgreSQL");
            Arc::new(store_postgres::PgStore::connect(&settings.database_url).await?)
        } else if settings.database_url.starts_with("sqlite:") {
            tracing::info!(url = %settings.database_url, "storage: SQLite");
            Arc::new(store_sqlite::SqliteStore::connect(&settings.database_url).await?)
        } else {
            anyhow::bail!("BULWARK_DATABASE_URL must start with sqlite: or postgres://");
        };

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

    let sealer = vault::Sealer::new(&load_or_create_root_key(&settings.root_key_file)?)?;
    let now = domain::Clock::now(&SystemClock);
    if !store.check_root_key(&sealer.key_id().to_string(), now).await? {
        anyhow::bail!(
            "the root key in {} (id {}) is not the key this database was sealed with: start with the \
             original BULWARK_ROOT_KEY_FILE (every node of one database needs the same file)",
            settings.root_key_file.display(),
            sealer.key_id()
        );
    }
    tracing::info!(key_id = %sealer.key_id(), file = %settings.root_key_file.display(), "root key loaded");
    let deps = server::AppDeps {
        store,
        mailer,
        clock: Arc::new(SystemClock),
        random: Arc::new(auth::OsRandom),
        sealer: Arc::new(sealer),
    };
    let listener = TcpListener::bind(settings.bind).await.with_context(|| format!("binding {}", settings.bind))?;
    let local = listener.local_addr()?;
    let mut config = settings.server;
    if !settings.explicit_public_url {
        config.public_url = url::Url::parse(&format!("http://{local}"))?;
    }
    let public_url = config.public_url.clone();
    let state = server::AppState::new(config, deps)?;
    tracing::info!(address = %local, public_url = %public_url, "Bulwark is listening; open {public_url}");
    server::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Reads the root key file, or creates it (mode 0600, never overwriting) when it does not exist.
fn load_or_create_root_key(path: &std::path::Path) -> anyhow::Result<vault::RootKey> {
    use std::io::Write as _;
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
            vault::RootKey::from_file_text(&text).with_context(|| format!("reading the root key {}", path.display()))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let key = vault::RootKey::generate()?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file =
                options.open(path).with_context(|| format!("creating the root key file {}", path.display()))?;
            file.write_all(key.to_file_text().as_bytes())?;
            file.sync_all()?;
            tracing::info!(file = %path.display(), "created a new root key; back it up apart from the database");
            Ok(key)
        }
        Err(err) => Err(err).with_context(|| format!("reading the root key {}", path.display())),
    }
}

fn init_logging(filter: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi).init();
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
