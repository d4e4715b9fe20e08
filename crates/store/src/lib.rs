//! The storage port.
//!
//! [`Store`] is the one trait the server talks to. Its methods are whole operations ("register this
//! user and record the verification token and the audit row"), each of which a backend runs as one
//! transaction, so a failure never leaves half an operation behind. Records are plain data; secrets
//! never appear here except as hashes. [`contract`] is the test suite every backend must pass.

pub mod contract;
mod records;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use domain::{
    Bot, BotId, Deal, DealId, ExchangeAccountId, IntentState, OrderIntent, SessionId, Signal, Timestamp, TradingPolicy,
    UserId,
};

pub use records::{
    AuditRecord, BackupCodeRecord, DealFilter, EmailChangeOutcome, EnableTotp, ExchangeAccountRecord,
    ExchangeAccountStatus, KekRecord, KekState, KeyCheck, KillSwitchOutcome, LoginWrite, NewEmailChange, NewEmailToken,
    NewExchangeAccount, NewSession, NewSignal, NewUser, NewWebhookSecret, OperatorSettings, PreferencesUpdate,
    Registration, SealedBlob, SealedColumn, SealedEntry, SealedRef, SecondFactorUse, SessionRecord, SettingsWrite,
    SignalOutcome, StoredKeyPermissions, ThrottleRule, TokenPurpose, UserRecord, WebhookSecrets,
};

/// What went wrong in a backend, phrased as what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was hit (for example an email that already has an account). Not retryable.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The database could not be reached or timed out. Retrying later may work.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A row did not decode into a record; the data or a migration is wrong. Not retryable.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Anything else the driver reported.
    #[error("database error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything Bulwark keeps. Implemented by `store-sqlite` and `store-postgres`.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    // --- users and email tokens ---

    /// Creates the user, its email-verification token and the sign-up audit row together, if
    /// registration is open. The first account of the database becomes its operator; the answer
    /// says whether this one did. Of several first accounts created at once exactly one does (a
    /// unique index holds the flag; the others are retried as ordinary accounts).
    ///
    /// # Errors
    /// `StoreError::Conflict("registration_closed")` (nothing written) when the operator closed
    /// registration; `StoreError::Conflict` when the canonical email already has an account.
    async fn create_user(&self, user: &NewUser, token: &NewEmailToken, audit: &AuditRecord) -> StoreResult<bool>;

    async fn user_by_email(&self, canonical_email: &str) -> StoreResult<Option<UserRecord>>;

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRecord>>;

    /// Stores a new single-use token (a fresh verification link, a password-reset link).
    async fn insert_email_token(&self, token: &NewEmailToken, audit: &AuditRecord) -> StoreResult<()>;

    /// Consumes a verification token that is unused and unexpired at `now` and marks the email
    /// verified. Returns the user, or `None` when the token is unknown, used or expired (nothing
    /// changes then). `audit` is written with the user filled in.
    async fn verify_email(
        &self,
        token_hash: &[u8; 32],
        now: Timestamp,
        audit: &AuditRecord,
    ) -> StoreResult<Option<UserId>>;

    /// Looks a reset token up without consuming it, so a reset that fails its second-factor check
    /// can be retried with the same link.
    async fn reset_token_user(&self, token_hash: &[u8; 32], now: Timestamp) -> StoreResult<Option<UserId>>;

    /// Consumes a password-reset token, sets the new password hash and ends every session of the
    /// user. `None` (and no change) when the token is unknown, used or expired.
    async fn reset_password(
        &self,
        token_hash: &[u8; 32],
        now: Timestamp,
        password_phc: &str,
        audit: &AuditRecord,
    ) -> StoreResult<Option<UserId>>;

    /// Sets a new password hash and ends every session of the user except `keep`.
    async fn change_password(
        &self,
        user: UserId,
        password_phc: &str,
        keep: SessionId,
        audit: &AuditRecord,
    ) -> StoreResult<()>;

    /// Stores a requested email change; earlier unconfirmed requests of the user stop working.
    async fn request_email_change(&self, change: &NewEmailChange, audit: &AuditRecord) -> StoreResult<()>;

    /// Confirms an email change with its token at `now`: the address changes and counts as
    /// verified, the user's pending changes and reset links die, and every session of the user
    /// except `keep` ends. `audit` is written with the user filled in.
    async fn confirm_email_change(
        &self,
        token_hash: &[u8; 32],
        now: Timestamp,
        keep: Option<SessionId>,
        audit: &AuditRecord,
    ) -> StoreResult<EmailChangeOutcome>;

    // --- sessions ---

    /// Records a successful sign-in: the second factor spent, the new session, the removal of the
    /// session it replaces (token rotation), an upgraded password hash if any, cleared throttles
    /// and the audit row. `false` (and nothing written) when the second factor was already spent.
    async fn record_login(&self, login: &LoginWrite) -> StoreResult<bool>;

    /// The live session with this token hash and its user. Expiry is the caller's decision.
    async fn session_by_token(&self, token_hash: &[u8; 32]) -> StoreResult<Option<(SessionRecord, UserRecord)>>;

    async fn touch_session(&self, id: SessionId, now: Timestamp) -> StoreResult<()>;

    /// Records a password confirmation inside a session: `reauth_at` becomes `now` and the
    /// session gets a new token (SE-1: a new token on re-authentication). `false` if it is gone.
    async fn reauthenticate_session(
        &self,
        id: SessionId,
        new_token_hash: &[u8; 32],
        now: Timestamp,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;

    async fn sessions_for_user(&self, user: UserId) -> StoreResult<Vec<SessionRecord>>;

    /// Deletes one session of `user`. `false` when the user has no session with that id.
    async fn delete_session(&self, user: UserId, id: SessionId, audit: &AuditRecord) -> StoreResult<bool>;

    /// Deletes every session of `user`, or every one but `except`. Returns how many ended.
    async fn delete_sessions(&self, user: UserId, except: Option<SessionId>, audit: &AuditRecord) -> StoreResult<u64>;

    /// Housekeeping: removes sessions idle since before `idle_cutoff` or past their absolute end.
    async fn purge_sessions(&self, now: Timestamp, idle_cutoff: Timestamp) -> StoreResult<u64>;

    // --- two-factor sign-in and preferences ---

    /// Stores a TOTP setup awaiting confirmation, replacing an earlier unconfirmed one. `false`
    /// (no change) when two-factor sign-in is already on.
    async fn begin_totp_setup(
        &self,
        user: UserId,
        sealed_seed: &SealedBlob,
        now: Timestamp,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;

    /// Turns two-factor sign-in on with the pending seed, stores the backup codes and ends the
    /// user's other sessions. `false` (no change) when it is already on or the pending setup is
    /// no longer `enable.sealed_seed`.
    async fn enable_totp(&self, enable: &EnableTotp) -> StoreResult<bool>;

    /// Turns two-factor sign-in off, deletes the seed and the backup codes and ends every other
    /// session. `false` when it was not on.
    async fn disable_totp(&self, user: UserId, keep_session: SessionId, audit: &AuditRecord) -> StoreResult<bool>;

    /// Replaces all backup codes of the user. `false` (no change) when two-factor sign-in is off.
    async fn replace_backup_codes(
        &self,
        user: UserId,
        codes: &[BackupCodeRecord],
        now: Timestamp,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;

    /// The user's backup codes that are still unused.
    async fn unused_backup_codes(&self, user: UserId) -> StoreResult<Vec<BackupCodeRecord>>;

    /// Spends a second factor outside a sign-in (re-authentication, password reset, disabling
    /// two-factor). `false` when it was already spent.
    async fn spend_second_factor(
        &self,
        user: UserId,
        factor: SecondFactorUse,
        now: Timestamp,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;

    /// Applies a preference change and returns the updated user (`None` if there is no such user).
    async fn update_preferences(
        &self,
        user: UserId,
        update: &PreferencesUpdate,
        audit: &AuditRecord,
    ) -> StoreResult<Option<UserRecord>>;

    // --- vault ---

    /// The vault's key-encryption keys, every state, by version.
    async fn vault_keks(&self) -> StoreResult<Vec<KekRecord>>;

    /// Every sealed secret in the database (vault blobs), for `vault status` to check each blob's
    /// header against its recorded KEK version.
    async fn sealed_blobs(&self) -> StoreResult<Vec<(u32, Vec<u8>)>>;

    /// Stores KEK version 1 as the active key if the database has none yet. `false` when another
    /// node (or an earlier start) wrote it first: then the stored one is the ring.
    async fn insert_first_kek(&self, wrapped: &[u8], now: Timestamp) -> StoreResult<bool>;

    /// Starts a rotation: stores KEK `version` as the active key and makes the one active until
    /// now decrypt-only (its `demoted_at` = `now`), in one transaction. `version` must be the
    /// highest stored version + 1, so of two nodes rotating at once exactly one wins; the other
    /// gets `false` and nothing changes.
    async fn rotate_kek(&self, version: u32, wrapped: &[u8], now: Timestamp) -> StoreResult<bool>;

    /// Up to `limit` sealed secrets whose recorded KEK version is `version`, in every sealed
    /// column, in a stable order.
    async fn sealed_blobs_with_kek(&self, version: u32, limit: u32) -> StoreResult<Vec<SealedEntry>>;

    /// Compare-and-swap: writes `new` at `at` only if the blob there is still exactly `old`.
    /// `false` (nothing written) when it changed meanwhile (the user replaced or removed the
    /// secret, or another node rewrapped it first).
    async fn replace_sealed_blob(&self, at: &SealedRef, old: &[u8], new: &SealedBlob) -> StoreResult<bool>;

    /// How many sealed secrets name KEK `version`, over every sealed column.
    async fn count_blobs_with_kek(&self, version: u32) -> StoreResult<u64>;

    /// Ends a rotation: marks KEK `version` destroyed and erases its wrapped key, in one
    /// transaction, only if it is decrypt-only, was demoted at least `grace` before `now`, and no
    /// sealed secret names it. `false` (nothing changed) otherwise.
    async fn destroy_kek(&self, version: u32, now: Timestamp, grace: Duration) -> StoreResult<bool>;

    // --- throttling ---

    /// When `key` is blocked at `now`, the instant the block ends.
    async fn throttle_blocked_until(&self, key: &str, now: Timestamp) -> StoreResult<Option<Timestamp>>;

    /// Counts one failure (or one attempt) against `key`. Returns the end of the block this hit
    /// started, if it reached the rule's limit.
    async fn throttle_hit(&self, key: &str, now: Timestamp, rule: &ThrottleRule) -> StoreResult<Option<Timestamp>>;

    /// Forgets every failure counted against `key` and lifts its block.
    async fn throttle_clear(&self, key: &str) -> StoreResult<()>;

    // --- exchange accounts ---

    /// Stores a checked key with its sealed secret and the audit row.
    ///
    /// # Errors
    /// `StoreError::Conflict` when the API key (by fingerprint) is already connected, by anyone.
    async fn insert_exchange_account(&self, account: &NewExchangeAccount, audit: &AuditRecord) -> StoreResult<()>;

    /// Whether an account with this API key fingerprint exists (for any user).
    async fn api_key_connected(&self, fingerprint: &[u8; 32]) -> StoreResult<bool>;

    /// The user's accounts, oldest first.
    async fn exchange_accounts(&self, user: UserId) -> StoreResult<Vec<ExchangeAccountRecord>>;

    /// One of the user's accounts; `None` for anyone else's.
    async fn exchange_account(&self, user: UserId, id: ExchangeAccountId)
    -> StoreResult<Option<ExchangeAccountRecord>>;

    /// Records a permission check and the status it leads to. `false` when the account is gone.
    async fn record_key_check(&self, check: &KeyCheck, audit: &AuditRecord) -> StoreResult<bool>;

    /// Deletes one of the user's accounts with its sealed secret. `false` (and no audit row) when
    /// there is no such account.
    async fn delete_exchange_account(
        &self,
        user: UserId,
        id: ExchangeAccountId,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;

    /// Accounts of every user last checked before `checked_before`, least recently checked first.
    async fn exchange_accounts_due_for_check(
        &self,
        checked_before: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<ExchangeAccountRecord>>;

    // --- bots, deals and orders ---

    /// Stores a new bot with its webhook secret (hash and sealed) and the audit row. The bot holds
    /// no lease until a node claims it.
    ///
    /// # Errors
    /// `StoreError::Conflict("exchange_account_not_found")` (nothing written) when the bot's
    /// exchange account is not one of its user's.
    async fn insert_bot(&self, bot: &Bot, webhook_secret: &NewWebhookSecret, audit: &AuditRecord) -> StoreResult<()>;

    /// The user's bots, oldest first.
    async fn bots(&self, user: UserId) -> StoreResult<Vec<Bot>>;

    /// One of the user's bots; `None` for anyone else's.
    async fn bot(&self, user: UserId, id: BotId) -> StoreResult<Option<Bot>>;

    /// Writes the bot's name, pairs, `enabled`, `disabled_reason`, settings and `updated_at`.
    /// `false` (and no audit row) when the user has no such bot.
    async fn update_bot(&self, bot: &Bot, audit: &AuditRecord) -> StoreResult<bool>;

    /// A bot's webhook secrets, hashed and sealed (`None` when there is no such bot).
    async fn webhook_secrets(&self, bot: BotId) -> StoreResult<Option<WebhookSecrets>>;

    /// Replaces the user's bot's webhook secret: the current one (hash and sealed) becomes the
    /// previous one, accepted until `previous_until` (none when the secret was revoked), and `new`
    /// the current one. `false` (and no audit row) when the user has no such bot.
    async fn rotate_webhook_secret(
        &self,
        user: UserId,
        bot: BotId,
        new: &NewWebhookSecret,
        previous_until: Timestamp,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;

    // --- webhook signals (spec/webhooks.md) ---

    /// A bot by id alone, with its webhook secrets: what a webhook needs to check the secret it
    /// carries or the signature it bears (`None` when there is no such bot).
    async fn webhook_target(&self, bot: BotId) -> StoreResult<Option<(Bot, WebhookSecrets)>>;

    /// Records an accepted signal with its audit row — usually `pending`; one refused on arrival
    /// (a start signal for a disabled bot) is recorded already finished — unless a body with the same
    /// `dedupe_key` was recorded for the same bot at or after `dedupe_since`: then nothing is
    /// written and the answer is `false`. The check and the write are one atomic step, so of two
    /// identical signals arriving together exactly one is recorded.
    ///
    /// A batch of one ([`Store::record_signals`]).
    ///
    /// # Errors
    /// `StoreError::Conflict` (nothing written): `"signal_inconsistent"` when a pending signal has
    /// an outcome or `handled_at`, or a finished one lacks them; `"signal_bot_not_found"` when its
    /// bot does not exist or is not its user's.
    async fn record_signal(
        &self,
        signal: &Signal,
        dedupe_key: &[u8; 32],
        dedupe_since: Timestamp,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let item = NewSignal { signal: signal.clone(), dedupe_key: *dedupe_key, dedupe_since, audit: audit.clone() };
        self.record_signals(std::slice::from_ref(&item)).await?.pop().unwrap_or(Ok(false))
    }

    /// Records several signals in one transaction (one commit: the webhook routes' group commit),
    /// each exactly as [`Store::record_signal`] would, in order — so of two identical bodies in one
    /// batch the second is a replay. Each answer is the signal's own: `Ok(true)` recorded,
    /// `Ok(false)` a replay, `Err(Conflict)` refused (nothing of it written).
    ///
    /// # Errors
    /// Any other failure: then nothing of the batch is written.
    async fn record_signals(&self, batch: &[NewSignal]) -> StoreResult<Vec<StoreResult<bool>>>;

    /// Signals still `pending` and due at `now` (`due_at <= now`) whose bot `node` leases at
    /// `now`, oldest first (by `received_at`, then the order they were recorded in), at most `limit`.
    async fn due_signals(&self, node: &str, now: Timestamp, limit: u32) -> StoreResult<Vec<Signal>>;

    /// Finishes a pending signal that changed no deal (refused, expired, or acted on without a
    /// deal to save): state, outcome and `handled_at` = `now`. `false` (nothing written) when it is
    /// not pending.
    ///
    /// # Errors
    /// `StoreError::Conflict("signal_outcome_pending")` (nothing written) when `outcome.state` is
    /// `Pending`.
    async fn finish_signal(&self, outcome: &SignalOutcome, now: Timestamp) -> StoreResult<bool>;

    /// The latest signals of the user's bot, newest first, at most `limit` (none for anyone else's bot).
    async fn signals(&self, user: UserId, bot: BotId, limit: u32) -> StoreResult<Vec<Signal>>;

    /// Housekeeping: marks `expired` every signal still pending that was due before `due_before`,
    /// and forgets dedupe entries recorded before `dedupe_before`; returns how many expired.
    async fn expire_signals(&self, due_before: Timestamp, dedupe_before: Timestamp, now: Timestamp)
    -> StoreResult<u64>;

    /// Leases to `node` until `until` every bot that needs running (enabled, or with a deal that
    /// needs running, see `open_deals`) whose lease is free, expired at `now` or already `node`'s, and returns those bots,
    /// oldest first. Of nodes claiming at once, each bot goes to one.
    async fn claim_bots(&self, node: &str, now: Timestamp, until: Timestamp) -> StoreResult<Vec<Bot>>;

    /// Gives up every lease `node` holds (a node shutting down).
    async fn release_bots(&self, node: &str) -> StoreResult<()>;

    /// Writes a deal, its orders and the audit rows, if `node` holds the lease of the deal's bot
    /// at `now` (the bot row stays locked until the write commits). `false` and nothing written
    /// otherwise. The deal and each order are upserted: a deal by id (all but its bot, user,
    /// account and creation time change), an order by client order id (all but its user,
    /// account, deal, sequence number and creation time change).
    ///
    /// With `signal`, the write also finishes that signal (state, outcome, `handled_at` = `now`),
    /// so the deal a webhook signal changed and the mark that the signal was acted on commit
    /// together (exactly once across a crash).
    ///
    /// # Errors
    /// `StoreError::Conflict` (nothing written) when the deal id or a client order id is taken by
    /// another bot's deal or another account's order, or when an order or the deal does not belong
    /// with the rest (another deal id, another bot's user or account);
    /// `StoreError::Conflict("signal_not_pending")` when `signal` names a signal of another bot or
    /// one no longer pending (or none); `StoreError::Conflict("signal_outcome_pending")` when its
    /// state is `Pending`. Without the lease the answer is `false`, whichever signal it names.
    async fn save_deal(
        &self,
        node: &str,
        now: Timestamp,
        deal: &Deal,
        orders: &[OrderIntent],
        audit: &[AuditRecord],
        signal: Option<&SignalOutcome>,
    ) -> StoreResult<bool>;

    /// One of the user's deals with its orders by sequence number; `None` for anyone else's.
    async fn deal(&self, user: UserId, id: DealId) -> StoreResult<Option<(Deal, Vec<OrderIntent>)>>;

    /// The user's deals matching `filter`, newest first, each with its orders by sequence number.
    async fn deals(&self, user: UserId, filter: &DealFilter) -> StoreResult<Vec<(Deal, Vec<OrderIntent>)>>;

    /// The deals of these bots (of any user) that still need a node, oldest first, with their
    /// orders: unfinished ones, and finished ones with an order still pending or open at the venue.
    async fn open_deals(&self, bots: &[BotId]) -> StoreResult<Vec<(Deal, Vec<OrderIntent>)>>;

    /// Upserts one order outside any deal (a manual order), with the same rule as `save_deal`,
    /// and the audit row if given.
    ///
    /// # Errors
    /// `StoreError::Conflict` (nothing written) when the client order id is another account's or
    /// another deal's.
    async fn record_order(&self, order: &OrderIntent, audit: Option<&AuditRecord>) -> StoreResult<()>;

    /// Writes what the venue reported about a manual order already recorded — its state, venue
    /// order id (kept when `order` has none), executed amounts, fees, error and `updated_at` — if
    /// the report moves it forward ([`is_forward_update`]) from the stored row, read and written
    /// in one transaction. `false` (nothing written) otherwise, and when no order outside any deal
    /// has this client order id, user and account. So a late, repeated or concurrent report (the
    /// placing request's answer, or the lookup of another node) never moves an order back.
    async fn advance_order(&self, order: &OrderIntent) -> StoreResult<bool>;

    /// Every manual order (outside any deal) of every user whose outcome is not known yet: state
    /// `pending` or `open`, oldest first. What the manual-order reconciler looks up at the venues.
    async fn unresolved_manual_orders(&self) -> StoreResult<Vec<OrderIntent>>;

    /// The account's orders created at or after `since`, from every path, oldest first.
    async fn orders_since(&self, account: ExchangeAccountId, since: Timestamp) -> StoreResult<Vec<OrderIntent>>;

    /// The account's trading policy; `None` when it was never set.
    async fn trading_policy(&self, account: ExchangeAccountId) -> StoreResult<Option<TradingPolicy>>;

    /// Sets the account's trading policy. `false` (nothing written) when the account is not the
    /// user's.
    async fn set_trading_policy(
        &self,
        user: UserId,
        account: ExchangeAccountId,
        policy: &TradingPolicy,
        now: Timestamp,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;

    /// The kill switch, in one transaction: disables every enabled bot of the user (reason
    /// `kill_switch`), revokes every webhook secret of the user's bots (current and previous, hashes
    /// and sealed copies),
    /// ends every session of the user but `keep_session`, and writes the audit row.
    async fn kill_switch(
        &self,
        user: UserId,
        keep_session: SessionId,
        now: Timestamp,
        audit: &AuditRecord,
    ) -> StoreResult<KillSwitchOutcome>;

    // --- the install's operator ---

    /// The install's settings (a fresh database has the defaults: registration open).
    async fn operator_settings(&self) -> StoreResult<OperatorSettings>;

    /// Compare-and-swap: stores `new` and the audit row if `operator` is the install's operator
    /// and the stored settings are still `expected`, so the audit row's old values are exactly
    /// what was replaced. Otherwise nothing is written and the answer says why.
    async fn set_operator_settings(
        &self,
        operator: UserId,
        expected: &OperatorSettings,
        new: &OperatorSettings,
        now: Timestamp,
        audit: &AuditRecord,
    ) -> StoreResult<SettingsWrite>;

    // --- audit log ---

    async fn append_audit(&self, audit: &AuditRecord) -> StoreResult<()>;

    /// The user's own audit rows, newest first, strictly before `before` when given.
    async fn audit_for_user(
        &self,
        user: UserId,
        before: Option<Timestamp>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>>;

    // --- operations ---

    /// Round-trips to the database, for `/healthz`.
    async fn ping(&self) -> StoreResult<()>;
}

/// Whether `next` may replace `current` as what is known of one order: never out of a final
/// state, never from open back to pending, never with a smaller executed amount (base or quote).
/// Repeating an update is harmless: the same report of an unfinished order is forward (writing
/// it changes nothing), and a finished order is never written again.
pub fn is_forward_update(current: &OrderIntent, next: &OrderIntent) -> bool {
    let back_to_pending = current.state == IntentState::Open && next.state == IntentState::Pending;
    !current.state.is_final()
        && !back_to_pending
        && next.executed_qty >= current.executed_qty
        && next.executed_quote >= current.executed_quote
}

/// Whether a block ending at `until` is a lock: `throttle_hit` stores a lock as `now +
/// Duration::MAX`, which saturates at the last representable instant.
pub fn is_lock(until: Timestamp) -> bool {
    until == Timestamp::from_unix_millis(i64::MAX)
}

/// The block a rule imposes after `failures` consecutive failures: none below the limit, then the
/// base block, doubling with every further multiple of the limit, capped at `max_block`; from
/// `lock_after` failures on, a block without end (`Duration::MAX`) until the key is cleared.
pub fn throttle_block(rule: &ThrottleRule, failures: u32) -> Option<Duration> {
    if rule.lock_after.is_some_and(|lock| failures >= lock) {
        return Some(Duration::MAX);
    }
    if rule.limit == 0 || failures < rule.limit || !failures.is_multiple_of(rule.limit) {
        return None;
    }
    let doublings = (failures / rule.limit - 1).min(30);
    let block = rule.base_block.saturating_mul(1u32 << doublings);
    Some(block.min(rule.max_block))
}

#[cfg(test)]
mod tests {
    use domain::{Decimal, NewOrder, OrderKind, OrderRole, Pair, Side};

    use super::*;

    fn order(state: IntentState, executed_qty: i64, executed_quote: i64) -> OrderIntent {
        let new = NewOrder {
            client_order_id: "bw-m-1".to_owned(),
            user_id: UserId::from_random_bytes([1; 16]),
            exchange_account_id: ExchangeAccountId::from_random_bytes([2; 16]),
            pair: Pair::parse_3commas("USDT_BTC").expect("pair"),
            deal_id: None,
            seq: 0,
            role: OrderRole::Manual,
            safety_index: 0,
            side: Side::Buy,
            kind: OrderKind::Limit,
            price: Decimal::new(30_000, 0),
            quantity: Some(Decimal::new(2, 0)),
            quote_amount: None,
        };
        let mut order = OrderIntent::pending(new, Timestamp::from_unix_millis(0));
        order.state = state;
        order.executed_qty = Decimal::new(executed_qty, 0);
        order.executed_quote = Decimal::new(executed_quote, 0);
        order
    }

    #[test]
    fn an_update_never_moves_an_order_back() {
        use IntentState::{Canceled, Filled, NotPlaced, Open, Pending, Rejected};
        let forward = [
            (order(Pending, 0, 0), order(Pending, 0, 0)),
            (order(Pending, 0, 0), order(Open, 0, 0)),
            (order(Pending, 0, 0), order(NotPlaced, 0, 0)),
            (order(Pending, 0, 0), order(Filled, 2, 60)),
            (order(Open, 1, 30), order(Open, 1, 30)),
            (order(Open, 1, 30), order(Open, 2, 60)),
            (order(Open, 1, 30), order(Canceled, 1, 30)),
        ];
        for (current, next) in &forward {
            assert!(is_forward_update(current, next), "{:?} -> {:?}", current.state, next.state);
        }
        let backward = [
            (order(Open, 0, 0), order(Pending, 0, 0)),
            (order(Open, 1, 30), order(Open, 0, 30)),
            (order(Open, 1, 30), order(Open, 1, 29)),
            (order(Open, 1, 30), order(Filled, 0, 0)),
            (order(Filled, 2, 60), order(Filled, 2, 60)),
            (order(Canceled, 1, 30), order(Filled, 2, 60)),
            (order(Rejected, 0, 0), order(Open, 0, 0)),
            (order(NotPlaced, 0, 0), order(Open, 0, 0)),
        ];
        for (current, next) in &backward {
            assert!(!is_forward_update(current, next), "{:?} -> {:?}", current.state, next.state);
        }
    }
}
