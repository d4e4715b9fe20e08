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
        let pool =
            SqlitePoolOptions::new().max_connections(8).connect_with(options).await.map_err(ConnectError::Open)?;
        sqlx::migrate!("./migrations").run(&pool).await.map_err(ConnectError::Migrate)?;
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

async fn begin(pool: &Pool<Sqlite>) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

store_sql::impl_store!(crate::SqliteStore, ::sqlx::Sqlite, crate::begin);
