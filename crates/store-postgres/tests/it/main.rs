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

#[tokio::test]
async fn damaged_rows_read_as_corrupt_never_a_panic() {
    use std::str::FromStr as _;

    use sqlx::Connection as _;
    for (statement, damaged) in store::contract::DAMAGING_UPDATES {
        let db = test_support::pg_store().await;
        let fixture = store::contract::deal_fixture(&db.store).await;
        let options = sqlx::postgres::PgConnectOptions::from_str(&test_support::pg_url())
            .unwrap()
            .options([("search_path", db.schema.as_str())]);
        let mut conn = sqlx::PgConnection::connect_with(&options).await.expect("second connection");
        let changed = sqlx::query(statement).execute(&mut conn).await.expect(statement).rows_affected();
        assert_eq!(changed, 1, "{statement}");
        conn.close().await.unwrap();
        store::contract::damaged_record_reads_as_corrupt(&db.store, &fixture, damaged).await;
    }
}

/// Migration 0010 on an install made by an older version: its oldest account becomes the operator.
#[tokio::test]
async fn an_older_install_makes_its_oldest_account_the_operator() {
    let schema = test_support::pg_unmigrated().await;
    let pool = sqlx::PgPool::connect_with(schema.options.clone()).await.expect("connect");
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
    let store =
        store_postgres::PgStore::connect_with(schema.options.clone()).await.expect("the newer version migrates it");
    store::contract::the_oldest_existing_account_became_the_operator(&store).await;
}
