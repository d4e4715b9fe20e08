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
