//! The store contract on SQLite, plus what is particular to SQLite.

store::store_contract_tests!(test_support::sqlite_store());

#[tokio::test]
async fn the_database_uses_wal() {
    let db = test_support::sqlite_store().await;
    assert_eq!(db.journal_mode().await.unwrap(), "wal");
}

#[tokio::test]
async fn reopening_keeps_data_and_migrations_are_idempotent() {
    let db = test_support::sqlite_store().await;
    let url = format!("sqlite://{}", db.path.display());
    use store::Store as _;
    assert!(db.store.user_by_email("x@example.com").await.unwrap().is_none());
    let again = store_sqlite::SqliteStore::connect(&url).await.expect("reopen runs no migration twice");
    again.ping().await.unwrap();
}

#[tokio::test]
async fn damaged_rows_read_as_corrupt_never_a_panic() {
    use sqlx::Connection as _;
    for (statement, damaged) in store::contract::DAMAGING_UPDATES {
        let db = test_support::sqlite_store().await;
        let fixture = store::contract::deal_fixture(&db.store).await;
        let url = format!("sqlite://{}", db.path.display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("second connection");
        let changed = sqlx::query(statement).execute(&mut conn).await.expect(statement).rows_affected();
        assert_eq!(changed, 1, "{statement}");
        conn.close().await.unwrap();
        store::contract::damaged_record_reads_as_corrupt(&db.store, &fixture, damaged).await;
    }
}

/// The database and its write-ahead files are readable by their owner only (0600), also when an
/// older version left them 0644.
#[tokio::test]
async fn the_database_files_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let db = test_support::sqlite_store().await;
    use store::Store as _;
    db.store.ping().await.unwrap();
    let mode = |suffix: &str| {
        let path = format!("{}{suffix}", db.path.display());
        std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    for suffix in ["", "-wal", "-shm"] {
        assert_eq!(mode(suffix), 0o600, "bulwark.db{suffix}");
    }
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", db.path.display());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let url = format!("sqlite://{}", db.path.display());
    let _again = store_sqlite::SqliteStore::connect(&url).await.expect("reopen");
    for suffix in ["", "-wal", "-shm"] {
        assert_eq!(mode(suffix), 0o600, "bulwark.db{suffix} tightened on open");
    }
}

/// Migration 0010 on an install made by an older version: its oldest account becomes the operator.
#[tokio::test]
async fn an_older_install_makes_its_oldest_account_the_operator() {
    let (_dir, url) = test_support::sqlite_unmigrated();
    let pool = sqlx::SqlitePool::connect(&url).await.expect("open");
    sqlx::migrate!("./migrations").run_to(9, &pool).await.expect("migrations up to 0009");
    for (id, email, created_at) in store::contract::PRE_OPERATOR_ACCOUNTS {
        sqlx::query(store::contract::INSERT_PRE_OPERATOR_ACCOUNT)
            .bind(id)
            .bind(email)
            .bind(created_at)
            .execute(&pool)
            .await
            .expect("an account of the older version");
    }
    pool.close().await;
    let store = store_sqlite::SqliteStore::connect(&url).await.expect("the newer version migrates it");
    store::contract::the_oldest_existing_account_became_the_operator(&store).await;
}
