//! Throwaway stores. SQLite: a file in a temporary directory. PostgreSQL: a fresh schema per test
//! in the database named by `BULWARK_TEST_DATABASE_URL` (default: the machine's `test` database on
//! 127.0.0.1:5432), dropped when the test ends. There is no silent skip: without a server the
//! test fails and says how to start one.

use std::ops::Deref;
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};
use store_postgres::PgStore;
use store_sqlite::SqliteStore;

pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn pg_url() -> String {
    std::env::var("BULWARK_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned())
}

#[derive(Debug)]
pub struct TestSqlite {
    pub store: SqliteStore,
    pub path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Deref for TestSqlite {
    type Target = SqliteStore;
    fn deref(&self) -> &SqliteStore {
        &self.store
    }
}

/// # Panics
/// When the temporary directory or the database cannot be created.
pub async fn sqlite_store() -> TestSqlite {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bulwark.db");
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display())).await.expect("open SQLite");
    TestSqlite { store, path, _dir: dir }
}

#[derive(Debug)]
pub struct TestPg {
    pub store: PgStore,
    pub schema: String,
    options: PgConnectOptions,
}

impl Deref for TestPg {
    type Target = PgStore;
    fn deref(&self) -> &PgStore {
        &self.store
    }
}

fn no_server(err: impl std::fmt::Display) -> ! {
    panic!(
        "PostgreSQL is required for these tests and was not reachable at {} ({err}). \
         Start it (pg_ctlcluster 15 main start) or set BULWARK_TEST_DATABASE_URL; scripts/test does both checks.",
        pg_url()
    )
}

/// A store on a fresh schema of the test database.
///
/// # Panics
/// When PostgreSQL is not reachable: tests must fail loudly, never skip.
pub async fn pg_store() -> TestPg {
    let options = PgConnectOptions::from_str(&pg_url()).unwrap_or_else(|e| no_server(e));
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = options.connect().await.unwrap_or_else(|e| no_server(e));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .expect("create test schema");
    let _ = admin.close().await;
    let scoped = options.clone().options([("search_path", schema.as_str())]);
    let store = PgStore::connect_with(scoped).await.expect("connect to the test schema");
    TestPg { store, schema, options }
}

impl Drop for TestPg {
    fn drop(&mut self) {
        drop_schema_later(self.options.clone(), self.schema.clone());
    }
}

/// Drop runs outside async; a short-lived runtime on its own thread removes the schema. It is not
/// joined: blocking the test's runtime here could wait on the very connections it drives. A
/// schema left behind dies with the per-run database that scripts/test drops.
fn drop_schema_later(options: PgConnectOptions, schema: String) {
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        runtime.block_on(async move {
            if let Ok(mut conn) = options.connect().await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
                    .execute(&mut conn)
                    .await;
                let _ = conn.close().await;
            }
        });
    });
}

/// A second store on the same schema as `db`, like a second node starting on a shared database.
///
/// # Panics
/// When the connection or the migration check fails.
pub async fn pg_store_again(db: &TestPg) -> PgStore {
    let scoped = db.options.clone().options([("search_path", db.schema.as_str())]);
    PgStore::connect_with(scoped).await.expect("second connection to the test schema")
}

/// A database file no migration has touched yet, in a temporary directory: for tests that migrate
/// step by step (an install made by an older version). Returns the directory guard and the URL.
///
/// # Panics
/// When the temporary directory cannot be created.
pub fn sqlite_unmigrated() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("bulwark.db").display());
    (dir, url)
}

/// A fresh, empty schema of the test database (no migration run), dropped when the value goes:
/// for tests that migrate step by step. `options` connect into it.
#[derive(Debug)]
pub struct EmptyPgSchema {
    pub options: PgConnectOptions,
    pub schema: String,
    admin: PgConnectOptions,
}

/// # Panics
/// When PostgreSQL is not reachable: tests must fail loudly, never skip.
pub async fn pg_unmigrated() -> EmptyPgSchema {
    let admin = PgConnectOptions::from_str(&pg_url()).unwrap_or_else(|e| no_server(e));
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = admin.connect().await.unwrap_or_else(|e| no_server(e));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .expect("create test schema");
    let _ = conn.close().await;
    let options = admin.clone().options([("search_path", schema.as_str())]);
    EmptyPgSchema { options, schema, admin }
}

impl Drop for EmptyPgSchema {
    fn drop(&mut self) {
        drop_schema_later(self.admin.clone(), self.schema.clone());
    }
}
