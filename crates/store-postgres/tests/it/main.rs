//! The store contract on a real PostgreSQL server (never skipped: without a server these fail).

store::store_contract_tests!(test_support::pg_store());

#[tokio::test]
async fn migrations_are_idempotent() {
    let db = test_support::pg_store().await;
    use store::Store as _;
    db.store.ping().await.unwrap();
    // A second node starting on the same schema finds the migrations applied.
    let second = test_support::pg_store_again(&db).await;
    second.ping().await.unwrap();
}
