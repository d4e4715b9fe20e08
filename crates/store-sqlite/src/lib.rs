//! The SQLite store: the embedded default. One file in the data dir, WAL journal, `synchronous =
//! FULL` (a committed sign-in or audit row survives power loss), foreign keys on, and write
//! transactions that take the write lock up front (`BEGIN IMMEDIATE`) so two writers queue on the
//! busy timeout instead of failing on a lock upgrade.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite, Transaction};

/// `store::Store` on SQLite.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: Pool<Sqlite>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid SQLite URL: {0}")]
    Url(#[source] sqlx::Error),
    #[error("cannot open the SQLite database: {0}")]
    Open(#[source] sqlx::Error),
    #[error("migrating the SQLite database failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path/to/file.db`) and runs the
    /// embedded migrations.
    ///
    /// # Errors
    /// `ConnectError` when the URL is wrong, the file cannot be opened or a migration fails.
    pub async fn connect(url: &str) -> Result<SqliteStore, ConnectError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(ConnectError::Url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Deleted rows are overwritten, so deleting an exchange account leaves no copy of its
            // sealed secret in the file's free pages (crypto-shredding; the WAL is checkpointed
            // over as usual).
            .pragma("secure_delete", "ON")
            .busy_timeout(Duration::from_secs(5));
        let file = options.get_filename().to_path_buf();
        create_private(&file).map_err(|err| ConnectError::Open(sqlx::Error::Io(err)))?;
        let pool =
            SqlitePoolOptions::new().max_connections(8).connect_with(options).await.map_err(ConnectError::Open)?;
        sqlx::migrate!("./migrations").run(&pool).await.map_err(ConnectError::Migrate)?;
        // The write-ahead log and its index exist now; SQLite gives them the database's mode, and
        // files left by an older version are tightened too.
        for path in [file.clone(), suffixed(&file, "-wal"), suffixed(&file, "-shm")] {
            make_private(&path).map_err(|err| ConnectError::Open(sqlx::Error::Io(err)))?;
        }
        Ok(SqliteStore { pool })
    }

    /// The journal mode SQLite reports, for tests and diagnostics.
    ///
    /// # Errors
    /// The driver's error when the query fails.
    pub async fn journal_mode(&self) -> Result<String, sqlx::Error> {
        sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&self.pool).await
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The database file is made before SQLite opens it, readable and writable by its owner only
/// (0600): it holds password hashes, token hashes and sealed secrets, and other users of the machine
/// have no business reading them even with the data dir's own mode in the way. An in-memory
/// database (no file) is left alone.
fn create_private(file: &std::path::Path) -> std::io::Result<()> {
    if file.as_os_str().is_empty() || file.as_os_str() == ":memory:" || file.exists() {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(file) {
        Ok(_) => Ok(()),
        // Another process made it meanwhile: `make_private` tightens it after the open.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
}

/// Takes the group's and others' bits off an existing file (a database made by an older version).
fn make_private(path: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let Ok(meta) = std::fs::metadata(path) else { return Ok(()) };
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn suffixed(file: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    std::path::PathBuf::from(name)
}

async fn begin(pool: &Pool<Sqlite>) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

store_sql::impl_store!(crate::SqliteStore, ::sqlx::Sqlite, crate::begin);
