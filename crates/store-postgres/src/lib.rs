//! The PostgreSQL store, for operators who run several nodes on one database. Migrations run at
//! start under a PostgreSQL advisory lock (sqlx takes it), so nodes starting together do not race.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Pool, Postgres, Transaction};

/// `store::Store` on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: Pool<Postgres>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid PostgreSQL URL: {0}")]
    Url(#[source] sqlx::Error),
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("migrating the PostgreSQL database failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

impl PgStore {
    /// Connects to `url` (`postgres://...`) and runs the embedded migrations.
    ///
    /// # Errors
    /// `ConnectError` when the URL is wrong, the server cannot be reached or a migration fails.
    pub async fn connect(url: &str) -> Result<PgStore, ConnectError> {
        let options = PgConnectOptions::from_str(url).map_err(ConnectError::Url)?;
        PgStore::connect_with(options).await
    }

    /// Like [`PgStore::connect`] with prepared options (tests use it to pick a schema).
    ///
    /// # Errors
    /// `ConnectError` when the server cannot be reached or a migration fails.
    pub async fn connect_with(options: PgConnectOptions) -> Result<PgStore, ConnectError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(ConnectError::Connect)?;
        sqlx::migrate!("./migrations").run(&pool).await.map_err(ConnectError::Migrate)?;
        Ok(PgStore { pool })
    }

    /// Connects to `url` once, without migrating or writing anything, and returns the server's
    /// version (`SHOW server_version`): for `bulwark doctor`.
    ///
    /// # Errors
    /// `ConnectError` when the URL is wrong or the server cannot be reached or queried.
    pub async fn probe(url: &str) -> Result<String, ConnectError> {
        use sqlx::Connection as _;
        let options = PgConnectOptions::from_str(url).map_err(ConnectError::Url)?;
        // One plain connection (not a pool): its error is the server's or the network's own.
        let mut connection =
            sqlx::postgres::PgConnection::connect_with(&options).await.map_err(ConnectError::Connect)?;
        let version: Result<String, sqlx::Error> =
            sqlx::query_scalar("SHOW server_version").fetch_one(&mut connection).await;
        let _ = connection.close().await;
        version.map_err(ConnectError::Connect)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

async fn begin(pool: &Pool<Postgres>) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    pool.begin().await
}

store_sql::impl_store!(crate::PgStore, ::sqlx::Postgres, crate::begin);
