//! The SQL of Bulwark's store, written once for both backends.
//!
//! SQLite and PostgreSQL accept the same statements here: numbered `$n` parameters (sqlx binds
//! SQLite's `$n` by number), `INSERT ... ON CONFLICT`, `RETURNING`, integers for times and bytes for
//! hashes. So the implementation of `store::Store` is one macro, expanded in each backend crate
//! over that crate's `sqlx` driver; the backends differ only in connecting, migrations and how a
//! write transaction begins. Only `store-*` crates know SQL (ARCHITECTURE.md invariant 8).

pub use sqlx;

/// Implements `store::Store` for `$store` (a struct with a `pool: sqlx::Pool<$db>` field).
/// `$begin` is an async fn of the backend crate that opens a write transaction.
#[macro_export]
macro_rules! impl_store {
    ($store:ty, $db:ty, $begin:path) => {
        mod sql_impl {
            use $crate::sqlx::{self, Row as _};

            use ::domain::{AuditId, Email, SessionId, Timestamp, UserId};
            use ::store::{
                AuditRecord, NewEmailToken, SessionRecord, StoreError, StoreResult, TokenPurpose, UserRecord,
            };

            type DbRow = <$db as sqlx::Database>::Row;

            pub(super) fn map_err(err: sqlx::Error) -> StoreError {
                match err {
                    sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict("unique constraint"),
                    sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                        StoreError::Unavailable(err.to_string())
                    }
                    sqlx::Error::ColumnDecode { .. } | sqlx::Error::ColumnNotFound(_) | sqlx::Error::Decode(_) => {
                        StoreError::Corrupt(err.to_string())
                    }
                    other => StoreError::Other(other.to_string()),
                }
            }

            fn get<'r, T>(row: &'r DbRow, column: &str) -> StoreResult<T>
            where
                T: sqlx::Decode<'r, $db> + sqlx::Type<$db>,
            {
                row.try_get::<T, _>(column).map_err(map_err)
            }

            fn parse_id<T: std::str::FromStr>(raw: &str, what: &str) -> StoreResult<T> {
                raw.parse().map_err(|_| StoreError::Corrupt(format!("bad {what} id {raw:?}")))
            }

            fn ts(raw: i64) -> Timestamp {
                Timestamp::from_unix_millis(raw)
            }

            pub(super) const USER_COLUMNS: &str = "u.id, u.email, u.password_phc, u.email_verified_at, u.totp_enabled, \
                u.totp_seed_sealed, u.totp_last_step, u.totp_pending_sealed, u.totp_pending_at, u.hide_balances, \
                u.anti_phishing_code, u.operator, u.created_at";

            pub(super) fn user(row: &DbRow) -> StoreResult<UserRecord> {
                let email: String = get(row, "email")?;
                Ok(UserRecord {
                    id: parse_id::<UserId>(&get::<String>(row, "id")?, "user")?,
                    email: Email::parse(&email).map_err(|e| StoreError::Corrupt(format!("stored email: {e}")))?,
                    password_phc: get(row, "password_phc")?,
                    email_verified_at: get::<Option<i64>>(row, "email_verified_at")?.map(ts),
                    totp_enabled: get(row, "totp_enabled")?,
                    totp_seed_sealed: get(row, "totp_seed_sealed")?,
                    totp_last_step: get::<Option<i64>>(row, "totp_last_step")?
                        .map(|step| u64::try_from(step).map_err(|_| StoreError::Corrupt(format!("bad step {step}"))))
                        .transpose()?,
                    totp_pending: match (
                        get::<Option<Vec<u8>>>(row, "totp_pending_sealed")?,
                        get::<Option<i64>>(row, "totp_pending_at")?,
                    ) {
                        (Some(sealed), Some(at)) => Some((sealed, ts(at))),
                        _ => None,
                    },
                    hide_balances: get(row, "hide_balances")?,
                    anti_phishing_code: get(row, "anti_phishing_code")?,
                    operator: get(row, "operator")?,
                    created_at: ts(get(row, "created_at")?),
                })
            }

            /// Appended to a `SELECT` that keeps the rows it reads from changing until the
            /// transaction ends, without keeping other readers of the same kind out. SQLite needs
            /// none: its write transactions (`BEGIN IMMEDIATE`) hold the whole database.
            pub(super) fn for_share() -> &'static str {
                if <$db as sqlx::Database>::NAME == "PostgreSQL" { " FOR SHARE" } else { "" }
            }

            /// What one attempt at `create_user` came to.
            pub(super) enum Registered {
                /// Stored; whether the account is the operator.
                Done(bool),
                /// The operator flag was claimed by an account committed meanwhile: try again.
                OperatorTaken,
            }

            /// One attempt at `create_user` inside `tx`: refused while registration is closed; the
            /// account claims the operator flag when it is the first.
            pub(super) async fn register_once(
                tx: &mut sqlx::Transaction<'static, $db>,
                user: &::store::NewUser,
                token: &NewEmailToken,
                audit: &AuditRecord,
            ) -> StoreResult<Registered> {
                // Shared lock on the settings row (PostgreSQL): closing registration waits for
                // the registrations under way, and a registration that starts after the close
                // committed reads `closed`.
                let sql =
                    format!("SELECT registration FROM operator_settings WHERE id = 1{}", for_share());
                let registration: String =
                    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&mut **tx).await.map_err(map_err)?;
                match ::store::Registration::parse(&registration) {
                    Some(::store::Registration::Open) => {}
                    Some(::store::Registration::Closed) => return Err(StoreError::Conflict("registration_closed")),
                    None => return Err(StoreError::Corrupt(format!("registration setting {registration:?}"))),
                }
                // The first account of the database is the operator. Under READ COMMITTED two
                // first registrations can both find no account here; the unique index on the flag
                // then fails the later insert, which the caller retries.
                let anyone: Option<String> =
                    sqlx::query_scalar("SELECT id FROM users LIMIT 1").fetch_optional(&mut **tx).await.map_err(map_err)?;
                let operator = anyone.is_none();
                let inserted = sqlx::query(
                    "INSERT INTO users (id, email, email_canonical, password_phc, operator, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(user.id.to_string())
                .bind(user.email.as_str())
                .bind(user.email.canonical())
                .bind(user.password_phc.as_str())
                .bind(operator)
                .bind(user.created_at.as_unix_millis())
                .execute(&mut **tx)
                .await
                .map_err(map_err);
                match inserted {
                    Ok(_) => {}
                    // Either the flag or the email was taken meanwhile; a retry finds an
                    // account, asks for no flag, and meets only a taken email.
                    Err(StoreError::Conflict(_)) if operator => return Ok(Registered::OperatorTaken),
                    Err(StoreError::Conflict(_)) => return Err(StoreError::Conflict("email already registered")),
                    Err(other) => return Err(other),
                }
                insert_token(&mut **tx, token).await?;
                insert_audit(&mut **tx, audit).await?;
                Ok(Registered::Done(operator))
            }

            pub(super) fn session(row: &DbRow) -> StoreResult<SessionRecord> {
                Ok(SessionRecord {
                    id: parse_id::<SessionId>(&get::<String>(row, "session_id")?, "session")?,
                    user_id: parse_id::<UserId>(&get::<String>(row, "session_user_id")?, "user")?,
                    created_at: ts(get(row, "session_created_at")?),
                    last_seen_at: ts(get(row, "last_seen_at")?),
                    expires_at: ts(get(row, "expires_at")?),
                    reauth_at: get::<Option<i64>>(row, "reauth_at")?.map(ts),
                    ip: get(row, "ip")?,
                    user_agent: get(row, "user_agent")?,
                })
            }

            pub(super) const SESSION_COLUMNS: &str = "s.id AS session_id, s.user_id AS session_user_id, \
                s.created_at AS session_created_at, s.last_seen_at, s.expires_at, s.reauth_at, s.ip, s.user_agent";

            pub(super) fn audit(row: &DbRow) -> StoreResult<AuditRecord> {
                let user_id: Option<String> = get(row, "user_id")?;
                Ok(AuditRecord {
                    id: parse_id::<AuditId>(&get::<String>(row, "id")?, "audit")?,
                    user_id: user_id.as_deref().map(|raw| parse_id::<UserId>(raw, "user")).transpose()?,
                    at: ts(get(row, "at")?),
                    kind: get(row, "kind")?,
                    ip: get(row, "ip")?,
                    user_agent: get(row, "user_agent")?,
                    detail: get(row, "detail")?,
                })
            }

            pub(super) async fn insert_audit<'c, E>(executor: E, audit: &AuditRecord) -> StoreResult<()>
            where
                E: sqlx::Executor<'c, Database = $db>,
            {
                sqlx::query(
                    "INSERT INTO audit_log (id, user_id, at, kind, ip, user_agent, detail) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(audit.id.to_string())
                .bind(audit.user_id.map(|id| id.to_string()))
                .bind(audit.at.as_unix_millis())
                .bind(audit.kind.as_str())
                .bind(audit.ip.as_str())
                .bind(audit.user_agent.as_str())
                .bind(audit.detail.as_str())
                .execute(executor)
                .await
                .map_err(map_err)?;
                Ok(())
            }

            pub(super) async fn insert_token<'c, E>(executor: E, token: &NewEmailToken) -> StoreResult<()>
            where
                E: sqlx::Executor<'c, Database = $db>,
            {
                sqlx::query(
                    "INSERT INTO email_tokens (hash, user_id, purpose, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&token.hash[..])
                .bind(token.user_id.to_string())
                .bind(token.purpose.as_str())
                .bind(token.created_at.as_unix_millis())
                .bind(token.expires_at.as_unix_millis())
                .execute(executor)
                .await
                .map_err(map_err)?;
                Ok(())
            }

            /// Marks an unused, unexpired token of `purpose` used and returns its user.
            pub(super) async fn consume_token<'c, E>(
                executor: E,
                hash: &[u8; 32],
                purpose: TokenPurpose,
                now: Timestamp,
            ) -> StoreResult<Option<UserId>>
            where
                E: sqlx::Executor<'c, Database = $db>,
            {
                let row = sqlx::query(
                    "UPDATE email_tokens SET used_at = $1 \
                     WHERE hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1 \
                     RETURNING user_id",
                )
                .bind(now.as_unix_millis())
                .bind(&hash[..])
                .bind(purpose.as_str())
                .fetch_optional(executor)
                .await
                .map_err(map_err)?;
                row.map(|row| parse_id::<UserId>(&get::<String>(&row, "user_id")?, "user")).transpose()
            }

            pub(super) fn step_param(step: u64) -> StoreResult<i64> {
                i64::try_from(step).map_err(|_| StoreError::Other(format!("step {step} out of range")))
            }

            /// Spends a second factor at most once: `false` when it was already spent.
            pub(super) async fn spend_factor<'c, E>(
                executor: E,
                user: UserId,
                factor: ::store::SecondFactorUse,
                now: Timestamp,
            ) -> StoreResult<bool>
            where
                E: sqlx::Executor<'c, Database = $db>,
            {
                let result = match factor {
                    ::store::SecondFactorUse::TotpStep(step) => sqlx::query(
                        "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND totp_enabled = TRUE \
                         AND (totp_last_step IS NULL OR totp_last_step < $1)",
                    )
                    .bind(step_param(step)?)
                    .bind(user.to_string())
                    .execute(executor)
                    .await,
                    ::store::SecondFactorUse::BackupCode(id) => sqlx::query(
                        "UPDATE backup_codes SET used_at = $1 WHERE id = $2 AND user_id = $3 AND used_at IS NULL",
                    )
                    .bind(now.as_unix_millis())
                    .bind(id.to_string())
                    .bind(user.to_string())
                    .execute(executor)
                    .await,
                };
                Ok(result.map_err(map_err)?.rows_affected() == 1)
            }

            pub(super) async fn insert_backup_codes(
                tx: &mut sqlx::Transaction<'static, $db>,
                user: UserId,
                codes: &[::store::BackupCodeRecord],
                now: Timestamp,
            ) -> StoreResult<()> {
                sqlx::query("DELETE FROM backup_codes WHERE user_id = $1")
                    .bind(user.to_string())
                    .execute(&mut **tx)
                    .await
                    .map_err(map_err)?;
                for code in codes {
                    sqlx::query("INSERT INTO backup_codes (id, user_id, phc, created_at) VALUES ($1, $2, $3, $4)")
                        .bind(code.id.to_string())
                        .bind(user.to_string())
                        .bind(code.phc.as_str())
                        .bind(now.as_unix_millis())
                        .execute(&mut **tx)
                        .await
                        .map_err(map_err)?;
                }
                Ok(())
            }

            /// Ends every session of `user`, or every one but `except`. Returns how many ended.
            pub(super) async fn end_sessions(
                tx: &mut sqlx::Transaction<'static, $db>,
                user: UserId,
                except: Option<SessionId>,
            ) -> StoreResult<u64> {
                let ended = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND ($2 IS NULL OR id <> $2)")
                    .bind(user.to_string())
                    .bind(except.map(|id| id.to_string()))
                    .execute(&mut **tx)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                Ok(ended)
            }

            /// Ends a transaction whose change either happened (`changed`: the audit row is added
            /// and it commits) or did not (it rolls back, dev-notes rule 1). Returns `changed`.
            pub(super) async fn audit_and_commit_if(
                mut tx: sqlx::Transaction<'static, $db>,
                changed: bool,
                audit: &AuditRecord,
            ) -> StoreResult<bool> {
                if !changed {
                    tx.rollback().await.map_err(map_err)?;
                    return Ok(false);
                }
                insert_audit(&mut *tx, audit).await?;
                tx.commit().await.map_err(map_err)?;
                Ok(true)
            }

            pub(super) fn with_user(audit: &AuditRecord, user: UserId) -> AuditRecord {
                AuditRecord { user_id: Some(user), ..audit.clone() }
            }

            pub(super) fn kek_param(version: u32) -> i64 {
                i64::from(version)
            }

            pub(super) fn kek_version(raw: i64) -> StoreResult<u32> {
                u32::try_from(raw).map_err(|_| StoreError::Corrupt(format!("bad KEK version {raw}")))
            }

            /// Where the blobs of one sealed column live, and the SQL expressions that give what
            /// their binding is built from. Every statement of key rotation (listing, counting,
            /// compare-and-swap, the destroy check) is generated from these, so a new sealed
            /// column is one arm here (and a `store::SealedColumn` variant). For example the
            /// secret of an exchange account: table `exchange_accounts`, key `id`, blob
            /// `secret_sealed`, kek `secret_kek`, user `user_id`, purpose `CASE key_kind WHEN
            /// 'hmac' THEN 'exchange_api_secret' ELSE 'exchange_private_key' END`, venue
            /// `exchange`, fingerprint `api_key_fingerprint`.
            pub(super) struct SealedSpec {
                pub table: &'static str,
                /// The primary key of the row: the binding's credential id.
                pub key: &'static str,
                pub blob: &'static str,
                /// The integer column holding the KEK version the blob's header names; written
                /// with every write of `blob`.
                pub kek: &'static str,
                pub user_id: &'static str,
                /// The binding's purpose name (`vault::envelope::SecretPurpose::as_str`).
                pub purpose: &'static str,
                pub venue: &'static str,
                /// 32 bytes or NULL.
                pub fingerprint: &'static str,
            }

            /// The registry of sealed columns (ARCHITECTURE.md, "sealed columns").
            pub(super) fn sealed_spec(column: ::store::SealedColumn) -> SealedSpec {
                match column {
                    ::store::SealedColumn::TotpSeed => SealedSpec {
                        table: "users",
                        key: "id",
                        blob: "totp_seed_sealed",
                        kek: "totp_seed_kek",
                        user_id: "id",
                        purpose: "'totp_seed'",
                        venue: "''",
                        fingerprint: "CAST(NULL AS BYTEA)",
                    },
                    ::store::SealedColumn::TotpPending => SealedSpec {
                        table: "users",
                        key: "id",
                        blob: "totp_pending_sealed",
                        kek: "totp_pending_kek",
                        user_id: "id",
                        purpose: "'totp_seed'",
                        venue: "''",
                        fingerprint: "CAST(NULL AS BYTEA)",
                    },
                    ::store::SealedColumn::ExchangeSecret => SealedSpec {
                        table: "exchange_accounts",
                        key: "id",
                        blob: "secret_sealed",
                        kek: "secret_kek",
                        user_id: "user_id",
                        purpose: "CASE key_kind WHEN 'hmac' THEN 'exchange_api_secret' ELSE 'exchange_private_key' END",
                        venue: "exchange",
                        fingerprint: "api_key_fingerprint",
                    },
                    ::store::SealedColumn::WebhookSecret => SealedSpec {
                        table: "bots",
                        key: "id",
                        blob: "webhook_secret_sealed",
                        kek: "webhook_secret_kek",
                        user_id: "user_id",
                        purpose: "'webhook_secret'",
                        venue: "''",
                        fingerprint: "CAST(NULL AS BYTEA)",
                    },
                    ::store::SealedColumn::PreviousWebhookSecret => SealedSpec {
                        table: "bots",
                        key: "id",
                        blob: "previous_webhook_secret_sealed",
                        kek: "previous_webhook_secret_kek",
                        user_id: "user_id",
                        purpose: "'webhook_secret'",
                        venue: "''",
                        fingerprint: "CAST(NULL AS BYTEA)",
                    },
                }
            }

            pub(super) const EXCHANGE_ACCOUNT_COLUMNS: &str = "id, user_id, exchange, name, api_key, \
                api_key_fingerprint, key_kind, secret_sealed, perm_spot_trading, perm_withdrawals, perm_transfers, \
                perm_ip_restricted, ip_restriction_waived, status, status_reason, last_checked_at, created_at";

            pub(super) fn exchange_account(row: &DbRow) -> StoreResult<::store::ExchangeAccountRecord> {
                let fingerprint: Vec<u8> = get(row, "api_key_fingerprint")?;
                let status: String = get(row, "status")?;
                Ok(::store::ExchangeAccountRecord {
                    id: parse_id(&get::<String>(row, "id")?, "exchange account")?,
                    user_id: parse_id(&get::<String>(row, "user_id")?, "user")?,
                    exchange: get(row, "exchange")?,
                    name: get(row, "name")?,
                    api_key: get(row, "api_key")?,
                    api_key_fingerprint: fingerprint
                        .as_slice()
                        .try_into()
                        .map_err(|_| StoreError::Corrupt("API key fingerprint is not 32 bytes".to_owned()))?,
                    key_kind: get(row, "key_kind")?,
                    secret_sealed: get(row, "secret_sealed")?,
                    permissions: ::store::StoredKeyPermissions {
                        spot_trading: get(row, "perm_spot_trading")?,
                        withdrawals: get(row, "perm_withdrawals")?,
                        transfers: get(row, "perm_transfers")?,
                        ip_restricted: get(row, "perm_ip_restricted")?,
                    },
                    ip_restriction_waived: get(row, "ip_restriction_waived")?,
                    status: ::store::ExchangeAccountStatus::parse(&status)
                        .ok_or_else(|| StoreError::Corrupt(format!("exchange account status {status:?}")))?,
                    status_reason: get(row, "status_reason")?,
                    last_checked_at: ts(get(row, "last_checked_at")?),
                    created_at: ts(get(row, "created_at")?),
                })
            }

            /// `NOT EXISTS` over every sealed column for the KEK version in parameter `$param`.
            pub(super) fn no_blob_names_kek(param: &str) -> String {
                ::store::SealedColumn::ALL
                    .iter()
                    .map(|c| {
                        let spec = sealed_spec(*c);
                        format!("NOT EXISTS (SELECT 1 FROM {} WHERE {} = {param})", spec.table, spec.kek)
                    })
                    .collect::<Vec<_>>()
                    .join(" AND ")
            }

            pub(super) fn sealed_entry(column: ::store::SealedColumn, row: &DbRow) -> StoreResult<::store::SealedEntry> {
                let fingerprint = match get::<Option<Vec<u8>>>(row, "fingerprint")? {
                    None => [0u8; 32],
                    Some(bytes) => bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| StoreError::Corrupt(format!("API key fingerprint of {} bytes", bytes.len())))?,
                };
                Ok(::store::SealedEntry {
                    at: ::store::SealedRef {
                        column,
                        row_id: get(row, "row_id")?,
                        user_id: parse_id::<UserId>(&get::<String>(row, "user_id")?, "user")?,
                        purpose: get(row, "purpose")?,
                        venue: get(row, "venue")?,
                        api_key_fingerprint: fingerprint,
                    },
                    blob: get(row, "blob")?,
                })
            }

            // --- bots, deals, orders and trading policies ---

            /// An amount as stored: the normalized decimal string (never a float).
            pub(super) fn dec(value: ::domain::Decimal) -> String {
                value.normalize().to_string()
            }

            pub(super) fn opt_dec(value: Option<::domain::Decimal>) -> Option<String> {
                value.map(dec)
            }

            fn parse_dec(raw: &str, column: &str) -> StoreResult<::domain::Decimal> {
                ::domain::Decimal::from_str_exact(raw)
                    .map_err(|_| StoreError::Corrupt(format!("{column}: bad decimal {raw:?}")))
            }

            fn get_dec(row: &DbRow, column: &str) -> StoreResult<::domain::Decimal> {
                parse_dec(&get::<String>(row, column)?, column)
            }

            fn get_opt_dec(row: &DbRow, column: &str) -> StoreResult<Option<::domain::Decimal>> {
                get::<Option<String>>(row, column)?.map(|raw| parse_dec(&raw, column)).transpose()
            }

            fn get_u32(row: &DbRow, column: &str) -> StoreResult<u32> {
                let raw: i64 = get(row, column)?;
                u32::try_from(raw).map_err(|_| StoreError::Corrupt(format!("{column}: {raw} out of range")))
            }

            /// A name-valued column (a deal status, an order role, ...), read with the type's `FromStr`.
            fn get_name<T>(row: &DbRow, column: &str) -> StoreResult<T>
            where
                T: std::str::FromStr,
                T::Err: std::fmt::Display,
            {
                let raw: String = get(row, column)?;
                raw.parse().map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
            }

            fn get_opt_name<T>(row: &DbRow, column: &str) -> StoreResult<Option<T>>
            where
                T: std::str::FromStr,
                T::Err: std::fmt::Display,
            {
                get::<Option<String>>(row, column)?
                    .map(|raw| raw.parse().map_err(|e| StoreError::Corrupt(format!("{column}: {e}"))))
                    .transpose()
            }

            fn get_hash(row: &DbRow, column: &str) -> StoreResult<Option<[u8; 32]>> {
                get::<Option<Vec<u8>>>(row, column)?
                    .map(|bytes| {
                        <[u8; 32]>::try_from(bytes.as_slice())
                            .map_err(|_| StoreError::Corrupt(format!("{column}: {} bytes, not 32", bytes.len())))
                    })
                    .transpose()
            }

            fn parse_pair(raw: &str) -> StoreResult<::domain::Pair> {
                ::domain::Pair::parse_3commas(raw).map_err(|_| StoreError::Corrupt(format!("bad pair {raw:?}")))
            }

            /// Pairs as stored: 3Commas names joined by ','; '' for none.
            pub(super) fn join_pairs(pairs: &[::domain::Pair]) -> String {
                pairs.iter().map(::domain::Pair::to_3commas).collect::<Vec<_>>().join(",")
            }

            fn parse_pairs(raw: &str) -> StoreResult<Vec<::domain::Pair>> {
                if raw.is_empty() {
                    return Ok(Vec::new());
                }
                raw.split(',').map(parse_pair).collect()
            }

            pub(super) fn side_name(side: ::domain::Side) -> &'static str {
                match side {
                    ::domain::Side::Buy => "buy",
                    ::domain::Side::Sell => "sell",
                }
            }

            fn parse_side(raw: &str) -> StoreResult<::domain::Side> {
                match raw {
                    "buy" => Ok(::domain::Side::Buy),
                    "sell" => Ok(::domain::Side::Sell),
                    _ => Err(StoreError::Corrupt(format!("bad order side {raw:?}"))),
                }
            }

            pub(super) fn u32_param(value: u32) -> i64 {
                i64::from(value)
            }

            /// `$first, $first+1, ...`: `n` numbered parameters.
            pub(super) fn placeholders(first: usize, n: usize) -> String {
                (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
            }

            /// Ids bound per statement when a list of them is sent as parameters.
            pub(super) const IDS_PER_STATEMENT: usize = 500;

            /// Appended to a `SELECT` that locks the rows it reads until the transaction ends.
            /// PostgreSQL locks the rows (in the statement's `ORDER BY` order, so two transactions
            /// locking several bots cannot deadlock); SQLite has no row locks and needs none: its
            /// write transactions (`BEGIN IMMEDIATE`) hold the whole database.
            pub(super) fn for_update() -> &'static str {
                if <$db as sqlx::Database>::NAME == "PostgreSQL" { " FOR UPDATE" } else { "" }
            }

            /// Ends a transaction with the outcome of its body: commits when `keep` says so,
            /// otherwise rolls back (explicitly, dev-notes rule 1), and on an error too.
            pub(super) async fn end_tx<T>(
                tx: sqlx::Transaction<'static, $db>,
                result: StoreResult<T>,
                keep: impl FnOnce(&T) -> bool,
            ) -> StoreResult<T> {
                match result {
                    Ok(value) if keep(&value) => {
                        tx.commit().await.map_err(map_err)?;
                        Ok(value)
                    }
                    Ok(value) => {
                        tx.rollback().await.map_err(map_err)?;
                        Ok(value)
                    }
                    Err(err) => {
                        // The body's error is the one to report; a failed rollback ends the
                        // connection, which rolls back too.
                        let _ = tx.rollback().await;
                        Err(err)
                    }
                }
            }

            /// The deal statuses that never change again, as an SQL list (`'canceled', ...`).
            pub(super) fn finished_statuses() -> String {
                ::domain::DealStatus::ALL
                    .iter()
                    .filter(|status| status.is_finished())
                    .map(|status| format!("'{}'", status.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            }

            /// Bare names: SQLite's `RETURNING` takes no table prefix (dev-notes rule 9).
            pub(super) const BOT_COLUMNS: &str = "id, user_id, exchange_account_id, name, pairs, enabled, \
                disabled_reason, settings, created_seq, created_at, updated_at";

            /// A bot with its write sequence (`created_seq`), which orders bots of one millisecond.
            pub(super) fn bot(row: &DbRow) -> StoreResult<(i64, ::domain::Bot)> {
                Ok((
                    get(row, "created_seq")?,
                    ::domain::Bot {
                        id: parse_id(&get::<String>(row, "id")?, "bot")?,
                        user_id: parse_id(&get::<String>(row, "user_id")?, "user")?,
                        exchange_account_id: parse_id(&get::<String>(row, "exchange_account_id")?, "exchange account")?,
                        name: get(row, "name")?,
                        pairs: parse_pairs(&get::<String>(row, "pairs")?)?,
                        enabled: get(row, "enabled")?,
                        disabled_reason: get(row, "disabled_reason")?,
                        settings: get(row, "settings")?,
                        created_at: ts(get(row, "created_at")?),
                        updated_at: ts(get(row, "updated_at")?),
                    },
                ))
            }

            pub(super) fn webhook_secrets(row: &DbRow) -> StoreResult<::store::WebhookSecrets> {
                Ok(::store::WebhookSecrets {
                    current: get_hash(row, "webhook_secret_hash")?,
                    previous: get_hash(row, "previous_webhook_secret_hash")?,
                    previous_until: get::<Option<i64>>(row, "previous_secret_until")?.map(ts),
                    current_sealed: get(row, "webhook_secret_sealed")?,
                    previous_sealed: get(row, "previous_webhook_secret_sealed")?,
                })
            }

            /// The condition on a `deals` row (named `deals`) that it still needs a node: it is
            /// unfinished, or it finished with an order still pending or open at the venue (the
            /// cancels of a deal that closed just before a crash).
            pub(super) fn deal_needs_running() -> String {
                format!(
                    "(deals.status NOT IN ({}) OR EXISTS (SELECT 1 FROM orders WHERE orders.deal_id = deals.id \
                       AND orders.state IN ('pending', 'open')))",
                    finished_statuses()
                )
            }

            /// The claimable condition on `bots` with `$1` = node and `$2` = now: the bot needs
            /// running (enabled, or a deal of it needs running) and its lease is free, expired or
            /// already the node's.
            pub(super) fn claimable_bots() -> String {
                format!(
                    "(lease_node IS NULL OR lease_until < $2 OR lease_node = $1) \
                     AND (enabled = TRUE OR EXISTS (SELECT 1 FROM deals WHERE deals.bot_id = bots.id \
                       AND {}))",
                    deal_needs_running()
                )
            }

            const DEAL_FIELDS: [&str; 19] = [
                "id",
                "bot_id",
                "user_id",
                "exchange_account_id",
                "pair",
                "strategy",
                "status",
                "close_reason",
                "settings",
                "base_price",
                "next_seq",
                "stop_loss_since",
                "profit_quote",
                "best_price",
                "trailing_peak",
                "created_seq",
                "created_at",
                "updated_at",
                "closed_at",
            ];

            const ORDER_FIELDS: [&str; 23] = [
                "client_order_id",
                "user_id",
                "exchange_account_id",
                "deal_id",
                "pair",
                "seq",
                "role",
                "safety_index",
                "side",
                "kind",
                "price",
                "quantity",
                "quote_amount",
                "state",
                "cancel_requested",
                "venue_order_id",
                "executed_qty",
                "executed_quote",
                "fee_base",
                "fee_quote",
                "error",
                "created_at",
                "updated_at",
            ];

            /// The deal columns of table alias `d`, under their own names.
            pub(super) fn deal_columns() -> String {
                DEAL_FIELDS.iter().map(|c| format!("d.{c}")).collect::<Vec<_>>().join(", ")
            }

            /// The order columns of table alias `o`, each named `o_<column>` so they can sit
            /// beside a deal's in one row.
            pub(super) fn order_columns() -> String {
                ORDER_FIELDS.iter().map(|c| format!("o.{c} AS o_{c}")).collect::<Vec<_>>().join(", ")
            }

            pub(super) fn deal(row: &DbRow) -> StoreResult<::domain::Deal> {
                Ok(::domain::Deal {
                    id: parse_id(&get::<String>(row, "id")?, "deal")?,
                    bot_id: parse_id(&get::<String>(row, "bot_id")?, "bot")?,
                    user_id: parse_id(&get::<String>(row, "user_id")?, "user")?,
                    exchange_account_id: parse_id(&get::<String>(row, "exchange_account_id")?, "exchange account")?,
                    pair: parse_pair(&get::<String>(row, "pair")?)?,
                    strategy: get_name(row, "strategy")?,
                    status: get_name(row, "status")?,
                    close_reason: get_opt_name(row, "close_reason")?,
                    settings: get(row, "settings")?,
                    base_price: get_opt_dec(row, "base_price")?,
                    next_seq: get_u32(row, "next_seq")?,
                    stop_loss_since: get::<Option<i64>>(row, "stop_loss_since")?.map(ts),
                    profit_quote: get_opt_dec(row, "profit_quote")?,
                    best_price: get_opt_dec(row, "best_price")?,
                    trailing_peak: get_opt_dec(row, "trailing_peak")?,
                    created_at: ts(get(row, "created_at")?),
                    updated_at: ts(get(row, "updated_at")?),
                    closed_at: get::<Option<i64>>(row, "closed_at")?.map(ts),
                })
            }

            /// An order from `o_`-prefixed columns (`order_columns`).
            pub(super) fn order(row: &DbRow) -> StoreResult<::domain::OrderIntent> {
                Ok(::domain::OrderIntent {
                    client_order_id: get(row, "o_client_order_id")?,
                    user_id: parse_id(&get::<String>(row, "o_user_id")?, "user")?,
                    exchange_account_id: parse_id(&get::<String>(row, "o_exchange_account_id")?, "exchange account")?,
                    pair: parse_pair(&get::<String>(row, "o_pair")?)?,
                    deal_id: get::<Option<String>>(row, "o_deal_id")?
                        .map(|raw| parse_id(&raw, "deal"))
                        .transpose()?,
                    seq: get_u32(row, "o_seq")?,
                    role: get_name(row, "o_role")?,
                    safety_index: get_u32(row, "o_safety_index")?,
                    side: parse_side(&get::<String>(row, "o_side")?)?,
                    kind: get_name(row, "o_kind")?,
                    price: get_dec(row, "o_price")?,
                    quantity: get_opt_dec(row, "o_quantity")?,
                    quote_amount: get_opt_dec(row, "o_quote_amount")?,
                    state: get_name(row, "o_state")?,
                    cancel_requested: get(row, "o_cancel_requested")?,
                    venue_order_id: get(row, "o_venue_order_id")?,
                    executed_qty: get_dec(row, "o_executed_qty")?,
                    executed_quote: get_dec(row, "o_executed_quote")?,
                    fee_base: get_dec(row, "o_fee_base")?,
                    fee_quote: get_dec(row, "o_fee_quote")?,
                    error: get(row, "o_error")?,
                    created_at: ts(get(row, "o_created_at")?),
                    updated_at: ts(get(row, "o_updated_at")?),
                })
            }

            /// Deals joined with their orders (`LEFT JOIN`, rows of one deal together, orders in
            /// sequence order), grouped: each deal with its write sequence and its orders.
            pub(super) fn deals_with_orders(
                rows: &[DbRow],
            ) -> StoreResult<Vec<(i64, ::domain::Deal, Vec<::domain::OrderIntent>)>> {
                let mut out: Vec<(i64, ::domain::Deal, Vec<::domain::OrderIntent>)> = Vec::new();
                for row in rows {
                    let id: ::domain::DealId = parse_id(&get::<String>(row, "id")?, "deal")?;
                    if out.last().is_none_or(|(_, deal, _)| deal.id != id) {
                        out.push((get(row, "created_seq")?, deal(row)?, Vec::new()));
                    }
                    if get::<Option<String>>(row, "o_client_order_id")?.is_some() {
                        let order = order(row)?;
                        if let Some((_, _, orders)) = out.last_mut() {
                            orders.push(order);
                        }
                    }
                }
                Ok(out)
            }

            /// Upserts an order by client order id: everything but its user, account, deal,
            /// sequence number and creation time may change. An id that is another account's,
            /// user's or deal's is a conflict.
            pub(super) async fn upsert_order(
                tx: &mut sqlx::Transaction<'static, $db>,
                order: &::domain::OrderIntent,
            ) -> StoreResult<()> {
                let written = sqlx::query(
                    "INSERT INTO orders (client_order_id, user_id, exchange_account_id, deal_id, pair, seq, role, \
                       safety_index, side, kind, price, quantity, quote_amount, state, cancel_requested, venue_order_id, \
                       executed_qty, executed_quote, fee_base, fee_quote, error, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, \
                       $21, $22, $23) \
                     ON CONFLICT (client_order_id) DO UPDATE SET pair = excluded.pair, role = excluded.role, \
                       safety_index = excluded.safety_index, side = excluded.side, kind = excluded.kind, \
                       price = excluded.price, quantity = excluded.quantity, quote_amount = excluded.quote_amount, \
                       state = excluded.state, cancel_requested = excluded.cancel_requested, \
                       venue_order_id = excluded.venue_order_id, executed_qty = excluded.executed_qty, \
                       executed_quote = excluded.executed_quote, fee_base = excluded.fee_base, \
                       fee_quote = excluded.fee_quote, error = excluded.error, updated_at = excluded.updated_at \
                     WHERE orders.user_id = excluded.user_id AND orders.exchange_account_id = excluded.exchange_account_id \
                       AND COALESCE(orders.deal_id, '') = COALESCE(excluded.deal_id, '')",
                )
                .bind(order.client_order_id.as_str())
                .bind(order.user_id.to_string())
                .bind(order.exchange_account_id.to_string())
                .bind(order.deal_id.map(|id| id.to_string()))
                .bind(order.pair.to_3commas())
                .bind(u32_param(order.seq))
                .bind(order.role.as_str())
                .bind(u32_param(order.safety_index))
                .bind(side_name(order.side))
                .bind(order.kind.as_str())
                .bind(dec(order.price))
                .bind(opt_dec(order.quantity))
                .bind(opt_dec(order.quote_amount))
                .bind(order.state.as_str())
                .bind(order.cancel_requested)
                .bind(order.venue_order_id.as_deref())
                .bind(dec(order.executed_qty))
                .bind(dec(order.executed_quote))
                .bind(dec(order.fee_base))
                .bind(dec(order.fee_quote))
                .bind(order.error.as_deref())
                .bind(order.created_at.as_unix_millis())
                .bind(order.updated_at.as_unix_millis())
                .execute(&mut **tx)
                .await
                .map_err(map_err)?
                .rows_affected();
                if written == 1 { Ok(()) } else { Err(StoreError::Conflict("client_order_id_taken")) }
            }

            /// The body of `save_deal`: `false` (the caller rolls back) without the lease.
            /// A signal to record is pending with no outcome, or finished on arrival with one.
            pub(super) fn check_new_signal(signal: &::domain::Signal) -> StoreResult<()> {
                let pending = signal.state == ::domain::SignalState::Pending;
                let consistent = pending == signal.outcome.is_none() && pending == signal.handled_at.is_none();
                if consistent { Ok(()) } else { Err(StoreError::Conflict("signal_inconsistent")) }
            }

            /// Records one signal inside `tx` unless its body is a replay (`false`, nothing
            /// written); `Conflict("signal_bot_not_found")`, nothing written, for a bot that is
            /// not the signal's user's.
            pub(super) async fn record_signal(
                tx: &mut sqlx::Transaction<'static, $db>,
                signal: &::domain::Signal,
                dedupe_key: &[u8; 32],
                dedupe_since: Timestamp,
                audit: &AuditRecord,
            ) -> StoreResult<bool> {
                let owner: Option<String> = sqlx::query_scalar("SELECT user_id FROM bots WHERE id = $1")
                    .bind(signal.bot_id.to_string())
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(map_err)?;
                if owner != Some(signal.user_id.to_string()) {
                    return Err(StoreError::Conflict("signal_bot_not_found"));
                }
                // The check and the claim in one statement: a row comes back only when the body
                // is new to the bot or was last accepted before the window. PostgreSQL locks the
                // conflicting row, so an identical request running at once waits for this
                // transaction and then finds the row inside the window; SQLite's write
                // transactions run one at a time. Inside one transaction (a batch), a later
                // identical body sees the earlier one's row.
                let accepted = sqlx::query(
                    "INSERT INTO signal_dedupe (bot_id, dedupe_key, signal_id, received_at) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (bot_id, dedupe_key) DO UPDATE SET signal_id = excluded.signal_id, \
                       received_at = excluded.received_at \
                     WHERE signal_dedupe.received_at < $5 \
                     RETURNING signal_id",
                )
                .bind(signal.bot_id.to_string())
                .bind(dedupe_key.as_slice())
                .bind(signal.id.to_string())
                .bind(signal.received_at.as_unix_millis())
                .bind(dedupe_since.as_unix_millis())
                .fetch_optional(&mut **tx)
                .await
                .map_err(map_err)?
                .is_some();
                if !accepted {
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO signals (id, bot_id, user_id, action, pair, params, source_ip, received_at, \
                       due_at, state, outcome, handled_at, created_seq) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
                       (SELECT COALESCE(MAX(created_seq), 0) + 1 FROM signals))",
                )
                .bind(signal.id.to_string())
                .bind(signal.bot_id.to_string())
                .bind(signal.user_id.to_string())
                .bind(signal.action.as_str())
                .bind(signal.pair.as_ref().map(::domain::Pair::to_3commas))
                .bind(signal.params.as_str())
                .bind(signal.source_ip.as_str())
                .bind(signal.received_at.as_unix_millis())
                .bind(signal.due_at.as_unix_millis())
                .bind(signal.state.as_str())
                .bind(signal.outcome.as_deref())
                .bind(signal.handled_at.map(|t| t.as_unix_millis()))
                .execute(&mut **tx)
                .await
                .map_err(map_err)?;
                insert_audit(&mut **tx, audit).await?;
                Ok(true)
            }

            pub(super) async fn save_deal(
                tx: &mut sqlx::Transaction<'static, $db>,
                node: &str,
                now: Timestamp,
                deal: &::domain::Deal,
                orders: &[::domain::OrderIntent],
                audit: &[AuditRecord],
                signal: Option<&::store::SignalOutcome>,
            ) -> StoreResult<bool> {
                // The lease check locks the bot row until commit: a node that claims the bot
                // after the lease expires waits for this write and then finds it done.
                let sql = format!(
                    "SELECT user_id, exchange_account_id FROM bots \
                     WHERE id = $1 AND lease_node = $2 AND lease_until >= $3{}",
                    for_update()
                );
                let Some(bot) = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(deal.bot_id.to_string())
                    .bind(node)
                    .bind(now.as_unix_millis())
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(map_err)?
                else {
                    return Ok(false);
                };
                if get::<String>(&bot, "user_id")? != deal.user_id.to_string()
                    || get::<String>(&bot, "exchange_account_id")? != deal.exchange_account_id.to_string()
                {
                    return Err(StoreError::Conflict("deal_not_of_its_bot"));
                }
                let written = sqlx::query(
                    "INSERT INTO deals (id, bot_id, user_id, exchange_account_id, pair, strategy, status, close_reason, \
                       settings, base_price, next_seq, stop_loss_since, profit_quote, best_price, trailing_peak, \
                       created_seq, created_at, updated_at, closed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                       (SELECT COALESCE(MAX(created_seq), 0) + 1 FROM deals), $16, $17, $18) \
                     ON CONFLICT (id) DO UPDATE SET pair = excluded.pair, strategy = excluded.strategy, \
                       status = excluded.status, close_reason = excluded.close_reason, settings = excluded.settings, \
                       base_price = excluded.base_price, next_seq = excluded.next_seq, \
                       stop_loss_since = excluded.stop_loss_since, profit_quote = excluded.profit_quote, \
                       best_price = excluded.best_price, trailing_peak = excluded.trailing_peak, \
                       updated_at = excluded.updated_at, closed_at = excluded.closed_at \
                     WHERE deals.bot_id = excluded.bot_id AND deals.user_id = excluded.user_id \
                       AND deals.exchange_account_id = excluded.exchange_account_id",
                )
                .bind(deal.id.to_string())
                .bind(deal.bot_id.to_string())
                .bind(deal.user_id.to_string())
                .bind(deal.exchange_account_id.to_string())
                .bind(deal.pair.to_3commas())
                .bind(deal.strategy.as_str())
                .bind(deal.status.as_str())
                .bind(deal.close_reason.map(|reason| reason.as_str()))
                .bind(deal.settings.as_str())
                .bind(opt_dec(deal.base_price))
                .bind(u32_param(deal.next_seq))
                .bind(deal.stop_loss_since.map(|t| t.as_unix_millis()))
                .bind(opt_dec(deal.profit_quote))
                .bind(opt_dec(deal.best_price))
                .bind(opt_dec(deal.trailing_peak))
                .bind(deal.created_at.as_unix_millis())
                .bind(deal.updated_at.as_unix_millis())
                .bind(deal.closed_at.map(|t| t.as_unix_millis()))
                .execute(&mut **tx)
                .await
                .map_err(map_err)?
                .rows_affected();
                if written != 1 {
                    return Err(StoreError::Conflict("deal_id_taken"));
                }
                for order in orders {
                    upsert_order(tx, order).await?;
                }
                // The signal that caused this write ends with it, or nothing is written: a signal
                // already acted on (or of another bot) must not change a deal a second time.
                if let Some(outcome) = signal
                    && !finish_signal(&mut **tx, outcome, now, Some(deal.bot_id)).await?
                {
                    return Err(StoreError::Conflict("signal_not_pending"));
                }
                for record in audit {
                    insert_audit(&mut **tx, record).await?;
                }
                Ok(true)
            }

            /// Deals with their orders: the deals of table `deals` matching `filter` (parameters
            /// bound by the caller), oldest first or newest first, at most the number in parameter
            /// `limit` when given; each deal's orders by sequence number. One statement, so one
            /// snapshot: a deal is never read beside orders of another moment.
            pub(super) fn deals_query(filter: &str, newest_first: bool, limit: Option<&str>) -> String {
                let dir = if newest_first { " DESC" } else { "" };
                let limit = limit.map(|param| format!(" LIMIT {param}")).unwrap_or_default();
                format!(
                    "SELECT {deal}, {orders} FROM (SELECT * FROM deals WHERE {filter} \
                       ORDER BY created_at{dir}, created_seq{dir}, id{dir}{limit}) d \
                     LEFT JOIN orders o ON o.deal_id = d.id \
                     ORDER BY d.created_at{dir}, d.created_seq{dir}, d.id{dir}, o.seq, o.client_order_id",
                    deal = deal_columns(),
                    orders = order_columns(),
                )
            }

            pub(super) const POLICY_COLUMNS: &str = "pair_allowlist, max_order_notional, max_daily_volume, \
                max_orders_per_minute, max_price_deviation_percent, min_quote_volume_24h";

            pub(super) fn trading_policy(row: &DbRow) -> StoreResult<::domain::TradingPolicy> {
                Ok(::domain::TradingPolicy {
                    pair_allowlist: parse_pairs(&get::<String>(row, "pair_allowlist")?)?,
                    max_order_notional: get_dec(row, "max_order_notional")?,
                    max_daily_volume: get_dec(row, "max_daily_volume")?,
                    max_orders_per_minute: get_u32(row, "max_orders_per_minute")?,
                    max_price_deviation_percent: get_dec(row, "max_price_deviation_percent")?,
                    min_quote_volume_24h: get_dec(row, "min_quote_volume_24h")?,
                })
            }

            // --- webhook signals ---

            const SIGNAL_FIELDS: [&str; 12] = [
                "id",
                "bot_id",
                "user_id",
                "action",
                "pair",
                "params",
                "source_ip",
                "received_at",
                "due_at",
                "state",
                "outcome",
                "handled_at",
            ];

            /// The signal columns of table alias `s`, under their own names.
            pub(super) fn signal_columns() -> String {
                SIGNAL_FIELDS.iter().map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", ")
            }

            pub(super) fn signal(row: &DbRow) -> StoreResult<::domain::Signal> {
                Ok(::domain::Signal {
                    id: parse_id(&get::<String>(row, "id")?, "signal")?,
                    bot_id: parse_id(&get::<String>(row, "bot_id")?, "bot")?,
                    user_id: parse_id(&get::<String>(row, "user_id")?, "user")?,
                    action: get_name(row, "action")?,
                    pair: get::<Option<String>>(row, "pair")?.map(|raw| parse_pair(&raw)).transpose()?,
                    params: get(row, "params")?,
                    source_ip: get(row, "source_ip")?,
                    received_at: ts(get(row, "received_at")?),
                    due_at: ts(get(row, "due_at")?),
                    state: get_name(row, "state")?,
                    outcome: get(row, "outcome")?,
                    handled_at: get::<Option<i64>>(row, "handled_at")?.map(ts),
                })
            }

            /// The outcome of a signal that expired: written by `expire_signals`.
            pub(super) const EXPIRED_OUTCOME: &str = "Not acted on in time: its bot was not running while it was due.";

            /// An outcome ends a signal: one whose state is still `pending` is refused.
            pub(super) fn check_outcome(outcome: &::store::SignalOutcome) -> StoreResult<()> {
                if outcome.state == ::domain::SignalState::Pending {
                    return Err(StoreError::Conflict("signal_outcome_pending"));
                }
                Ok(())
            }

            /// Finishes a pending signal (of `bot` when given): whether it was pending and changed.
            pub(super) async fn finish_signal<'c, E>(
                executor: E,
                outcome: &::store::SignalOutcome,
                now: Timestamp,
                bot: Option<::domain::BotId>,
            ) -> StoreResult<bool>
            where
                E: sqlx::Executor<'c, Database = $db>,
            {
                let finished = sqlx::query(
                    "UPDATE signals SET state = $1, outcome = $2, handled_at = $3 \
                     WHERE id = $4 AND state = 'pending' AND ($5 IS NULL OR bot_id = $5)",
                )
                .bind(outcome.state.as_str())
                .bind(outcome.outcome.as_str())
                .bind(now.as_unix_millis())
                .bind(outcome.id.to_string())
                .bind(bot.map(|id| id.to_string()))
                .execute(executor)
                .await
                .map_err(map_err)?
                .rows_affected();
                Ok(finished == 1)
            }
        }

        #[::async_trait::async_trait]
        impl ::store::Store for $store {
            async fn create_user(
                &self,
                user: &::store::NewUser,
                token: &::store::NewEmailToken,
                audit: &::store::AuditRecord,
            ) -> ::store::StoreResult<bool> {
                // Two attempts suffice: a retry happens only after another first account
                // committed, and then this one claims no flag. The third is a safety margin.
                for _ in 0..3 {
                    let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                    let attempt = sql_impl::register_once(&mut tx, user, token, audit).await;
                    match attempt {
                        Ok(sql_impl::Registered::Done(operator)) => {
                            tx.commit().await.map_err(sql_impl::map_err)?;
                            return Ok(operator);
                        }
                        Ok(sql_impl::Registered::OperatorTaken) => {
                            tx.rollback().await.map_err(sql_impl::map_err)?;
                        }
                        Err(err) => {
                            // The attempt's error is the one to report (dev-notes rule 1).
                            let _ = tx.rollback().await;
                            return Err(err);
                        }
                    }
                }
                Err(::store::StoreError::Other("the operator flag stayed contended after three attempts".to_owned()))
            }

            async fn user_by_email(&self, canonical_email: &str) -> ::store::StoreResult<Option<::store::UserRecord>> {
                use $crate::sqlx;
                let sql = format!("SELECT {} FROM users u WHERE u.email_canonical = $1", sql_impl::USER_COLUMNS);
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(canonical_email)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(sql_impl::map_err)?;
                row.as_ref().map(sql_impl::user).transpose()
            }

            async fn user_by_id(&self, id: ::domain::UserId) -> ::store::StoreResult<Option<::store::UserRecord>> {
                use $crate::sqlx;
                let sql = format!("SELECT {} FROM users u WHERE u.id = $1", sql_impl::USER_COLUMNS);
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(sql_impl::map_err)?;
                row.as_ref().map(sql_impl::user).transpose()
            }

            async fn insert_email_token(
                &self,
                token: &::store::NewEmailToken,
                audit: &::store::AuditRecord,
            ) -> ::store::StoreResult<()> {
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                sql_impl::insert_token(&mut *tx, token).await?;
                sql_impl::insert_audit(&mut *tx, audit).await?;
                tx.commit().await.map_err(sql_impl::map_err)
            }

            async fn verify_email(
                &self,
                token_hash: &[u8; 32],
                now: ::domain::Timestamp,
                audit: &::store::AuditRecord,
            ) -> ::store::StoreResult<Option<::domain::UserId>> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let Some(user) =
                    sql_impl::consume_token(&mut *tx, token_hash, ::store::TokenPurpose::VerifyEmail, now).await?
                else {
                    tx.rollback().await.map_err(sql_impl::map_err)?;
                    return Ok(None);
                };
                sqlx::query("UPDATE users SET email_verified_at = $1 WHERE id = $2 AND email_verified_at IS NULL")
                    .bind(now.as_unix_millis())
                    .bind(user.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(sql_impl::map_err)?;
                sql_impl::insert_audit(&mut *tx, &sql_impl::with_user(audit, user)).await?;
                tx.commit().await.map_err(sql_impl::map_err)?;
                Ok(Some(user))
            }

            async fn reset_token_user(
                &self,
                token_hash: &[u8; 32],
                now: ::domain::Timestamp,
            ) -> ::store::StoreResult<Option<::domain::UserId>> {
                use $crate::sqlx;
                let row = sqlx::query(
                    "SELECT user_id FROM email_tokens \
                     WHERE hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
                )
                .bind(&token_hash[..])
                .bind(::store::TokenPurpose::ResetPassword.as_str())
                .bind(now.as_unix_millis())
                .fetch_optional(&self.pool)
                .await
                .map_err(sql_impl::map_err)?;
                match row {
                    None => Ok(None),
                    Some(row) => {
                        use $crate::sqlx::Row as _;
                        let raw: String = row.try_get("user_id").map_err(sql_impl::map_err)?;
                        raw.parse()
                            .map(Some)
                            .map_err(|_| ::store::StoreError::Corrupt(format!("bad user id {raw:?}")))
                    }
                }
            }

            async fn reset_password(
                &self,
                token_hash: &[u8; 32],
                now: ::domain::Timestamp,
                password_phc: &str,
                audit: &::store::AuditRecord,
            ) -> ::store::StoreResult<Option<::domain::UserId>> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let Some(user) =
                    sql_impl::consume_token(&mut *tx, token_hash, ::store::TokenPurpose::ResetPassword, now).await?
                else {
                    tx.rollback().await.map_err(sql_impl::map_err)?;
                    return Ok(None);
                };
                // A reset link proves control of the mailbox, so the address counts as verified.
                sqlx::query(
                    "UPDATE users SET password_phc = $1, email_verified_at = COALESCE(email_verified_at, $2) WHERE id = $3",
                )
                .bind(password_phc)
                .bind(now.as_unix_millis())
                .bind(user.to_string())
                .execute(&mut *tx)
                .await
                .map_err(sql_impl::map_err)?;
                sql_impl::end_sessions(&mut tx, user, None).await?;
                // Any other outstanding reset links die with this one.
                sqlx::query("UPDATE email_tokens SET used_at = $1 WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL")
                    .bind(now.as_unix_millis())
                    .bind(user.to_string())
                    .bind(::store::TokenPurpose::ResetPassword.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(sql_impl::map_err)?;
                sql_impl::insert_audit(&mut *tx, &sql_impl::with_user(audit, user)).await?;
                tx.commit().await.map_err(sql_impl::map_err)?;
                Ok(Some(user))
            }

            async fn change_password(
                &self,
                user: ::domain::UserId,
                password_phc: &str,
                keep: ::domain::SessionId,
                audit: &::store::AuditRecord,
            ) -> ::store::StoreResult<()> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                sqlx::query("UPDATE users SET password_phc = $1 WHERE id = $2")
                    .bind(password_phc)
                    .bind(user.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(sql_impl::map_err)?;
                sql_impl::end_sessions(&mut tx, user, Some(keep)).await?;
                sql_impl::insert_audit(&mut *tx, audit).await?;
                tx.commit().await.map_err(sql_impl::map_err)
            }

            async fn request_email_change(
                &self,
                change: &::store::NewEmailChange,
                audit: &::store::AuditRecord,
            ) -> ::store::StoreResult<()> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                sqlx::query("UPDATE email_changes SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
                    .bind(change.created_at.as_unix_millis())
                    .bind(change.user_id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(sql_impl::map_err)?;
                sqlx::query(
                    "INSERT INTO email_changes (hash, user_id, new_email, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&change.hash[..])
                .bind(change.user_id.to_string())
                .bind(change.new_email.as_str())
                .bind(change.created_at.as_unix_millis())
                .bind(change.expires_at.as_unix_millis())
                .execute(&mut *tx)
                .await
                .map_err(sql_impl::map_err)?;
                sql_impl::insert_audit(&mut *tx, audit).await?;
                tx.commit().await.map_err(sql_impl::map_err)
            }

            async fn confirm_email_change(
                &self,
                token_hash: &[u8; 32],
                now: ::domain::Timestamp,
                keep: Option<::domain::SessionId>,
                audit: &::store::AuditRecord,
            ) -> ::store::StoreResult<::store::EmailChangeOutcome> {
                use $crate::sqlx::{self, Row as _};
                use ::store::{EmailChangeOutcome, StoreError};
                let corrupt = |what: &str, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("{what}: {e}"));
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let row = sqlx::query(
                    "UPDATE email_changes SET used_at = $1 WHERE hash = $2 AND used_at IS NULL AND expires_at > $1 \
                     RETURNING user_id, new_email",
                )
                .bind(now.as_unix_millis())
                .bind(&token_hash[..])
                .fetch_optional(&mut *tx)
                .await
                .map_err(sql_impl::map_err)?;
                let Some(row) = row else {
                    tx.rollback().await.map_err(sql_impl::map_err)?;
                    return Ok(EmailChangeOutcome::InvalidToken);
                };
                let raw_user: String = row.try_get("user_id").map_err(sql_impl::map_err)?;
                let user: ::domain::UserId = raw_user.parse().map_err(|e| corrupt("user id", &e))?;
                let raw_new: String = row.try_get("new_email").map_err(sql_impl::map_err)?;
                let new_email = ::domain::Email::parse(&raw_new).map_err(|e| corrupt("new email", &e))?;
                let old = sqlx::query("SELECT email FROM users WHERE id = $1")
                    .bind(user.to_string())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(sql_impl::map_err)?;
                let raw_old: String = old.try_get("email").map_err(sql_impl::map_err)?;
                let old_email = ::domain::Email::parse(&raw_old).map_err(|e| corrupt("email", &e))?;
                let changed = sqlx::query(
                    "UPDATE users SET email = $1, email_canonical = $2, email_verified_at = $3 WHERE id = $4",
                )
                .bind(new_email.as_str())
                .bind(new_email.canonical())
                .bind(now.as_unix_millis())
                .bind(user.to_string())
                .execute(&mut *tx)
                .await
                .map_err(sql_impl::map_err);
                match changed {
                    Ok(_) => {}
                    Err(StoreError::Conflict(_)) => {
                        tx.rollback().await.map_err(sql_impl::map_err)?;
                        return Ok(EmailChangeOutcome::Taken { user, new_email });
                    }
                    Err(other) => {
                        tx.rollback().await.map_err(sql_impl::map_err)?;
                        return Err(other);
                    }
                }
                // Links mailed to the old address (reset, verification) and other pending
                // changes die with the change.
                for sql in [
                    "UPDATE email_changes SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
                    "UPDATE email_tokens SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
                ] {
                    sqlx::query(sql)
                        .bind(now.as_unix_millis())
                        .bind(user.to_string())
                        .execute(&mut *tx)
                        .await
                        .map_err(sql_impl::map_err)?;
                }
                sql_impl::end_sessions(&mut tx, user, keep).await?;
                sql_impl::insert_audit(&mut *tx, &sql_impl::with_user(audit, user)).await?;
                tx.commit().await.map_err(sql_impl::map_err)?;
                Ok(EmailChangeOutcome::Changed { user, old_email, new_email })
            }

            async fn record_login(&self, login: &::store::LoginWrite) -> ::store::StoreResult<bool> {
                use $crate::sqlx;
                let (session, audit) = (&login.session, &login.audit);
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                if let Some(factor) = login.second_factor
                    && !sql_impl::spend_factor(&mut *tx, session.user_id, factor, session.created_at).await?
                {
                    tx.rollback().await.map_err(sql_impl::map_err)?;
                    return Ok(false);
                }
                if let Some(old) = &login.replaces {
                    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                        .bind(&old[..])
                        .execute(&mut *tx)
                        .await
                        .map_err(sql_impl::map_err)?;
                }
                sqlx::query(
                    "INSERT INTO sessions (id, token_hash, user_id, created_at, last_seen_at, expires_at, reauth_at, ip, user_agent) \
                     VALUES ($1, $2, $3, $4, $4, $5, $4, $6, $7)",
                )
                .bind(session.id.to_string())
                .bind(&session.token_hash[..])
                .bind(session.user_id.to_string())
                .bind(session.created_at.as_unix_millis())
                .bind(session.expires_at.as_unix_millis())
                .bind(session.ip.as_str())
                .bind(session.user_agent.as_str())
                .execute(&mut *tx)
                .await
                .map_err(sql_impl::map_err)?;
                if let Some(phc) = &login.upgraded_password_phc {
                    sqlx::query("UPDATE users SET password_phc = $1 WHERE id = $2")
                        .bind(phc.as_str())
                        .bind(session.user_id.to_string())
                        .execute(&mut *tx)
                        .await
                        .map_err(sql_impl::map_err)?;
                }
                for key in &login.clear_throttles {
                    sqlx::query("DELETE FROM throttles WHERE key = $1")
                        .bind(key.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(sql_impl::map_err)?;
                }
                sql_impl::insert_audit(&mut *tx, audit).await?;
                tx.commit().await.map_err(sql_impl::map_err)?;
                Ok(true)
            }

            async fn begin_totp_setup(
                &self,
                user: ::domain::UserId,
                sealed_seed: &::store::SealedBlob,
                now: ::domain::Timestamp,
                audit: &::store::AuditRecord,
            ) -> ::store::StoreResult<bool> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let updated = sqlx::query(
                    "UPDATE users SET totp_pending_sealed = $1, totp_pending_kek = $2, totp_pending_at = $3 \
                     WHERE id = $4 AND totp_enabled = FALSE",
                )
                .bind(sealed_seed.bytes.as_slice())
                .bind(sql_impl::kek_param(sealed_seed.kek_version))
                .bind(now.as_unix_millis())
                .bind(user.to_string())
                .execute(&mut *tx)
                .await
                .map_err(sql_impl::map_err)?
                .rows_affected();
                sql_impl::audit_and_commit_if(tx, updated > 0, audit).await
            }

            async fn enable_totp(&self, enable: &::store::EnableTotp) -> ::store::StoreResult<bool> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let step = sql_impl::step_param(enable.step)?;
                let updated = sqlx::query(
                    "UPDATE users SET totp_enabled = TRUE, totp_seed_sealed = totp_pending_sealed, \
                       totp_seed_kek = totp_pending_kek, totp_last_step = $1, \
                       totp_pending_sealed = NULL, totp_pending_kek = NULL, totp_pending_at = NULL \
                     WHERE id = $2 AND totp_enabled = FALSE AND totp_pending_sealed = $3",
                )
                .bind(step)
                .bind(enable.user.to_string())
                .bind(enable.sealed_seed.as_slice())
                .execute(&mut *tx)
                .await
                .map_err(sql_impl::map_err)?
                .rows_affected();
                if updated == 0 {
                    tx.rollback().await.map_err(sql_impl::map_err)?;
                    return Ok(false);
                }
                sql_impl::insert_backup_codes(&mut tx, enable.user, &enable.backup_codes, enable.now).await?;
                sql_impl::end_sessions(&mut tx, enable.user, Some(enable.keep_session)).await?;
                sql_impl::insert_audit(&mut *tx, &enable.audit).await?;
                tx.commit().await.map_err(sql_impl::map_err)?;
                Ok(true)
            }

            async fn disable_totp(
                &self,
                user: ::domain::UserId,
                keep_session: ::domain::SessionId,
                audit: &::store::AuditRecord,
            ) -> ::store::StoreResult<bool> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let updated = sqlx::query(
                    "UPDATE users SET totp_enabled = FALSE, totp_seed_sealed = NULL, totp_seed_kek = NULL, \
                       totp_last_step = NULL, totp_pending_sealed = NULL, totp_pending_kek = NULL, totp_pending_at = NULL \
                     WHERE id = $1 AND totp_enabled = TRUE",
                )
                .bind(user.to_string())
                .execute(&mut *tx)
                .await
                .map_err(sql_impl::map_err)?
                .rows_affected();
                if updated == 0 {
                    tx.rollback().await.map_err(sql_impl::map_err)?;
                    return Ok(false);
                }
                sqlx::query("DELETE FROM backup_codes WHERE user_id = $1")
                    .bind(user.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(sql_impl::map_err)?;
                sql_impl::end_sessions(&mut tx, user, Some(keep_session)).await?;
                sql_impl::insert_audit(&mut *tx, audit).await?;
                tx.commit().await.map_err(sql_impl::map_err)?;
                Ok(true)
            }

            async fn replace_backup_codes(
                &self,
                user: ::domain::UserId,
                codes: &[::store::BackupCodeRecord],
                now: ::domain::Timestamp,
                audit: &::store::AuditRecord,
            ) -> ::store::StoreResult<bool> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let enabled = sqlx::query("SELECT id FROM users WHERE id = $1 AND totp_enabled = TRUE")
                    .bind(user.to_string())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(sql_impl::map_err)?;
                if enabled.is_none() {
                    tx.rollback().await.map_err(sql_impl::map_err)?;
                    return Ok(false);
                }
                sql_impl::insert_backup_codes(&mut tx, user, codes, now).await?;
                sql_impl::insert_audit(&mut *tx, audit).await?;
                tx.commit().await.map_err(sql_impl::map_err)?;
                Ok(true)
            }

            async fn unused_backup_codes(
                &self,
                user: ::domain::UserId,
            ) -> ::store::StoreResult<Vec<::store::BackupCodeRecord>> {
                use $crate::sqlx::{self, Row as _};
                let rows = sqlx::query("SELECT id, phc FROM backup_codes WHERE user_id = $1 AND used_at IS NULL ORDER BY id")
                    .bind(user.to_string())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql_impl::map_err)?;
                rows.iter()
                    .map(|row| {
                        let id: String = row.try_get("id").map_err(sql_impl::map_err)?;
                        Ok(::store::BackupCodeRecord {
                            id: id.parse().map_err(|_| ::store::StoreError::Corrupt(format!("bad backup code id {id:?}")))?,
                            phc: row.try_get("phc").map_err(sql_impl::map_err)?,
                        })
                    })
                    .collect()
            }

            async fn spend_second_factor(
                &self,
                user: ::domain::UserId,
                factor: ::store::SecondFactorUse,
                now: ::domain::Timestamp,
                audit: &::store::AuditRecord,
            ) -> ::store::StoreResult<bool> {
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let spent = sql_impl::spend_factor(&mut *tx, user, factor, now).await?;
                sql_impl::audit_and_commit_if(tx, spent, audit).await
            }

            async fn update_preferences(
                &self,
                user: ::domain::UserId,
                update: &::store::PreferencesUpdate,
                audit: &::store::AuditRecord,
            ) -> ::store::StoreResult<Option<::store::UserRecord>> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                // SQLite's RETURNING takes bare column names only.
                let sql = format!(
                    "UPDATE users SET \
                       hide_balances = CASE WHEN $1 THEN $2 ELSE hide_balances END, \
                       anti_phishing_code = CASE WHEN $3 THEN $4 ELSE anti_phishing_code END \
                     WHERE id = $5 RETURNING {}",
                    sql_impl::USER_COLUMNS.replace("u.", "")
                );
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(update.hide_balances.is_some())
                    .bind(update.hide_balances.unwrap_or(false))
                    .bind(update.anti_phishing_code.is_some())
                    .bind(update.anti_phishing_code.clone().flatten())
                    .bind(user.to_string())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(sql_impl::map_err)?;
                let Some(row) = row else {
                    tx.rollback().await.map_err(sql_impl::map_err)?;
                    return Ok(None);
                };
                let record = sql_impl::user(&row)?;
                sql_impl::insert_audit(&mut *tx, audit).await?;
                tx.commit().await.map_err(sql_impl::map_err)?;
                Ok(Some(record))
            }

            async fn vault_keks(&self) -> ::store::StoreResult<Vec<::store::KekRecord>> {
                use $crate::sqlx::{self, Row as _};
                let rows = sqlx::query(
                    "SELECT version, wrapped, state, created_at, demoted_at, destroyed_at FROM vault_keks ORDER BY version",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(sql_impl::map_err)?;
                let ts = ::domain::Timestamp::from_unix_millis;
                rows.iter()
                    .map(|row| {
                        let version: i64 = row.try_get("version").map_err(sql_impl::map_err)?;
                        let state: String = row.try_get("state").map_err(sql_impl::map_err)?;
                        let created_at: i64 = row.try_get("created_at").map_err(sql_impl::map_err)?;
                        let demoted_at: Option<i64> = row.try_get("demoted_at").map_err(sql_impl::map_err)?;
                        let destroyed_at: Option<i64> = row.try_get("destroyed_at").map_err(sql_impl::map_err)?;
                        Ok(::store::KekRecord {
                            version: sql_impl::kek_version(version)?,
                            wrapped: row.try_get("wrapped").map_err(sql_impl::map_err)?,
                            state: ::store::KekState::parse(&state)
                                .ok_or_else(|| ::store::StoreError::Corrupt(format!("bad KEK state {state:?}")))?,
                            created_at: ts(created_at),
                            demoted_at: demoted_at.map(ts),
                            destroyed_at: destroyed_at.map(ts),
                        })
                    })
                    .collect()
            }

            async fn sealed_blobs(&self) -> ::store::StoreResult<Vec<(u32, Vec<u8>)>> {
                use $crate::sqlx::{self, Row as _};
                let mut out = Vec::new();
                for column in ::store::SealedColumn::ALL {
                    let spec = sql_impl::sealed_spec(column);
                    let sql = format!(
                        "SELECT {kek} AS kek, {blob} AS blob FROM {table} WHERE {blob} IS NOT NULL",
                        kek = spec.kek,
                        blob = spec.blob,
                        table = spec.table
                    );
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(sql_impl::map_err)?;
                    for row in &rows {
                        // A blob without a recorded version would escape rotation: report it as
                        // version 0, which no KEK has.
                        let kek: Option<i64> = row.try_get("kek").map_err(sql_impl::map_err)?;
                        let blob: Vec<u8> = row.try_get("blob").map_err(sql_impl::map_err)?;
                        out.push((sql_impl::kek_version(kek.unwrap_or(0))?, blob));
                    }
                }
                Ok(out)
            }

            async fn insert_first_kek(&self, wrapped: &[u8], now: ::domain::Timestamp) -> ::store::StoreResult<bool> {
                use $crate::sqlx;
                // Version 1 is the primary key: of nodes starting at once, exactly one writes it.
                // No conflict target: the one-active index is an arbiter too.
                let inserted = sqlx::query(
                    "INSERT INTO vault_keks (version, wrapped, state, created_at) VALUES (1, $1, 'active', $2) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(wrapped)
                .bind(now.as_unix_millis())
                .execute(&self.pool)
                .await
                .map_err(sql_impl::map_err)?
                .rows_affected();
                Ok(inserted == 1)
            }

            async fn rotate_kek(
                &self,
                version: u32,
                wrapped: &[u8],
                now: ::domain::Timestamp,
            ) -> ::store::StoreResult<bool> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                // Demote first: at most one key is active at any moment (a partial unique index).
                // A second rotation running at once waits here on PostgreSQL for the row lock
                // (SQLite: for the write lock) and then finds the new version taken below.
                let demoted = sqlx::query(
                    "UPDATE vault_keks SET state = 'decrypt_only', demoted_at = $1 WHERE state = 'active' AND version < $2",
                )
                .bind(now.as_unix_millis())
                .bind(sql_impl::kek_param(version))
                .execute(&mut *tx)
                .await
                .map_err(sql_impl::map_err);
                let inserted = match demoted {
                    Ok(_) => sqlx::query(
                        "INSERT INTO vault_keks (version, wrapped, state, created_at) \
                         SELECT $1, $2, 'active', $3 WHERE $1 = (SELECT COALESCE(MAX(version), 0) + 1 FROM vault_keks) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(sql_impl::kek_param(version))
                    .bind(wrapped)
                    .bind(now.as_unix_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(sql_impl::map_err)
                    .map(|done| done.rows_affected()),
                    Err(err) => Err(err),
                };
                match inserted {
                    Ok(1) => {
                        tx.commit().await.map_err(sql_impl::map_err)?;
                        Ok(true)
                    }
                    Ok(_) | Err(::store::StoreError::Conflict(_)) => {
                        tx.rollback().await.map_err(sql_impl::map_err)?;
                        Ok(false)
                    }
                    Err(other) => {
                        tx.rollback().await.map_err(sql_impl::map_err)?;
                        Err(other)
                    }
                }
            }

            async fn sealed_blobs_with_kek(
                &self,
                version: u32,
                limit: u32,
            ) -> ::store::StoreResult<Vec<::store::SealedEntry>> {
                use $crate::sqlx;
                let mut out = Vec::new();
                for column in ::store::SealedColumn::ALL {
                    let left = u64::from(limit).saturating_sub(out.len() as u64);
                    if left == 0 {
                        break;
                    }
                    let spec = sql_impl::sealed_spec(column);
                    let sql = format!(
                        "SELECT {key} AS row_id, {user} AS user_id, {purpose} AS purpose, {venue} AS venue, \
                           {fp} AS fingerprint, {blob} AS blob \
                         FROM {table} WHERE {kek} = $1 AND {blob} IS NOT NULL ORDER BY {key} LIMIT $2",
                        key = spec.key,
                        user = spec.user_id,
                        purpose = spec.purpose,
                        venue = spec.venue,
                        fp = spec.fingerprint,
                        blob = spec.blob,
                        table = spec.table,
                        kek = spec.kek,
                    );
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(sql_impl::kek_param(version))
                        .bind(i64::try_from(left).unwrap_or(i64::MAX))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(sql_impl::map_err)?;
                    for row in &rows {
                        out.push(sql_impl::sealed_entry(column, row)?);
                    }
                }
                Ok(out)
            }

            async fn replace_sealed_blob(
                &self,
                at: &::store::SealedRef,
                old: &[u8],
                new: &::store::SealedBlob,
            ) -> ::store::StoreResult<bool> {
                use $crate::sqlx;
                let spec = sql_impl::sealed_spec(at.column);
                // Compare-and-swap on the whole blob: a secret the user replaced or removed, or
                // one another node rewrapped first, is left as it is.
                let sql = format!(
                    "UPDATE {table} SET {blob} = $1, {kek} = $2 WHERE {key} = $3 AND {blob} = $4",
                    table = spec.table,
                    blob = spec.blob,
                    kek = spec.kek,
                    key = spec.key,
                );
                let updated = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(new.bytes.as_slice())
                    .bind(sql_impl::kek_param(new.kek_version))
                    .bind(at.row_id.as_str())
                    .bind(old)
                    .execute(&self.pool)
                    .await
                    .map_err(sql_impl::map_err)?
                    .rows_affected();
                Ok(updated == 1)
            }

            async fn count_blobs_with_kek(&self, version: u32) -> ::store::StoreResult<u64> {
                use $crate::sqlx::{self, Row as _};
                let terms: Vec<String> = ::store::SealedColumn::ALL
                    .iter()
                    .map(|c| {
                        let spec = sql_impl::sealed_spec(*c);
                        format!("(SELECT COUNT(*) FROM {} WHERE {} = $1)", spec.table, spec.kek)
                    })
                    .collect();
                let sql = format!("SELECT {} AS n", terms.join(" + "));
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(sql_impl::kek_param(version))
                    .fetch_one(&self.pool)
                    .await
                    .map_err(sql_impl::map_err)?;
                let n: i64 = row.try_get("n").map_err(sql_impl::map_err)?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn destroy_kek(
                &self,
                version: u32,
                now: ::domain::Timestamp,
                grace: ::std::time::Duration,
            ) -> ::store::StoreResult<bool> {
                use $crate::sqlx;
                // One statement, so one transaction: the state, the grace period and "no blob
                // names it" are checked against the same snapshot the change is made in.
                let sql = format!(
                    "UPDATE vault_keks SET state = 'destroyed', wrapped = $2, destroyed_at = $3 \
                     WHERE version = $1 AND state = 'decrypt_only' AND demoted_at IS NOT NULL AND demoted_at <= $4 AND {}",
                    sql_impl::no_blob_names_kek("$1")
                );
                let destroyed = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(sql_impl::kek_param(version))
                    .bind(&[][..] as &[u8])
                    .bind(now.as_unix_millis())
                    .bind(now.minus(grace).as_unix_millis())
                    .execute(&self.pool)
                    .await
                    .map_err(sql_impl::map_err)?
                    .rows_affected();
                Ok(destroyed == 1)
            }

            async fn session_by_token(
                &self,
                token_hash: &[u8; 32],
            ) -> ::store::StoreResult<Option<(::store::SessionRecord, ::store::UserRecord)>> {
                use $crate::sqlx;
                let sql = format!(
                    "SELECT {}, {} FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
                    sql_impl::SESSION_COLUMNS,
                    sql_impl::USER_COLUMNS
                );
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(&token_hash[..])
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(sql_impl::map_err)?;
                match row {
                    None => Ok(None),
                    Some(row) => Ok(Some((sql_impl::session(&row)?, sql_impl::user(&row)?))),
                }
            }

            async fn touch_session(&self, id: ::domain::SessionId, now: ::domain::Timestamp) -> ::store::StoreResult<()> {
                use $crate::sqlx;
                sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $1")
                    .bind(now.as_unix_millis())
                    .bind(id.to_string())
                    .execute(&self.pool)
                    .await
                    .map_err(sql_impl::map_err)?;
                Ok(())
            }

            async fn reauthenticate_session(
                &self,
                id: ::domain::SessionId,
                new_token_hash: &[u8; 32],
                now: ::domain::Timestamp,
                audit: &::store::AuditRecord,
            ) -> ::store::StoreResult<bool> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let updated = sqlx::query(
                    "UPDATE sessions SET token_hash = $1, reauth_at = $2, last_seen_at = $2 WHERE id = $3",
                )
                .bind(&new_token_hash[..])
                .bind(now.as_unix_millis())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(sql_impl::map_err)?
                .rows_affected();
                sql_impl::audit_and_commit_if(tx, updated > 0, audit).await
            }

            async fn sessions_for_user(&self, user: ::domain::UserId) -> ::store::StoreResult<Vec<::store::SessionRecord>> {
                use $crate::sqlx;
                let sql = format!(
                    "SELECT {} FROM sessions s WHERE s.user_id = $1 ORDER BY s.last_seen_at DESC, s.id",
                    sql_impl::SESSION_COLUMNS
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(user.to_string())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql_impl::map_err)?;
                rows.iter().map(sql_impl::session).collect()
            }

            async fn delete_session(
                &self,
                user: ::domain::UserId,
                id: ::domain::SessionId,
                audit: &::store::AuditRecord,
            ) -> ::store::StoreResult<bool> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let deleted = sqlx::query("DELETE FROM sessions WHERE id = $1 AND user_id = $2")
                    .bind(id.to_string())
                    .bind(user.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(sql_impl::map_err)?
                    .rows_affected();
                sql_impl::audit_and_commit_if(tx, deleted > 0, audit).await
            }

            async fn delete_sessions(
                &self,
                user: ::domain::UserId,
                except: Option<::domain::SessionId>,
                audit: &::store::AuditRecord,
            ) -> ::store::StoreResult<u64> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let deleted = sql_impl::end_sessions(&mut tx, user, except).await?;
                sql_impl::insert_audit(&mut *tx, audit).await?;
                tx.commit().await.map_err(sql_impl::map_err)?;
                Ok(deleted)
            }

            async fn purge_sessions(
                &self,
                now: ::domain::Timestamp,
                idle_cutoff: ::domain::Timestamp,
            ) -> ::store::StoreResult<u64> {
                use $crate::sqlx;
                let deleted = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
                    .bind(now.as_unix_millis())
                    .bind(idle_cutoff.as_unix_millis())
                    .execute(&self.pool)
                    .await
                    .map_err(sql_impl::map_err)?
                    .rows_affected();
                Ok(deleted)
            }

            async fn throttle_blocked_until(
                &self,
                key: &str,
                now: ::domain::Timestamp,
            ) -> ::store::StoreResult<Option<::domain::Timestamp>> {
                use $crate::sqlx;
                let row = sqlx::query("SELECT blocked_until FROM throttles WHERE key = $1 AND blocked_until > $2")
                    .bind(key)
                    .bind(now.as_unix_millis())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(sql_impl::map_err)?;
                match row {
                    None => Ok(None),
                    Some(row) => {
                        use $crate::sqlx::Row as _;
                        let until: i64 = row.try_get("blocked_until").map_err(sql_impl::map_err)?;
                        Ok(Some(::domain::Timestamp::from_unix_millis(until)))
                    }
                }
            }

            async fn throttle_hit(
                &self,
                key: &str,
                now: ::domain::Timestamp,
                rule: &::store::ThrottleRule,
            ) -> ::store::StoreResult<Option<::domain::Timestamp>> {
                use $crate::sqlx::{self, Row as _};
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                // One atomic upsert counts the failure, so concurrent failures on several nodes
                // are all counted; a count older than `forget_after` starts again.
                let row = sqlx::query(
                    "INSERT INTO throttles (key, failures, last_failure_at, blocked_until) VALUES ($1, 1, $2, 0) \
                     ON CONFLICT (key) DO UPDATE SET \
                       failures = CASE WHEN throttles.last_failure_at < $3 THEN 1 ELSE throttles.failures + 1 END, \
                       last_failure_at = $2 \
                     RETURNING failures",
                )
                .bind(key)
                .bind(now.as_unix_millis())
                .bind(now.minus(rule.forget_after).as_unix_millis())
                .fetch_one(&mut *tx)
                .await
                .map_err(sql_impl::map_err)?;
                let failures: i64 = row.try_get("failures").map_err(sql_impl::map_err)?;
                let failures = u32::try_from(failures).unwrap_or(u32::MAX);
                let blocked = ::store::throttle_block(rule, failures).map(|block| now.plus(block));
                if let Some(until) = blocked {
                    sqlx::query("UPDATE throttles SET blocked_until = $1 WHERE key = $2")
                        .bind(until.as_unix_millis())
                        .bind(key)
                        .execute(&mut *tx)
                        .await
                        .map_err(sql_impl::map_err)?;
                }
                tx.commit().await.map_err(sql_impl::map_err)?;
                Ok(blocked)
            }

            async fn throttle_clear(&self, key: &str) -> ::store::StoreResult<()> {
                use $crate::sqlx;
                sqlx::query("DELETE FROM throttles WHERE key = $1")
                    .bind(key)
                    .execute(&self.pool)
                    .await
                    .map_err(sql_impl::map_err)?;
                Ok(())
            }

            async fn insert_exchange_account(
                &self,
                account: &::store::NewExchangeAccount,
                audit: &::store::AuditRecord,
            ) -> ::store::StoreResult<()> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let inserted = sqlx::query(
                    "INSERT INTO exchange_accounts (id, user_id, exchange, name, api_key, api_key_fingerprint, key_kind, \
                       secret_sealed, secret_kek, perm_spot_trading, perm_withdrawals, perm_transfers, perm_ip_restricted, \
                       ip_restriction_waived, status, status_reason, last_checked_at, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'active', NULL, $15, $15)",
                )
                .bind(account.id.to_string())
                .bind(account.user_id.to_string())
                .bind(&account.exchange)
                .bind(&account.name)
                .bind(&account.api_key)
                .bind(account.api_key_fingerprint.as_slice())
                .bind(&account.key_kind)
                .bind(account.secret_sealed.bytes.as_slice())
                .bind(sql_impl::kek_param(account.secret_sealed.kek_version))
                .bind(account.permissions.spot_trading)
                .bind(account.permissions.withdrawals)
                .bind(account.permissions.transfers)
                .bind(account.permissions.ip_restricted)
                .bind(account.ip_restriction_waived)
                .bind(account.created_at.as_unix_millis())
                .execute(&mut *tx)
                .await;
                if let Err(err) = inserted {
                    tx.rollback().await.map_err(sql_impl::map_err)?;
                    return Err(match sql_impl::map_err(err) {
                        ::store::StoreError::Conflict(_) => ::store::StoreError::Conflict("api_key_already_connected"),
                        other => other,
                    });
                }
                sql_impl::insert_audit(&mut *tx, audit).await?;
                tx.commit().await.map_err(sql_impl::map_err)
            }

            async fn api_key_connected(&self, fingerprint: &[u8; 32]) -> ::store::StoreResult<bool> {
                use $crate::sqlx;
                let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM exchange_accounts WHERE api_key_fingerprint = $1")
                    .bind(fingerprint.as_slice())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(sql_impl::map_err)?;
                Ok(found.is_some())
            }

            async fn exchange_accounts(
                &self,
                user: ::domain::UserId,
            ) -> ::store::StoreResult<Vec<::store::ExchangeAccountRecord>> {
                use $crate::sqlx;
                let sql = format!(
                    "SELECT {} FROM exchange_accounts WHERE user_id = $1 ORDER BY created_at, id",
                    sql_impl::EXCHANGE_ACCOUNT_COLUMNS
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(user.to_string())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql_impl::map_err)?;
                rows.iter().map(sql_impl::exchange_account).collect()
            }

            async fn exchange_account(
                &self,
                user: ::domain::UserId,
                id: ::domain::ExchangeAccountId,
            ) -> ::store::StoreResult<Option<::store::ExchangeAccountRecord>> {
                use $crate::sqlx;
                let sql = format!(
                    "SELECT {} FROM exchange_accounts WHERE id = $1 AND user_id = $2",
                    sql_impl::EXCHANGE_ACCOUNT_COLUMNS
                );
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id.to_string())
                    .bind(user.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(sql_impl::map_err)?;
                row.as_ref().map(sql_impl::exchange_account).transpose()
            }

            async fn record_key_check(
                &self,
                check: &::store::KeyCheck,
                audit: &::store::AuditRecord,
            ) -> ::store::StoreResult<bool> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let updated = sqlx::query(
                    "UPDATE exchange_accounts SET perm_spot_trading = $1, perm_withdrawals = $2, perm_transfers = $3, \
                       perm_ip_restricted = $4, status = $5, status_reason = $6, last_checked_at = $7 WHERE id = $8",
                )
                .bind(check.permissions.spot_trading)
                .bind(check.permissions.withdrawals)
                .bind(check.permissions.transfers)
                .bind(check.permissions.ip_restricted)
                .bind(check.status.as_str())
                .bind(check.status_reason.as_deref())
                .bind(check.at.as_unix_millis())
                .bind(check.account.to_string())
                .execute(&mut *tx)
                .await
                .map_err(sql_impl::map_err)?
                .rows_affected();
                sql_impl::audit_and_commit_if(tx, updated == 1, audit).await
            }

            async fn delete_exchange_account(
                &self,
                user: ::domain::UserId,
                id: ::domain::ExchangeAccountId,
                audit: &::store::AuditRecord,
            ) -> ::store::StoreResult<bool> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let deleted = sqlx::query("DELETE FROM exchange_accounts WHERE id = $1 AND user_id = $2")
                    .bind(id.to_string())
                    .bind(user.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(sql_impl::map_err)?
                    .rows_affected();
                sql_impl::audit_and_commit_if(tx, deleted == 1, audit).await
            }

            async fn exchange_accounts_due_for_check(
                &self,
                checked_before: ::domain::Timestamp,
                limit: u32,
            ) -> ::store::StoreResult<Vec<::store::ExchangeAccountRecord>> {
                use $crate::sqlx;
                let sql = format!(
                    "SELECT {} FROM exchange_accounts WHERE last_checked_at < $1 ORDER BY last_checked_at, id LIMIT $2",
                    sql_impl::EXCHANGE_ACCOUNT_COLUMNS
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(checked_before.as_unix_millis())
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql_impl::map_err)?;
                rows.iter().map(sql_impl::exchange_account).collect()
            }

            async fn insert_bot(
                &self,
                bot: &::domain::Bot,
                webhook_secret: &::store::NewWebhookSecret,
                audit: &::store::AuditRecord,
            ) -> ::store::StoreResult<()> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let result = async {
                    // Only on an exchange account of the bot's own user.
                    let inserted = sqlx::query(
                        "INSERT INTO bots (id, user_id, exchange_account_id, name, pairs, enabled, disabled_reason, \
                           settings, webhook_secret_hash, webhook_secret_sealed, webhook_secret_kek, created_seq, \
                           created_at, updated_at) \
                         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
                           (SELECT COALESCE(MAX(created_seq), 0) + 1 FROM bots), $12, $13 \
                         WHERE EXISTS (SELECT 1 FROM exchange_accounts WHERE id = $3 AND user_id = $2)",
                    )
                    .bind(bot.id.to_string())
                    .bind(bot.user_id.to_string())
                    .bind(bot.exchange_account_id.to_string())
                    .bind(bot.name.as_str())
                    .bind(sql_impl::join_pairs(&bot.pairs))
                    .bind(bot.enabled)
                    .bind(bot.disabled_reason.as_deref())
                    .bind(bot.settings.as_str())
                    .bind(webhook_secret.hash.as_slice())
                    .bind(webhook_secret.sealed.bytes.as_slice())
                    .bind(i64::from(webhook_secret.sealed.kek_version))
                    .bind(bot.created_at.as_unix_millis())
                    .bind(bot.updated_at.as_unix_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(sql_impl::map_err)?
                    .rows_affected();
                    if inserted != 1 {
                        return Err(::store::StoreError::Conflict("exchange_account_not_found"));
                    }
                    sql_impl::insert_audit(&mut *tx, audit).await
                }
                .await;
                sql_impl::end_tx(tx, result, |_| true).await
            }

            async fn bots(&self, user: ::domain::UserId) -> ::store::StoreResult<Vec<::domain::Bot>> {
                use $crate::sqlx;
                let sql = format!(
                    "SELECT {} FROM bots WHERE user_id = $1 ORDER BY created_at, created_seq, id",
                    sql_impl::BOT_COLUMNS
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(user.to_string())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql_impl::map_err)?;
                rows.iter().map(|row| sql_impl::bot(row).map(|(_, bot)| bot)).collect()
            }

            async fn bot(
                &self,
                user: ::domain::UserId,
                id: ::domain::BotId,
            ) -> ::store::StoreResult<Option<::domain::Bot>> {
                use $crate::sqlx;
                let sql = format!("SELECT {} FROM bots WHERE id = $1 AND user_id = $2", sql_impl::BOT_COLUMNS);
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id.to_string())
                    .bind(user.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(sql_impl::map_err)?;
                row.as_ref().map(|row| sql_impl::bot(row).map(|(_, bot)| bot)).transpose()
            }

            async fn update_bot(&self, bot: &::domain::Bot, audit: &::store::AuditRecord) -> ::store::StoreResult<bool> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let result = async {
                    let updated = sqlx::query(
                        "UPDATE bots SET name = $1, pairs = $2, enabled = $3, disabled_reason = $4, settings = $5, \
                           updated_at = $6 WHERE id = $7 AND user_id = $8",
                    )
                    .bind(bot.name.as_str())
                    .bind(sql_impl::join_pairs(&bot.pairs))
                    .bind(bot.enabled)
                    .bind(bot.disabled_reason.as_deref())
                    .bind(bot.settings.as_str())
                    .bind(bot.updated_at.as_unix_millis())
                    .bind(bot.id.to_string())
                    .bind(bot.user_id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(sql_impl::map_err)?
                    .rows_affected();
                    if updated != 1 {
                        return Ok(false);
                    }
                    sql_impl::insert_audit(&mut *tx, audit).await?;
                    Ok(true)
                }
                .await;
                sql_impl::end_tx(tx, result, |updated| *updated).await
            }

            async fn webhook_secrets(
                &self,
                bot: ::domain::BotId,
            ) -> ::store::StoreResult<Option<::store::WebhookSecrets>> {
                use $crate::sqlx;
                let row = sqlx::query(
                    "SELECT webhook_secret_hash, previous_webhook_secret_hash, previous_secret_until, webhook_secret_sealed, \
                       previous_webhook_secret_sealed FROM bots WHERE id = $1",
                )
                .bind(bot.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(sql_impl::map_err)?;
                row.as_ref().map(sql_impl::webhook_secrets).transpose()
            }

            async fn rotate_webhook_secret(
                &self,
                user: ::domain::UserId,
                bot: ::domain::BotId,
                new: &::store::NewWebhookSecret,
                previous_until: ::domain::Timestamp,
                audit: &::store::AuditRecord,
            ) -> ::store::StoreResult<bool> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let result = async {
                    // Every right-hand side reads the row as it was before this statement.
                    let updated = sqlx::query(
                        "UPDATE bots SET previous_webhook_secret_hash = webhook_secret_hash, \
                           previous_secret_until = CASE WHEN webhook_secret_hash IS NULL THEN NULL ELSE $1 END, \
                           previous_webhook_secret_sealed = webhook_secret_sealed, \
                           previous_webhook_secret_kek = webhook_secret_kek, \
                           webhook_secret_hash = $2, webhook_secret_sealed = $5, webhook_secret_kek = $6 \
                         WHERE id = $3 AND user_id = $4",
                    )
                    .bind(previous_until.as_unix_millis())
                    .bind(new.hash.as_slice())
                    .bind(bot.to_string())
                    .bind(user.to_string())
                    .bind(new.sealed.bytes.as_slice())
                    .bind(i64::from(new.sealed.kek_version))
                    .execute(&mut *tx)
                    .await
                    .map_err(sql_impl::map_err)?
                    .rows_affected();
                    if updated != 1 {
                        return Ok(false);
                    }
                    sql_impl::insert_audit(&mut *tx, audit).await?;
                    Ok(true)
                }
                .await;
                sql_impl::end_tx(tx, result, |updated| *updated).await
            }

            async fn webhook_target(
                &self,
                bot: ::domain::BotId,
            ) -> ::store::StoreResult<Option<(::domain::Bot, ::store::WebhookSecrets)>> {
                use $crate::sqlx;
                let sql = format!(
                    "SELECT {}, webhook_secret_hash, previous_webhook_secret_hash, previous_secret_until, \
                       webhook_secret_sealed, previous_webhook_secret_sealed FROM bots WHERE id = $1",
                    sql_impl::BOT_COLUMNS
                );
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(bot.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(sql_impl::map_err)?;
                row.as_ref()
                    .map(|row| Ok((sql_impl::bot(row)?.1, sql_impl::webhook_secrets(row)?)))
                    .transpose()
            }

            async fn record_signals(
                &self,
                batch: &[::store::NewSignal],
            ) -> ::store::StoreResult<Vec<::store::StoreResult<bool>>> {
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let result = async {
                    let mut answers = Vec::with_capacity(batch.len());
                    for item in batch {
                        // A refusal of one signal (its bot gone, an inconsistent record) writes
                        // nothing and is its answer; any other failure ends the whole batch.
                        let answer = match sql_impl::check_new_signal(&item.signal) {
                            Err(err) => Err(err),
                            Ok(()) => {
                                match sql_impl::record_signal(
                                    &mut tx,
                                    &item.signal,
                                    &item.dedupe_key,
                                    item.dedupe_since,
                                    &item.audit,
                                )
                                .await
                                {
                                    Err(::store::StoreError::Conflict(code)) => Err(::store::StoreError::Conflict(code)),
                                    Err(other) => return Err(other),
                                    Ok(accepted) => Ok(accepted),
                                }
                            }
                        };
                        answers.push(answer);
                    }
                    Ok(answers)
                }
                .await;
                sql_impl::end_tx(tx, result, |_| true).await
            }

            async fn due_signals(
                &self,
                node: &str,
                now: ::domain::Timestamp,
                limit: u32,
            ) -> ::store::StoreResult<Vec<::domain::Signal>> {
                use $crate::sqlx;
                // The lease as `save_deal` checks it: held by `node` until `now` or later.
                let sql = format!(
                    "SELECT {} FROM signals s JOIN bots b ON b.id = s.bot_id \
                     WHERE s.state = 'pending' AND s.due_at <= $2 AND b.lease_node = $1 AND b.lease_until >= $2 \
                     ORDER BY s.received_at, s.created_seq, s.id LIMIT $3",
                    sql_impl::signal_columns()
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(node)
                    .bind(now.as_unix_millis())
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql_impl::map_err)?;
                rows.iter().map(sql_impl::signal).collect()
            }

            async fn finish_signal(
                &self,
                outcome: &::store::SignalOutcome,
                now: ::domain::Timestamp,
            ) -> ::store::StoreResult<bool> {
                sql_impl::check_outcome(outcome)?;
                sql_impl::finish_signal(&self.pool, outcome, now, None).await
            }

            async fn signals(
                &self,
                user: ::domain::UserId,
                bot: ::domain::BotId,
                limit: u32,
            ) -> ::store::StoreResult<Vec<::domain::Signal>> {
                use $crate::sqlx;
                let sql = format!(
                    "SELECT {} FROM signals s WHERE s.bot_id = $1 AND s.user_id = $2 \
                     ORDER BY s.received_at DESC, s.created_seq DESC, s.id DESC LIMIT $3",
                    sql_impl::signal_columns()
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(bot.to_string())
                    .bind(user.to_string())
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql_impl::map_err)?;
                rows.iter().map(sql_impl::signal).collect()
            }

            async fn expire_signals(
                &self,
                due_before: ::domain::Timestamp,
                dedupe_before: ::domain::Timestamp,
                now: ::domain::Timestamp,
            ) -> ::store::StoreResult<u64> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let result = async {
                    let expired = sqlx::query(
                        "UPDATE signals SET state = $1, outcome = $2, handled_at = $3 \
                         WHERE state = 'pending' AND due_at < $4",
                    )
                    .bind(::domain::SignalState::Expired.as_str())
                    .bind(sql_impl::EXPIRED_OUTCOME)
                    .bind(now.as_unix_millis())
                    .bind(due_before.as_unix_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(sql_impl::map_err)?
                    .rows_affected();
                    sqlx::query("DELETE FROM signal_dedupe WHERE received_at < $1")
                        .bind(dedupe_before.as_unix_millis())
                        .execute(&mut *tx)
                        .await
                        .map_err(sql_impl::map_err)?;
                    Ok(expired)
                }
                .await;
                sql_impl::end_tx(tx, result, |_| true).await
            }

            async fn claim_bots(
                &self,
                node: &str,
                now: ::domain::Timestamp,
                until: ::domain::Timestamp,
            ) -> ::store::StoreResult<Vec<::domain::Bot>> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let result = async {
                    // Lock the claimable bots in id order (PostgreSQL; SQLite's write transaction
                    // holds everything). A node claiming at the same moment waits for each row,
                    // then re-checks it, finds the lease taken and skips it.
                    let sql = format!(
                        "SELECT id FROM bots WHERE {} ORDER BY id{}",
                        sql_impl::claimable_bots(),
                        sql_impl::for_update()
                    );
                    let ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                        .bind(node)
                        .bind(now.as_unix_millis())
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(sql_impl::map_err)?;
                    let mut claimed = Vec::with_capacity(ids.len());
                    for chunk in ids.chunks(sql_impl::IDS_PER_STATEMENT) {
                        // The condition again: the lease is taken only if it is still free.
                        let sql = format!(
                            "UPDATE bots SET lease_node = $1, lease_until = $3 WHERE {} AND id IN ({}) RETURNING {}",
                            sql_impl::claimable_bots(),
                            sql_impl::placeholders(4, chunk.len()),
                            sql_impl::BOT_COLUMNS
                        );
                        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                            .bind(node)
                            .bind(now.as_unix_millis())
                            .bind(until.as_unix_millis());
                        for id in chunk {
                            query = query.bind(id.as_str());
                        }
                        let rows = query.fetch_all(&mut *tx).await.map_err(sql_impl::map_err)?;
                        for row in &rows {
                            claimed.push(sql_impl::bot(row)?);
                        }
                    }
                    claimed.sort_by(|(seq_a, a), (seq_b, b)| (a.created_at, seq_a, a.id).cmp(&(b.created_at, seq_b, b.id)));
                    Ok(claimed.into_iter().map(|(_, bot)| bot).collect::<Vec<_>>())
                }
                .await;
                sql_impl::end_tx(tx, result, |_| true).await
            }

            async fn release_bots(&self, node: &str) -> ::store::StoreResult<()> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let result = async {
                    // Rows locked in id order first, as every statement that locks several bots
                    // does, so this cannot deadlock with a claim.
                    let sql =
                        format!("SELECT id FROM bots WHERE lease_node = $1 ORDER BY id{}", sql_impl::for_update());
                    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(node).fetch_all(&mut *tx).await.map_err(sql_impl::map_err)?;
                    sqlx::query("UPDATE bots SET lease_node = NULL, lease_until = NULL WHERE lease_node = $1")
                        .bind(node)
                        .execute(&mut *tx)
                        .await
                        .map_err(sql_impl::map_err)?;
                    Ok(())
                }
                .await;
                sql_impl::end_tx(tx, result, |_| true).await
            }

            async fn save_deal(
                &self,
                node: &str,
                now: ::domain::Timestamp,
                deal: &::domain::Deal,
                orders: &[::domain::OrderIntent],
                audit: &[::store::AuditRecord],
                signal: Option<&::store::SignalOutcome>,
            ) -> ::store::StoreResult<bool> {
                if let Some(outcome) = signal {
                    sql_impl::check_outcome(outcome)?;
                }
                if orders.iter().any(|order| {
                    order.deal_id != Some(deal.id)
                        || order.user_id != deal.user_id
                        || order.exchange_account_id != deal.exchange_account_id
                }) {
                    return Err(::store::StoreError::Conflict("order_not_of_its_deal"));
                }
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let result = sql_impl::save_deal(&mut tx, node, now, deal, orders, audit, signal).await;
                sql_impl::end_tx(tx, result, |saved| *saved).await
            }

            async fn deal(
                &self,
                user: ::domain::UserId,
                id: ::domain::DealId,
            ) -> ::store::StoreResult<Option<(::domain::Deal, Vec<::domain::OrderIntent>)>> {
                use $crate::sqlx;
                let sql = sql_impl::deals_query("id = $1 AND user_id = $2", false, None);
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id.to_string())
                    .bind(user.to_string())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql_impl::map_err)?;
                Ok(sql_impl::deals_with_orders(&rows)?.into_iter().next().map(|(_, deal, orders)| (deal, orders)))
            }

            async fn deals(
                &self,
                user: ::domain::UserId,
                filter: &::store::DealFilter,
            ) -> ::store::StoreResult<Vec<(::domain::Deal, Vec<::domain::OrderIntent>)>> {
                use $crate::sqlx;
                let sql = sql_impl::deals_query(
                    "user_id = $1 AND ($2 IS NULL OR bot_id = $2) AND ($3 IS NULL OR status = $3)",
                    true,
                    Some("$4"),
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(user.to_string())
                    .bind(filter.bot_id.map(|id| id.to_string()))
                    .bind(filter.status.map(|status| status.as_str()))
                    .bind(i64::from(filter.limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql_impl::map_err)?;
                Ok(sql_impl::deals_with_orders(&rows)?.into_iter().map(|(_, deal, orders)| (deal, orders)).collect())
            }

            async fn open_deals(
                &self,
                bots: &[::domain::BotId],
            ) -> ::store::StoreResult<Vec<(::domain::Deal, Vec<::domain::OrderIntent>)>> {
                use $crate::sqlx;
                let mut found = Vec::new();
                for chunk in bots.chunks(sql_impl::IDS_PER_STATEMENT) {
                    let filter = format!(
                        "bot_id IN ({}) AND {}",
                        sql_impl::placeholders(1, chunk.len()),
                        sql_impl::deal_needs_running()
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql_impl::deals_query(&filter, false, None)));
                    for bot in chunk {
                        query = query.bind(bot.to_string());
                    }
                    let rows = query.fetch_all(&self.pool).await.map_err(sql_impl::map_err)?;
                    found.extend(sql_impl::deals_with_orders(&rows)?);
                }
                found.sort_by(|(seq_a, a, _), (seq_b, b, _)| (a.created_at, seq_a, a.id).cmp(&(b.created_at, seq_b, b.id)));
                Ok(found.into_iter().map(|(_, deal, orders)| (deal, orders)).collect())
            }

            async fn record_order(
                &self,
                order: &::domain::OrderIntent,
                audit: Option<&::store::AuditRecord>,
            ) -> ::store::StoreResult<()> {
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let result = async {
                    sql_impl::upsert_order(&mut tx, order).await?;
                    if let Some(audit) = audit {
                        sql_impl::insert_audit(&mut *tx, audit).await?;
                    }
                    Ok(())
                }
                .await;
                sql_impl::end_tx(tx, result, |_| true).await
            }

            async fn advance_order(&self, order: &::domain::OrderIntent) -> ::store::StoreResult<bool> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let result = async {
                    // Locked until commit (PostgreSQL; SQLite's write transaction holds the whole
                    // database), so a concurrent update waits and then compares with this one's.
                    let sql = format!(
                        "SELECT {} FROM orders o WHERE o.client_order_id = $1 AND o.user_id = $2 \
                         AND o.exchange_account_id = $3 AND o.deal_id IS NULL{}",
                        sql_impl::order_columns(),
                        sql_impl::for_update()
                    );
                    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(order.client_order_id.as_str())
                        .bind(order.user_id.to_string())
                        .bind(order.exchange_account_id.to_string())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(sql_impl::map_err)?
                    else {
                        return Ok(false);
                    };
                    if !::store::is_forward_update(&sql_impl::order(&row)?, order) {
                        return Ok(false);
                    }
                    sqlx::query(
                        "UPDATE orders SET state = $2, venue_order_id = COALESCE($3, venue_order_id), \
                           executed_qty = $4, executed_quote = $5, fee_base = $6, fee_quote = $7, error = $8, \
                           updated_at = $9 \
                         WHERE client_order_id = $1",
                    )
                    .bind(order.client_order_id.as_str())
                    .bind(order.state.as_str())
                    .bind(order.venue_order_id.as_deref())
                    .bind(sql_impl::dec(order.executed_qty))
                    .bind(sql_impl::dec(order.executed_quote))
                    .bind(sql_impl::dec(order.fee_base))
                    .bind(sql_impl::dec(order.fee_quote))
                    .bind(order.error.as_deref())
                    .bind(order.updated_at.as_unix_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(sql_impl::map_err)?;
                    Ok(true)
                }
                .await;
                sql_impl::end_tx(tx, result, |written| *written).await
            }

            async fn unresolved_manual_orders(&self) -> ::store::StoreResult<Vec<::domain::OrderIntent>> {
                use $crate::sqlx;
                // `deal_id IS NULL` goes through the `orders_deal` index: only manual orders are
                // read, never the bots' (which are most of the table).
                let sql = format!(
                    "SELECT {} FROM orders o \
                     WHERE o.deal_id IS NULL AND o.state IN ('pending', 'open') AND o.role = 'manual' \
                     ORDER BY o.created_at, o.client_order_id",
                    sql_impl::order_columns()
                );
                let rows =
                    sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await.map_err(sql_impl::map_err)?;
                rows.iter().map(sql_impl::order).collect()
            }

            async fn orders_since(
                &self,
                account: ::domain::ExchangeAccountId,
                since: ::domain::Timestamp,
            ) -> ::store::StoreResult<Vec<::domain::OrderIntent>> {
                use $crate::sqlx;
                let sql = format!(
                    "SELECT {} FROM orders o WHERE o.exchange_account_id = $1 AND o.created_at >= $2 \
                     ORDER BY o.created_at, o.client_order_id",
                    sql_impl::order_columns()
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(account.to_string())
                    .bind(since.as_unix_millis())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql_impl::map_err)?;
                rows.iter().map(sql_impl::order).collect()
            }

            async fn trading_policy(
                &self,
                account: ::domain::ExchangeAccountId,
            ) -> ::store::StoreResult<Option<::domain::TradingPolicy>> {
                use $crate::sqlx;
                let sql = format!(
                    "SELECT {} FROM trading_policies WHERE exchange_account_id = $1",
                    sql_impl::POLICY_COLUMNS
                );
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(account.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(sql_impl::map_err)?;
                row.as_ref().map(sql_impl::trading_policy).transpose()
            }

            async fn set_trading_policy(
                &self,
                user: ::domain::UserId,
                account: ::domain::ExchangeAccountId,
                policy: &::domain::TradingPolicy,
                now: ::domain::Timestamp,
                audit: &::store::AuditRecord,
            ) -> ::store::StoreResult<bool> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let result = async {
                    // Written only for an account of this user.
                    let written = sqlx::query(
                        "INSERT INTO trading_policies (exchange_account_id, pair_allowlist, max_order_notional, \
                           max_daily_volume, max_orders_per_minute, max_price_deviation_percent, min_quote_volume_24h, \
                           updated_at) \
                         SELECT $1, $3, $4, $5, $6, $7, $8, $9 \
                         WHERE EXISTS (SELECT 1 FROM exchange_accounts WHERE id = $1 AND user_id = $2) \
                         ON CONFLICT (exchange_account_id) DO UPDATE SET pair_allowlist = excluded.pair_allowlist, \
                           max_order_notional = excluded.max_order_notional, max_daily_volume = excluded.max_daily_volume, \
                           max_orders_per_minute = excluded.max_orders_per_minute, \
                           max_price_deviation_percent = excluded.max_price_deviation_percent, \
                           min_quote_volume_24h = excluded.min_quote_volume_24h, updated_at = excluded.updated_at",
                    )
                    .bind(account.to_string())
                    .bind(user.to_string())
                    .bind(sql_impl::join_pairs(&policy.pair_allowlist))
                    .bind(sql_impl::dec(policy.max_order_notional))
                    .bind(sql_impl::dec(policy.max_daily_volume))
                    .bind(sql_impl::u32_param(policy.max_orders_per_minute))
                    .bind(sql_impl::dec(policy.max_price_deviation_percent))
                    .bind(sql_impl::dec(policy.min_quote_volume_24h))
                    .bind(now.as_unix_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(sql_impl::map_err)?
                    .rows_affected();
                    if written != 1 {
                        return Ok(false);
                    }
                    sql_impl::insert_audit(&mut *tx, audit).await?;
                    Ok(true)
                }
                .await;
                sql_impl::end_tx(tx, result, |written| *written).await
            }

            async fn kill_switch(
                &self,
                user: ::domain::UserId,
                keep_session: ::domain::SessionId,
                now: ::domain::Timestamp,
                audit: &::store::AuditRecord,
            ) -> ::store::StoreResult<::store::KillSwitchOutcome> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let result = async {
                    // The user's bots locked in id order first, as a claim locks them.
                    let sql = format!("SELECT id FROM bots WHERE user_id = $1 ORDER BY id{}", sql_impl::for_update());
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(user.to_string())
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(sql_impl::map_err)?;
                    let bots_disabled = sqlx::query(
                        "UPDATE bots SET enabled = FALSE, disabled_reason = $1, updated_at = $2 \
                         WHERE user_id = $3 AND enabled = TRUE",
                    )
                    .bind("kill_switch")
                    .bind(now.as_unix_millis())
                    .bind(user.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(sql_impl::map_err)?
                    .rows_affected();
                    sqlx::query(
                        "UPDATE bots SET webhook_secret_hash = NULL, previous_webhook_secret_hash = NULL, \
                           previous_secret_until = NULL, webhook_secret_sealed = NULL, webhook_secret_kek = NULL, \
                           previous_webhook_secret_sealed = NULL, previous_webhook_secret_kek = NULL \
                         WHERE user_id = $1",
                    )
                    .bind(user.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(sql_impl::map_err)?;
                    let sessions_ended = sql_impl::end_sessions(&mut tx, user, Some(keep_session)).await?;
                    sql_impl::insert_audit(&mut *tx, audit).await?;
                    Ok(::store::KillSwitchOutcome { bots_disabled, sessions_ended })
                }
                .await;
                sql_impl::end_tx(tx, result, |_| true).await
            }

            async fn operator_settings(&self) -> ::store::StoreResult<::store::OperatorSettings> {
                use $crate::sqlx;
                let registration: String =
                    sqlx::query_scalar("SELECT registration FROM operator_settings WHERE id = 1")
                        .fetch_one(&self.pool)
                        .await
                        .map_err(sql_impl::map_err)?;
                let registration = ::store::Registration::parse(&registration).ok_or_else(|| {
                    ::store::StoreError::Corrupt(format!("registration setting {registration:?}"))
                })?;
                Ok(::store::OperatorSettings { registration })
            }

            async fn set_operator_settings(
                &self,
                operator: ::domain::UserId,
                expected: &::store::OperatorSettings,
                new: &::store::OperatorSettings,
                now: ::domain::Timestamp,
                audit: &::store::AuditRecord,
            ) -> ::store::StoreResult<::store::SettingsWrite> {
                use $crate::sqlx;
                let mut tx = $begin(&self.pool).await.map_err(sql_impl::map_err)?;
                let result = async {
                    // PostgreSQL re-checks the WHERE on the latest row when a concurrent change
                    // committed first, so a stale `expected` updates nothing.
                    let written = sqlx::query(
                        "UPDATE operator_settings SET registration = $1, updated_at = $2, updated_by = $3 \
                         WHERE id = 1 AND registration = $4 \
                           AND EXISTS (SELECT 1 FROM users WHERE id = $3 AND operator = TRUE)",
                    )
                    .bind(new.registration.as_str())
                    .bind(now.as_unix_millis())
                    .bind(operator.to_string())
                    .bind(expected.registration.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(sql_impl::map_err)?
                    .rows_affected();
                    if written == 1 {
                        sql_impl::insert_audit(&mut *tx, audit).await?;
                        return Ok(::store::SettingsWrite::Written);
                    }
                    let is_operator: Option<String> =
                        sqlx::query_scalar("SELECT id FROM users WHERE id = $1 AND operator = TRUE")
                            .bind(operator.to_string())
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(sql_impl::map_err)?;
                    Ok(if is_operator.is_some() {
                        ::store::SettingsWrite::Stale
                    } else {
                        ::store::SettingsWrite::NotOperator
                    })
                }
                .await;
                sql_impl::end_tx(tx, result, |write| *write == ::store::SettingsWrite::Written).await
            }

            async fn append_audit(&self, audit: &::store::AuditRecord) -> ::store::StoreResult<()> {
                sql_impl::insert_audit(&self.pool, audit).await
            }

            async fn audit_for_user(
                &self,
                user: ::domain::UserId,
                before: Option<::domain::Timestamp>,
                limit: u32,
            ) -> ::store::StoreResult<Vec<::store::AuditRecord>> {
                use $crate::sqlx;
                let rows = sqlx::query(
                    "SELECT id, user_id, at, kind, ip, user_agent, detail FROM audit_log \
                     WHERE user_id = $1 AND ($2 IS NULL OR at < $2) ORDER BY at DESC, seq DESC LIMIT $3",
                )
                .bind(user.to_string())
                .bind(before.map(|t| t.as_unix_millis()))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(sql_impl::map_err)?;
                rows.iter().map(sql_impl::audit).collect()
            }

            async fn ping(&self) -> ::store::StoreResult<()> {
                use $crate::sqlx;
                sqlx::query("SELECT 1").execute(&self.pool).await.map_err(sql_impl::map_err)?;
                Ok(())
            }
        }
    };
}
