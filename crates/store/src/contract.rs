//! The contract suite: behaviour every `Store` backend must show, run by each backend's own tests
//! (`store_contract_tests!`) so SQLite and PostgreSQL are held to the same rules
//! (ARCHITECTURE.md invariant 7). Each function gets a fresh, empty store.

use std::time::Duration;

use domain::{
    AuditId, BackupCodeId, Bot, BotId, CloseReason, Deal, DealId, DealStatus, Decimal, Email, ExchangeAccountId,
    IntentState, OrderIntent, OrderKind, OrderRole, Pair, SessionId, Side, Signal, SignalAction, SignalId, SignalState,
    Strategy, Timestamp, TradingPolicy, UserId,
};

use crate::{
    AuditRecord, BackupCodeRecord, DealFilter, EmailChangeOutcome, EnableTotp, ExchangeAccountStatus, KekState,
    KeyCheck, KillSwitchOutcome, LoginWrite, NewEmailChange, NewEmailToken, NewExchangeAccount, NewSession, NewSignal,
    NewUser, NewWebhookSecret, OperatorSettings, PreferencesUpdate, Registration, SealedBlob, SealedColumn,
    SecondFactorUse, SettingsWrite, SignalOutcome, Store, StoreError, StoreResult, StoredKeyPermissions, ThrottleRule,
    TokenPurpose, WebhookSecrets,
};

/// Expands to one `#[tokio::test]` per contract function. `$make` is an async expression that
/// yields a fresh store (anything that derefs to `dyn Store`).
#[macro_export]
macro_rules! store_contract_tests {
    ($make:expr) => {
        $crate::store_contract_tests!(@each $make;
            users_are_created_and_found,
            a_taken_email_conflicts_and_writes_nothing,
            verification_tokens_are_single_use_and_expire,
            password_reset_consumes_the_token_and_ends_sessions,
            sign_in_creates_and_rotates_sessions,
            sessions_are_listed_touched_and_revoked_per_user,
            password_change_keeps_only_the_current_session,
            reauthentication_rotates_the_token,
            expired_and_idle_sessions_are_purged,
            throttles_block_at_the_limit_and_double,
            throttles_forget_old_failures_and_clear_on_sign_in,
            throttles_lock_after_a_hard_limit_until_cleared,
            audit_log_is_per_user_newest_first_and_paged,
            ping_answers,
            totp_setup_is_pending_until_confirmed_then_enabled_once,
            a_totp_step_is_spent_at_most_once,
            a_second_factor_already_spent_fails_the_sign_in_and_writes_nothing,
            backup_codes_are_single_use_and_replaced_as_a_set,
            disabling_totp_removes_seed_codes_and_other_sessions,
            preferences_update_only_the_given_fields,
            the_first_kek_is_written_once_even_by_concurrent_starts,
            sealed_blobs_carry_their_kek_version_through_setup_enable_and_disable,
            a_rotation_makes_one_new_active_key_even_when_nodes_rotate_at_once,
            sealed_blobs_are_listed_by_version_and_a_swap_loses_to_any_change,
            a_kek_is_destroyed_only_unreferenced_decrypt_only_and_past_its_grace,
            an_email_change_is_confirmed_once_and_ends_other_sessions,
            an_email_change_to_a_taken_address_changes_nothing,
            exchange_accounts_are_stored_listed_checked_and_deleted,
            an_api_key_is_connected_once_across_all_users,
            exchange_secrets_take_part_in_rotation,
            bots_are_stored_listed_and_updated_per_user,
            webhook_secrets_are_hashes_rotated_with_a_grace_period,
            deals_and_orders_round_trip_every_value_exactly,
            deals_are_listed_newest_first_and_filtered_by_bot_and_status,
            open_deals_are_the_unfinished_deals_of_the_bots_asked_for,
            a_deal_is_saved_only_under_the_nodes_live_lease,
            a_deal_is_written_whole_or_not_at_all,
            claims_lease_the_bots_that_need_running,
            a_finished_deal_with_live_orders_still_needs_running,
            concurrent_claims_never_share_a_bot,
            manual_orders_are_recorded_and_counted_since,
            unresolved_manual_orders_are_listed_until_the_venue_settles_them,
            manual_orders_only_move_forward_even_when_updated_at_once,
            trading_policies_are_set_per_account_by_its_owner,
            the_kill_switch_stops_bots_revokes_webhooks_and_ends_other_sessions,
            deleting_an_exchange_account_removes_its_bots_deals_orders_and_policy,
            a_webhook_target_is_any_bot_by_id_with_its_secrets,
            signals_round_trip_every_value_and_are_listed_newest_first,
            a_duplicate_signal_inside_the_window_is_refused_and_writes_nothing,
            a_batch_of_signals_is_recorded_in_order_each_with_its_own_answer,
            identical_signals_arriving_at_once_are_recorded_once,
            due_signals_are_the_pending_due_signals_of_the_nodes_leased_bots,
            a_signal_is_finished_once_and_never_with_a_pending_outcome,
            a_deal_saved_with_its_signal_finishes_it_in_the_same_write,
            expiry_ends_overdue_pending_signals_and_forgets_old_dedupe_entries,
            the_first_account_is_the_operator_and_no_later_one,
            first_accounts_created_at_once_make_exactly_one_operator,
            only_the_operator_changes_the_settings_and_each_change_is_audited,
            closed_registration_creates_nothing_until_reopened,
        );
    };
    (@each $make:expr; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let store = $make.await;
                $crate::contract::$name(&*store).await;
            }
        )+
    };
}

const T0: i64 = 1_800_000_000_000;
const DAY: Duration = Duration::from_secs(86_400);

fn at(offset_secs: i64) -> Timestamp {
    Timestamp::from_unix_millis(T0 + offset_secs * 1000)
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    for chunk in out.chunks_mut(16) {
        let id = uuid::Uuid::new_v4();
        chunk.copy_from_slice(&id.as_bytes()[..chunk.len()]);
    }
    out
}

fn new_user(email: &str) -> NewUser {
    NewUser {
        id: UserId::from_random_bytes(random_bytes()),
        email: Email::parse(email).expect("test email"),
        password_phc: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        created_at: at(0),
    }
}

fn token(user: UserId, purpose: TokenPurpose, expires_in: Duration) -> NewEmailToken {
    NewEmailToken {
        hash: random_bytes(),
        user_id: user,
        purpose,
        created_at: at(0),
        expires_at: at(0).plus(expires_in),
    }
}

fn audit(user: Option<UserId>, kind: &str, when: Timestamp) -> AuditRecord {
    AuditRecord {
        id: AuditId::from_random_bytes(random_bytes()),
        user_id: user,
        at: when,
        kind: kind.to_owned(),
        ip: "192.0.2.7".to_owned(),
        user_agent: "contract-test".to_owned(),
        detail: "{}".to_owned(),
    }
}

fn session(user: UserId, when: Timestamp) -> NewSession {
    NewSession {
        id: SessionId::from_random_bytes(random_bytes()),
        token_hash: random_bytes(),
        user_id: user,
        created_at: when,
        expires_at: when.plus(Duration::from_secs(12 * 3600)),
        ip: "192.0.2.7".to_owned(),
        user_agent: "contract-test".to_owned(),
    }
}

fn login(new: &NewSession, replaces: Option<[u8; 32]>) -> LoginWrite {
    LoginWrite {
        session: new.clone(),
        replaces,
        upgraded_password_phc: None,
        clear_throttles: vec![],
        second_factor: None,
        audit: audit(Some(new.user_id), "auth.login_succeeded", new.created_at),
    }
}

async fn register(store: &dyn Store, email: &str) -> (NewUser, NewEmailToken) {
    let user = new_user(email);
    let verify = token(user.id, TokenPurpose::VerifyEmail, DAY);
    store.create_user(&user, &verify, &audit(Some(user.id), "auth.registered", at(0))).await.expect("create user");
    (user, verify)
}

pub async fn users_are_created_and_found(store: &dyn Store) {
    let (user, _) = register(store, "Alice.Example@Example.com").await;
    let found = store.user_by_email("alice.example@example.com").await.unwrap().expect("by canonical email");
    assert_eq!(found.id, user.id);
    assert_eq!(found.email.as_str(), "Alice.Example@example.com");
    assert_eq!(found.password_phc, user.password_phc);
    assert_eq!(found.email_verified_at, None);
    assert!(!found.totp_enabled && !found.hide_balances);
    assert_eq!(found.created_at, at(0));
    assert_eq!(store.user_by_id(user.id).await.unwrap(), Some(found));
    assert_eq!(store.user_by_email("nobody@example.com").await.unwrap(), None);
    assert_eq!(store.user_by_id(UserId::from_random_bytes(random_bytes())).await.unwrap(), None);
}

pub async fn a_taken_email_conflicts_and_writes_nothing(store: &dyn Store) {
    let (first, _) = register(store, "bob@example.com").await;
    let second = new_user("BOB@example.com");
    let verify = token(second.id, TokenPurpose::VerifyEmail, DAY);
    let err = store
        .create_user(&second, &verify, &audit(Some(second.id), "auth.registered", at(0)))
        .await
        .expect_err("same canonical email");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    // Nothing of the failed operation remains: no second user, no usable token, no audit row.
    assert_eq!(store.user_by_email("bob@example.com").await.unwrap().map(|u| u.id), Some(first.id));
    assert_eq!(store.user_by_id(second.id).await.unwrap(), None);
    assert_eq!(
        store.verify_email(&verify.hash, at(1), &audit(None, "auth.email_verified", at(1))).await.unwrap(),
        None
    );
    assert!(store.audit_for_user(second.id, None, 10).await.unwrap().is_empty());
}

pub async fn verification_tokens_are_single_use_and_expire(store: &dyn Store) {
    let (user, verify) = register(store, "carol@example.com").await;
    let done = audit(None, "auth.email_verified", at(60));
    // A token of another purpose with the same owner does not verify.
    let reset = token(user.id, TokenPurpose::ResetPassword, DAY);
    store.insert_email_token(&reset, &audit(Some(user.id), "auth.password_reset_requested", at(1))).await.unwrap();
    assert_eq!(store.verify_email(&reset.hash, at(60), &done).await.unwrap(), None);
    // Exactly at expiry the token is dead.
    assert_eq!(store.verify_email(&verify.hash, at(0).plus(DAY), &done).await.unwrap(), None);
    assert_eq!(store.verify_email(&verify.hash, at(60), &done).await.unwrap(), Some(user.id));
    assert_eq!(store.user_by_id(user.id).await.unwrap().unwrap().email_verified_at, Some(at(60)));
    assert_eq!(store.verify_email(&verify.hash, at(61), &done).await.unwrap(), None, "second use");
    let kinds: Vec<String> =
        store.audit_for_user(user.id, None, 10).await.unwrap().into_iter().map(|a| a.kind).collect();
    assert_eq!(kinds, ["auth.email_verified", "auth.password_reset_requested", "auth.registered"]);
}

pub async fn password_reset_consumes_the_token_and_ends_sessions(store: &dyn Store) {
    let (user, _) = register(store, "dave@example.com").await;
    let s1 = session(user.id, at(10));
    store.record_login(&login(&s1, None)).await.unwrap();
    let first = token(user.id, TokenPurpose::ResetPassword, Duration::from_secs(3600));
    let second = token(user.id, TokenPurpose::ResetPassword, Duration::from_secs(3600));
    for t in [&first, &second] {
        store.insert_email_token(t, &audit(Some(user.id), "auth.password_reset_requested", at(20))).await.unwrap();
    }
    assert_eq!(store.reset_token_user(&first.hash, at(30)).await.unwrap(), Some(user.id));
    assert_eq!(store.reset_token_user(&first.hash, at(3600)).await.unwrap(), None, "expired");
    let done = audit(None, "auth.password_reset", at(40));
    assert_eq!(store.reset_password(&first.hash, at(40), "$argon2id$new", &done).await.unwrap(), Some(user.id));
    let after = store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(after.password_phc, "$argon2id$new");
    assert_eq!(after.email_verified_at, Some(at(40)), "a reset link proves the mailbox");
    assert!(store.sessions_for_user(user.id).await.unwrap().is_empty(), "all sessions end");
    assert_eq!(store.reset_password(&first.hash, at(41), "$argon2id$again", &done).await.unwrap(), None);
    assert_eq!(
        store.reset_password(&second.hash, at(41), "$argon2id$again", &done).await.unwrap(),
        None,
        "siblings die"
    );
    assert_eq!(store.user_by_id(user.id).await.unwrap().unwrap().password_phc, "$argon2id$new");
}

pub async fn sign_in_creates_and_rotates_sessions(store: &dyn Store) {
    let (user, _) = register(store, "erin@example.com").await;
    let first = session(user.id, at(10));
    let mut write = login(&first, None);
    write.upgraded_password_phc = Some("$argon2id$upgraded".to_owned());
    store.record_login(&write).await.unwrap();
    let (found, owner) = store.session_by_token(&first.token_hash).await.unwrap().expect("session");
    assert_eq!(found.id, first.id);
    assert_eq!(found.user_id, user.id);
    assert_eq!((found.created_at, found.last_seen_at, found.expires_at), (at(10), at(10), first.expires_at));
    assert_eq!(found.reauth_at, Some(at(10)));
    assert_eq!((found.ip.as_str(), found.user_agent.as_str()), ("192.0.2.7", "contract-test"));
    assert_eq!(owner.password_phc, "$argon2id$upgraded");
    // Signing in again from the same browser replaces the old session.
    let second = session(user.id, at(20));
    store.record_login(&login(&second, Some(first.token_hash))).await.unwrap();
    assert!(store.session_by_token(&first.token_hash).await.unwrap().is_none());
    assert!(store.session_by_token(&second.token_hash).await.unwrap().is_some());
    assert_eq!(store.sessions_for_user(user.id).await.unwrap().len(), 1);
    // A duplicate id is refused as a whole.
    let mut dup = session(user.id, at(30));
    dup.id = second.id;
    assert!(store.record_login(&login(&dup, None)).await.is_err());
    assert!(store.session_by_token(&dup.token_hash).await.unwrap().is_none());
}

pub async fn sessions_are_listed_touched_and_revoked_per_user(store: &dyn Store) {
    let (alice, _) = register(store, "frank@example.com").await;
    let (mallory, _) = register(store, "mallory@example.com").await;
    let a1 = session(alice.id, at(10));
    let a2 = session(alice.id, at(20));
    let m1 = session(mallory.id, at(30));
    for s in [&a1, &a2, &m1] {
        store.record_login(&login(s, None)).await.unwrap();
    }
    store.touch_session(a1.id, at(100)).await.unwrap();
    store.touch_session(a1.id, at(50)).await.unwrap(); // never moves backwards
    let listed = store.sessions_for_user(alice.id).await.unwrap();
    assert_eq!(listed.iter().map(|s| s.id).collect::<Vec<_>>(), [a1.id, a2.id], "most recently seen first");
    assert_eq!(listed[0].last_seen_at, at(100));
    // One user cannot revoke another's session.
    let revoke = audit(Some(mallory.id), "auth.session_revoked", at(110));
    assert!(!store.delete_session(mallory.id, a1.id, &revoke).await.unwrap());
    assert!(store.session_by_token(&a1.token_hash).await.unwrap().is_some());
    assert!(
        store.delete_session(alice.id, a1.id, &audit(Some(alice.id), "auth.session_revoked", at(110))).await.unwrap()
    );
    assert!(store.session_by_token(&a1.token_hash).await.unwrap().is_none());
    assert!(
        !store.delete_session(alice.id, a1.id, &audit(Some(alice.id), "auth.session_revoked", at(111))).await.unwrap()
    );
    // Log out everywhere touches only that user.
    let all = audit(Some(alice.id), "auth.logout_all", at(120));
    assert_eq!(store.delete_sessions(alice.id, None, &all).await.unwrap(), 1);
    assert!(store.sessions_for_user(alice.id).await.unwrap().is_empty());
    assert_eq!(store.sessions_for_user(mallory.id).await.unwrap().len(), 1);
}

pub async fn password_change_keeps_only_the_current_session(store: &dyn Store) {
    let (user, _) = register(store, "grace@example.com").await;
    let keep = session(user.id, at(10));
    let other = session(user.id, at(20));
    for s in [&keep, &other] {
        store.record_login(&login(s, None)).await.unwrap();
    }
    store
        .change_password(user.id, "$argon2id$changed", keep.id, &audit(Some(user.id), "auth.password_changed", at(30)))
        .await
        .unwrap();
    assert_eq!(store.user_by_id(user.id).await.unwrap().unwrap().password_phc, "$argon2id$changed");
    let left: Vec<SessionId> = store.sessions_for_user(user.id).await.unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(left, [keep.id]);
}

pub async fn reauthentication_rotates_the_token(store: &dyn Store) {
    let (user, _) = register(store, "olga@example.com").await;
    let s = session(user.id, at(10));
    store.record_login(&login(&s, None)).await.unwrap();
    let new_hash: [u8; 32] = random_bytes();
    let audit = audit(Some(user.id), "auth.reauthenticated", at(20));
    assert!(store.reauthenticate_session(s.id, &new_hash, at(20), &audit).await.unwrap());
    assert!(store.session_by_token(&s.token_hash).await.unwrap().is_none(), "the old token is dead");
    let (found, _) = store.session_by_token(&new_hash).await.unwrap().expect("new token");
    assert_eq!((found.id, found.reauth_at, found.last_seen_at), (s.id, Some(at(20)), at(20)));
    assert_eq!(found.created_at, at(10));
    let gone = SessionId::from_random_bytes(random_bytes());
    assert!(!store.reauthenticate_session(gone, &random_bytes(), at(30), &audit).await.unwrap());
}

pub async fn expired_and_idle_sessions_are_purged(store: &dyn Store) {
    let (user, _) = register(store, "heidi@example.com").await;
    let fresh = session(user.id, at(0));
    let mut short = session(user.id, at(0));
    short.expires_at = at(100);
    let idle = session(user.id, at(0));
    for s in [&fresh, &short, &idle] {
        store.record_login(&login(s, None)).await.unwrap();
    }
    store.touch_session(fresh.id, at(500)).await.unwrap();
    store.touch_session(short.id, at(500)).await.unwrap();
    // At t=600 with an idle cutoff of t=300: `short` is past its end, `idle` was last seen at 0.
    assert_eq!(store.purge_sessions(at(600), at(300)).await.unwrap(), 2);
    let left: Vec<SessionId> = store.sessions_for_user(user.id).await.unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(left, [fresh.id]);
}

fn rule() -> ThrottleRule {
    ThrottleRule {
        limit: 3,
        base_block: Duration::from_secs(60),
        max_block: Duration::from_secs(150),
        forget_after: Duration::from_secs(3600),
        lock_after: None,
    }
}

pub async fn throttles_block_at_the_limit_and_double(store: &dyn Store) {
    let r = rule();
    assert_eq!(store.throttle_blocked_until("k", at(0)).await.unwrap(), None);
    assert_eq!(store.throttle_hit("k", at(0), &r).await.unwrap(), None);
    assert_eq!(store.throttle_hit("k", at(1), &r).await.unwrap(), None);
    assert_eq!(store.throttle_hit("k", at(2), &r).await.unwrap(), Some(at(62)), "third failure blocks 60 s");
    assert_eq!(store.throttle_blocked_until("k", at(3)).await.unwrap(), Some(at(62)));
    assert_eq!(store.throttle_blocked_until("k", at(62)).await.unwrap(), None, "over at its end");
    assert_eq!(store.throttle_blocked_until("other", at(3)).await.unwrap(), None, "keys are independent");
    for t in 63..65 {
        assert_eq!(store.throttle_hit("k", at(t), &r).await.unwrap(), None);
    }
    assert_eq!(store.throttle_hit("k", at(65), &r).await.unwrap(), Some(at(185)), "sixth: 120 s");
    for t in 186..188 {
        store.throttle_hit("k", at(t), &r).await.unwrap();
    }
    assert_eq!(store.throttle_hit("k", at(188), &r).await.unwrap(), Some(at(338)), "capped at 150 s");
}

pub async fn throttles_forget_old_failures_and_clear_on_sign_in(store: &dyn Store) {
    let r = rule();
    store.throttle_hit("old", at(0), &r).await.unwrap();
    store.throttle_hit("old", at(1), &r).await.unwrap();
    // An hour later the count starts again: two more failures do not block.
    assert_eq!(store.throttle_hit("old", at(3700), &r).await.unwrap(), None);
    assert_eq!(store.throttle_hit("old", at(3701), &r).await.unwrap(), None);
    assert_eq!(store.throttle_hit("old", at(3702), &r).await.unwrap(), Some(at(3762)));
    // A successful sign-in clears the account's key.
    let (user, _) = register(store, "ivan@example.com").await;
    let s = session(user.id, at(3703));
    let mut write = login(&s, None);
    write.clear_throttles = vec!["old".to_owned()];
    store.record_login(&write).await.unwrap();
    assert_eq!(store.throttle_blocked_until("old", at(3704)).await.unwrap(), None);
    assert_eq!(store.throttle_hit("old", at(3705), &r).await.unwrap(), None, "count restarted");
}

pub async fn throttles_lock_after_a_hard_limit_until_cleared(store: &dyn Store) {
    let r = ThrottleRule { lock_after: Some(5), ..rule() };
    for t in 0..4 {
        store.throttle_hit("acct", at(t * 1000), &r).await.unwrap();
    }
    let locked = store.throttle_hit("acct", at(4000), &r).await.unwrap().expect("locked");
    assert!(locked.as_unix_millis() > at(4000).plus(Duration::from_secs(100 * 365 * 86_400)).as_unix_millis());
    assert_eq!(store.throttle_blocked_until("acct", at(400_000)).await.unwrap(), Some(locked), "no end in sight");
    store.throttle_clear("acct").await.unwrap();
    assert_eq!(store.throttle_blocked_until("acct", at(4001)).await.unwrap(), None);
    assert_eq!(store.throttle_hit("acct", at(4002), &r).await.unwrap(), None, "counting starts over");
    store.throttle_clear("never-seen").await.unwrap();
}

pub async fn audit_log_is_per_user_newest_first_and_paged(store: &dyn Store) {
    let (user, _) = register(store, "judy@example.com").await;
    let (other, _) = register(store, "kim@example.com").await;
    for i in 1..=5 {
        store.append_audit(&audit(Some(user.id), &format!("test.event{i}"), at(i))).await.unwrap();
    }
    store.append_audit(&audit(Some(other.id), "test.other", at(3))).await.unwrap();
    store.append_audit(&audit(None, "auth.login_failed", at(3))).await.unwrap();
    let page = store.audit_for_user(user.id, None, 3).await.unwrap();
    let kinds: Vec<&str> = page.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(kinds, ["test.event5", "test.event4", "test.event3"]);
    assert_eq!(page[0].ip, "192.0.2.7");
    assert_eq!(page[0].user_agent, "contract-test");
    assert_eq!(page[0].detail, "{}");
    let next = store.audit_for_user(user.id, Some(page[2].at), 10).await.unwrap();
    let kinds: Vec<&str> = next.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(kinds, ["test.event2", "test.event1", "auth.registered"]);
}

pub async fn ping_answers(store: &dyn Store) {
    store.ping().await.expect("ping");
}

fn codes(n: usize) -> Vec<BackupCodeRecord> {
    (0..n)
        .map(|i| BackupCodeRecord {
            id: BackupCodeId::from_random_bytes(random_bytes()),
            phc: format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$hash{i}"),
        })
        .collect()
}

/// A blob as sealed under KEK version 1 (the store never looks inside).
fn v1(bytes: &[u8]) -> SealedBlob {
    SealedBlob { kek_version: 1, bytes: bytes.to_vec() }
}

/// Registers a user, signs them in once and turns TOTP on with `seed` at step 100.
async fn with_totp(store: &dyn Store, email: &str, seed: &[u8]) -> (NewUser, NewSession, Vec<BackupCodeRecord>) {
    with_totp_sealed(store, email, &v1(seed)).await
}

async fn with_totp_sealed(
    store: &dyn Store,
    email: &str,
    seed: &SealedBlob,
) -> (NewUser, NewSession, Vec<BackupCodeRecord>) {
    let (user, _) = register(store, email).await;
    let current = session(user.id, at(1));
    assert!(store.record_login(&login(&current, None)).await.unwrap());
    assert!(store.begin_totp_setup(user.id, seed, at(2), &audit(Some(user.id), "2fa.setup", at(2))).await.unwrap());
    let backup = codes(10);
    let enable = EnableTotp {
        user: user.id,
        sealed_seed: seed.bytes.clone(),
        step: 100,
        backup_codes: backup.clone(),
        keep_session: current.id,
        now: at(3),
        audit: audit(Some(user.id), "2fa.enabled", at(3)),
    };
    assert!(store.enable_totp(&enable).await.unwrap());
    (user, current, backup)
}

pub async fn totp_setup_is_pending_until_confirmed_then_enabled_once(store: &dyn Store) {
    let (user, _) = register(store, "totp@example.com").await;
    let other = session(user.id, at(1));
    let current = session(user.id, at(1));
    for s in [&other, &current] {
        store.record_login(&login(s, None)).await.unwrap();
    }
    assert!(
        store.begin_totp_setup(user.id, &v1(b"first"), at(2), &audit(Some(user.id), "2fa.setup", at(2))).await.unwrap()
    );
    assert!(
        store
            .begin_totp_setup(user.id, &v1(b"second"), at(3), &audit(Some(user.id), "2fa.setup", at(3)))
            .await
            .unwrap()
    );
    let found = store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(found.totp_pending, Some((b"second".to_vec(), at(3))), "a new setup replaces the old one");
    assert!(!found.totp_enabled && found.totp_seed_sealed.is_none());

    let mut enable = EnableTotp {
        user: user.id,
        sealed_seed: b"first".to_vec(),
        step: 42,
        backup_codes: codes(10),
        keep_session: current.id,
        now: at(4),
        audit: audit(Some(user.id), "2fa.enabled", at(4)),
    };
    assert!(!store.enable_totp(&enable).await.unwrap(), "a superseded setup cannot be confirmed");
    assert_eq!(store.unused_backup_codes(user.id).await.unwrap().len(), 0, "nothing written");
    enable.sealed_seed = b"second".to_vec();
    assert!(store.enable_totp(&enable).await.unwrap());
    let found = store.user_by_id(user.id).await.unwrap().unwrap();
    assert!(found.totp_enabled);
    assert_eq!(found.totp_seed_sealed.as_deref(), Some(&b"second"[..]));
    assert_eq!(found.totp_last_step, Some(42));
    assert_eq!(found.totp_pending, None);
    assert_eq!(store.unused_backup_codes(user.id).await.unwrap().len(), 10);
    let ids: Vec<_> = store.sessions_for_user(user.id).await.unwrap().iter().map(|s| s.id).collect();
    assert_eq!(ids, [current.id], "other sessions end when the factor changes");

    assert!(!store.enable_totp(&enable).await.unwrap(), "already on");
    assert!(
        !store.begin_totp_setup(user.id, &v1(b"x"), at(5), &audit(Some(user.id), "2fa.setup", at(5))).await.unwrap(),
        "no setup while on"
    );
}

pub async fn a_totp_step_is_spent_at_most_once(store: &dyn Store) {
    let (user, _, _) = with_totp(store, "steps@example.com", b"seed").await;
    let (pending, _) = register(store, "pending@example.com").await;
    let a = audit(Some(pending.id), "2fa.setup", at(2));
    assert!(store.begin_totp_setup(pending.id, &v1(b"pending-seed"), at(2), &a).await.unwrap());
    let mut blobs = store.sealed_blobs().await.unwrap();
    blobs.sort();
    assert_eq!(blobs, [(1, b"pending-seed".to_vec()), (1, b"seed".to_vec())], "every sealed secret is listed");
    let spend = |step| {
        let a = audit(Some(user.id), "2fa.used", at(5));
        async move { store.spend_second_factor(user.id, SecondFactorUse::TotpStep(step), at(5), &a).await.unwrap() }
    };
    assert!(!spend(100).await, "the confirming step is spent");
    assert!(!spend(99).await, "earlier steps too");
    assert!(spend(101).await);
    assert!(!spend(101).await, "replay");
    assert!(spend(103).await);
    assert!(!spend(102).await, "a step older than the last accepted one");
    assert_eq!(store.user_by_id(user.id).await.unwrap().unwrap().totp_last_step, Some(103));
    let (plain, _) = register(store, "plain@example.com").await;
    let a = audit(Some(plain.id), "2fa.used", at(5));
    assert!(!store.spend_second_factor(plain.id, SecondFactorUse::TotpStep(1), at(5), &a).await.unwrap(), "2FA off");
}

pub async fn a_second_factor_already_spent_fails_the_sign_in_and_writes_nothing(store: &dyn Store) {
    let (user, current, _) = with_totp(store, "replay@example.com", b"seed").await;
    let fresh = session(user.id, at(10));
    let mut write = login(&fresh, Some(current.token_hash));
    write.second_factor = Some(SecondFactorUse::TotpStep(100));
    assert!(!store.record_login(&write).await.unwrap());
    let ids: Vec<_> = store.sessions_for_user(user.id).await.unwrap().iter().map(|s| s.id).collect();
    assert_eq!(ids, [current.id], "no new session, the old one not replaced");
    let audit_kinds: Vec<_> = store.audit_for_user(user.id, None, 50).await.unwrap();
    assert_eq!(audit_kinds.iter().filter(|a| a.at == at(10)).count(), 0, "no audit row of the refused sign-in");

    write.second_factor = Some(SecondFactorUse::TotpStep(101));
    assert!(store.record_login(&write).await.unwrap());
    let ids: Vec<_> = store.sessions_for_user(user.id).await.unwrap().iter().map(|s| s.id).collect();
    assert_eq!(ids, [fresh.id]);
    assert_eq!(store.user_by_id(user.id).await.unwrap().unwrap().totp_last_step, Some(101));
}

pub async fn backup_codes_are_single_use_and_replaced_as_a_set(store: &dyn Store) {
    let (user, _, backup) = with_totp(store, "backup@example.com", b"seed").await;
    let (other, _, other_codes) = with_totp(store, "other-backup@example.com", b"seed2").await;
    let a = audit(Some(user.id), "2fa.backup_code_used", at(6));
    let spend = |id| store.spend_second_factor(user.id, SecondFactorUse::BackupCode(id), at(6), &a);
    assert!(!spend(other_codes[0].id).await.unwrap(), "another user's code");
    assert!(spend(backup[3].id).await.unwrap());
    assert!(!spend(backup[3].id).await.unwrap(), "single use");
    let unused = store.unused_backup_codes(user.id).await.unwrap();
    assert_eq!(unused.len(), 9);
    assert!(unused.iter().all(|c| c.id != backup[3].id));
    assert!(unused.iter().all(|c| backup.contains(c)), "stored as given");

    let fresh = codes(10);
    let a2 = audit(Some(user.id), "2fa.backup_codes_regenerated", at(7));
    assert!(store.replace_backup_codes(user.id, &fresh, at(7), &a2).await.unwrap());
    let mut unused: Vec<_> = store.unused_backup_codes(user.id).await.unwrap();
    let mut expected = fresh.clone();
    unused.sort_by_key(|c| c.id.to_string());
    expected.sort_by_key(|c| c.id.to_string());
    assert_eq!(unused, expected);
    assert!(!spend(backup[0].id).await.unwrap(), "old codes die with the regeneration");
    assert_eq!(store.unused_backup_codes(other.id).await.unwrap().len(), 10, "other users untouched");

    let (plain, _) = register(store, "plain-backup@example.com").await;
    let a3 = audit(Some(plain.id), "x", at(7));
    assert!(!store.replace_backup_codes(plain.id, &codes(10), at(7), &a3).await.unwrap(), "2FA off");
    assert!(store.unused_backup_codes(plain.id).await.unwrap().is_empty());
}

pub async fn disabling_totp_removes_seed_codes_and_other_sessions(store: &dyn Store) {
    let (user, current, _) = with_totp(store, "disable@example.com", b"seed").await;
    let other = session(user.id, at(5));
    store.record_login(&login(&other, None)).await.unwrap();
    let a = audit(Some(user.id), "2fa.disabled", at(6));
    assert!(store.disable_totp(user.id, current.id, &a).await.unwrap());
    let found = store.user_by_id(user.id).await.unwrap().unwrap();
    assert!(!found.totp_enabled);
    assert_eq!((found.totp_seed_sealed, found.totp_last_step, found.totp_pending), (None, None, None));
    assert!(store.unused_backup_codes(user.id).await.unwrap().is_empty());
    let ids: Vec<_> = store.sessions_for_user(user.id).await.unwrap().iter().map(|s| s.id).collect();
    assert_eq!(ids, [current.id]);
    assert!(!store.disable_totp(user.id, current.id, &a).await.unwrap(), "already off");
    let kinds: Vec<_> = store.audit_for_user(user.id, None, 50).await.unwrap().into_iter().map(|a| a.kind).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "2fa.disabled").count(), 1, "one audit row, for the change that happened");
}

pub async fn preferences_update_only_the_given_fields(store: &dyn Store) {
    let (user, _) = register(store, "prefs@example.com").await;
    let set = |update: PreferencesUpdate| {
        let a = audit(Some(user.id), "account.preferences_changed", at(1));
        async move { store.update_preferences(user.id, &update, &a).await.unwrap().unwrap() }
    };
    let u = set(PreferencesUpdate { hide_balances: Some(true), anti_phishing_code: None }).await;
    assert!(u.hide_balances);
    assert_eq!(u.anti_phishing_code, None);
    let u = set(PreferencesUpdate { hide_balances: None, anti_phishing_code: Some(Some("blue heron".into())) }).await;
    assert!(u.hide_balances, "kept");
    assert_eq!(u.anti_phishing_code.as_deref(), Some("blue heron"));
    let u = set(PreferencesUpdate { hide_balances: Some(false), anti_phishing_code: None }).await;
    assert!(!u.hide_balances);
    assert_eq!(u.anti_phishing_code.as_deref(), Some("blue heron"), "kept");
    let u = set(PreferencesUpdate { hide_balances: None, anti_phishing_code: Some(None) }).await;
    assert_eq!(u.anti_phishing_code, None, "cleared");
    let stored = store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(stored, u);
    let nobody = UserId::from_random_bytes(random_bytes());
    let a = audit(Some(nobody), "account.preferences_changed", at(1));
    assert!(store.update_preferences(nobody, &PreferencesUpdate::default(), &a).await.unwrap().is_none());
}

fn email_change(user: UserId, to: &str, when: Timestamp) -> NewEmailChange {
    NewEmailChange {
        hash: random_bytes(),
        user_id: user,
        new_email: Email::parse(to).unwrap(),
        created_at: when,
        expires_at: when.plus(Duration::from_secs(3600)),
    }
}

pub async fn an_email_change_is_confirmed_once_and_ends_other_sessions(store: &dyn Store) {
    let (user, verify) = register(store, "old@example.com").await;
    let current = session(user.id, at(1));
    let other = session(user.id, at(1));
    for s in [&current, &other] {
        store.record_login(&login(s, None)).await.unwrap();
    }
    let reset = token(user.id, TokenPurpose::ResetPassword, DAY);
    store.insert_email_token(&reset, &audit(Some(user.id), "x", at(1))).await.unwrap();
    let first = email_change(user.id, "first@example.com", at(2));
    store.request_email_change(&first, &audit(Some(user.id), "account.email_change_requested", at(2))).await.unwrap();
    let second = email_change(user.id, "New.Address@Example.com", at(3));
    store.request_email_change(&second, &audit(Some(user.id), "account.email_change_requested", at(3))).await.unwrap();

    let confirm = |hash: [u8; 32], when: Timestamp| {
        let a = audit(None, "account.email_changed", when);
        async move { store.confirm_email_change(&hash, when, Some(current.id), &a).await.unwrap() }
    };
    assert_eq!(confirm(first.hash, at(4)).await, EmailChangeOutcome::InvalidToken, "a newer request replaces it");
    let outcome = confirm(second.hash, at(5)).await;
    assert_eq!(
        outcome,
        EmailChangeOutcome::Changed {
            user: user.id,
            old_email: Email::parse("old@example.com").unwrap(),
            new_email: Email::parse("New.Address@Example.com").unwrap()
        }
    );
    assert_eq!(confirm(second.hash, at(6)).await, EmailChangeOutcome::InvalidToken, "single use");
    assert!(store.user_by_email("old@example.com").await.unwrap().is_none());
    let found = store.user_by_email("new.address@example.com").await.unwrap().expect("found by the new address");
    assert_eq!(found.email.as_str(), "New.Address@example.com");
    assert_eq!(found.email_verified_at, Some(at(5)), "the link proved the new address");
    let ids: Vec<_> = store.sessions_for_user(user.id).await.unwrap().iter().map(|s| s.id).collect();
    assert_eq!(ids, [current.id], "other sessions end");
    assert_eq!(store.reset_token_user(&reset.hash, at(6)).await.unwrap(), None, "links sent to the old address die");
    let stale = audit(None, "auth.email_verified", at(6));
    assert_eq!(store.verify_email(&verify.hash, at(6), &stale).await.unwrap(), None);
    let kinds: Vec<_> = store.audit_for_user(user.id, None, 50).await.unwrap().into_iter().map(|a| a.kind).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "account.email_changed").count(), 1, "audited once, for the user");

    let late = email_change(user.id, "later@example.com", at(10));
    store.request_email_change(&late, &audit(Some(user.id), "account.email_change_requested", at(10))).await.unwrap();
    assert_eq!(confirm(late.hash, at(10 + 3600)).await, EmailChangeOutcome::InvalidToken, "expired");
}

pub async fn an_email_change_to_a_taken_address_changes_nothing(store: &dyn Store) {
    let (user, _) = register(store, "mover@example.com").await;
    let s = session(user.id, at(1));
    store.record_login(&login(&s, None)).await.unwrap();
    let change = email_change(user.id, "taken@example.com", at(2));
    store.request_email_change(&change, &audit(Some(user.id), "account.email_change_requested", at(2))).await.unwrap();
    register(store, "Taken@example.com").await;
    let a = audit(None, "account.email_changed", at(3));
    let outcome = store.confirm_email_change(&change.hash, at(3), None, &a).await.unwrap();
    assert_eq!(
        outcome,
        EmailChangeOutcome::Taken { user: user.id, new_email: Email::parse("taken@example.com").unwrap() }
    );
    let found = store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(found.email.as_str(), "mover@example.com", "unchanged");
    assert_eq!(store.sessions_for_user(user.id).await.unwrap().len(), 1, "no session ended");
    let kinds: Vec<_> = store.audit_for_user(user.id, None, 50).await.unwrap().into_iter().map(|a| a.kind).collect();
    assert!(!kinds.iter().any(|k| k == "account.email_changed"));
}

pub async fn the_first_kek_is_written_once_even_by_concurrent_starts(store: &dyn Store) {
    assert!(store.vault_keks().await.unwrap().is_empty());
    let (a, b) = tokio::join!(store.insert_first_kek(b"wrapped-a", at(0)), store.insert_first_kek(b"wrapped-b", at(0)));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a != b, "exactly one of two nodes starting at once writes the first key: {a} {b}");
    let ring = store.vault_keks().await.unwrap();
    assert_eq!(ring.len(), 1);
    assert_eq!((ring[0].version, ring[0].state, ring[0].created_at), (1, KekState::Active, at(0)));
    assert_eq!(ring[0].wrapped, if a { b"wrapped-a".to_vec() } else { b"wrapped-b".to_vec() });
    assert!(!store.insert_first_kek(b"later", at(1)).await.unwrap(), "never replaced");
}

// --- key rotation (SEC-4) ---

fn sealed(version: u32, bytes: &[u8]) -> SealedBlob {
    SealedBlob { kek_version: version, bytes: bytes.to_vec() }
}

/// A user with a pending (unconfirmed) TOTP setup sealed as `blob`.
async fn with_pending(store: &dyn Store, email: &str, blob: &SealedBlob) -> NewUser {
    let (user, _) = register(store, email).await;
    let a = audit(Some(user.id), "2fa.setup", at(2));
    assert!(store.begin_totp_setup(user.id, blob, at(2), &a).await.unwrap());
    user
}

pub async fn sealed_blobs_carry_their_kek_version_through_setup_enable_and_disable(store: &dyn Store) {
    let (user, _) = register(store, "versions@example.com").await;
    let current = session(user.id, at(1));
    assert!(store.record_login(&login(&current, None)).await.unwrap());
    let a = audit(Some(user.id), "2fa.setup", at(2));
    assert!(store.begin_totp_setup(user.id, &sealed(3, b"pending"), at(2), &a).await.unwrap());
    assert_eq!(store.count_blobs_with_kek(3).await.unwrap(), 1);
    let listed = store.sealed_blobs_with_kek(3, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].at.column, SealedColumn::TotpPending);
    assert_eq!((listed[0].at.row_id.clone(), listed[0].at.user_id), (user.id.to_string(), user.id));
    assert_eq!((listed[0].at.venue.as_str(), listed[0].at.api_key_fingerprint), ("", [0; 32]));
    assert_eq!(listed[0].at.purpose, "totp_seed");
    assert_eq!(listed[0].blob, b"pending");

    let enable = EnableTotp {
        user: user.id,
        sealed_seed: b"pending".to_vec(),
        step: 7,
        backup_codes: codes(2),
        keep_session: current.id,
        now: at(3),
        audit: audit(Some(user.id), "2fa.enabled", at(3)),
    };
    assert!(store.enable_totp(&enable).await.unwrap());
    let listed = store.sealed_blobs_with_kek(3, 10).await.unwrap();
    assert_eq!(listed.len(), 1, "the version moves with the blob from pending to enabled");
    assert_eq!((listed[0].at.column, listed[0].blob.as_slice()), (SealedColumn::TotpSeed, &b"pending"[..]));
    assert_eq!(store.count_blobs_with_kek(3).await.unwrap(), 1);
    assert_eq!(store.sealed_blobs().await.unwrap(), [(3, b"pending".to_vec())]);

    assert!(store.disable_totp(user.id, current.id, &audit(Some(user.id), "2fa.disabled", at(4))).await.unwrap());
    assert_eq!(store.count_blobs_with_kek(3).await.unwrap(), 0, "no version left behind without its blob");
    assert!(store.sealed_blobs_with_kek(3, 10).await.unwrap().is_empty());
}

pub async fn a_rotation_makes_one_new_active_key_even_when_nodes_rotate_at_once(store: &dyn Store) {
    assert!(store.insert_first_kek(b"k1", at(0)).await.unwrap());
    // Three nodes start a rotation to version 2 at the same moment: exactly one wins.
    let (a, b, c) = tokio::join!(
        store.rotate_kek(2, b"k2-a", at(10)),
        store.rotate_kek(2, b"k2-b", at(10)),
        store.rotate_kek(2, b"k2-c", at(10))
    );
    let won: Vec<bool> = [a, b, c].into_iter().map(Result::unwrap).collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    let ring = store.vault_keks().await.unwrap();
    assert_eq!(ring.len(), 2);
    assert_eq!((ring[0].version, ring[0].state, ring[0].demoted_at), (1, KekState::DecryptOnly, Some(at(10))));
    assert_eq!(ring[0].wrapped, b"k1", "a demoted key still opens what names it");
    assert_eq!((ring[1].version, ring[1].state, ring[1].created_at), (2, KekState::Active, at(10)));
    assert_eq!(ring[1].demoted_at, None);
    let winner = ["k2-a", "k2-b", "k2-c"][won.iter().position(|w| *w).unwrap()];
    assert_eq!(ring[1].wrapped, winner.as_bytes());

    assert!(!store.rotate_kek(2, b"again", at(11)).await.unwrap(), "a version is never replaced");
    assert!(!store.rotate_kek(4, b"skip", at(11)).await.unwrap(), "versions go up by one");
    assert_eq!(store.vault_keks().await.unwrap(), ring, "a refused rotation changes nothing");

    // Several rounds of concurrent rotations: each round exactly one winner, always one active.
    for version in 3..=5 {
        let (a, b) = tokio::join!(
            store.rotate_kek(version, b"x", at(i64::from(version) * 10)),
            store.rotate_kek(version, b"y", at(i64::from(version) * 10))
        );
        assert!(a.unwrap() != b.unwrap(), "round {version}: exactly one rotation wins");
        let ring = store.vault_keks().await.unwrap();
        let active: Vec<u32> = ring.iter().filter(|k| k.state == KekState::Active).map(|k| k.version).collect();
        assert_eq!(active, [version]);
        assert!(ring.iter().filter(|k| k.version < version).all(|k| k.state == KekState::DecryptOnly));
    }
    let ring = store.vault_keks().await.unwrap();
    assert_eq!(ring[1].demoted_at, Some(at(30)), "demoted by the rotation to version 3");
}

pub async fn sealed_blobs_are_listed_by_version_and_a_swap_loses_to_any_change(store: &dyn Store) {
    let mut users = Vec::new();
    for i in 0..3 {
        let (user, _, _) = with_totp(store, &format!("swap{i}@example.com"), format!("seed-{i}").as_bytes()).await;
        users.push(user);
    }
    let pending = with_pending(store, "swap-pending@example.com", &v1(b"pending-old")).await;
    let (newer, _, _) = with_totp_sealed(store, "swap-newer@example.com", &sealed(2, b"seed-v2")).await;
    assert_eq!(store.count_blobs_with_kek(1).await.unwrap(), 4);
    assert_eq!(store.count_blobs_with_kek(2).await.unwrap(), 1);
    let page = store.sealed_blobs_with_kek(1, 2).await.unwrap();
    assert_eq!(page.len(), 2, "at most the limit");
    let all = store.sealed_blobs_with_kek(1, 100).await.unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all.iter().filter(|e| e.at.column == SealedColumn::TotpPending).count(), 1);
    assert!(all.iter().all(|e| e.at.user_id != newer.id), "only the version asked for");
    let entry = |user: UserId| all.iter().find(|e| e.at.user_id == user).unwrap().clone();

    // A successful swap moves the blob and its version.
    let first = entry(users[0].id);
    assert!(store.replace_sealed_blob(&first.at, &first.blob, &sealed(2, b"seed-0-v2")).await.unwrap());
    let found = store.user_by_id(users[0].id).await.unwrap().unwrap();
    assert_eq!(found.totp_seed_sealed.as_deref(), Some(&b"seed-0-v2"[..]));
    assert_eq!((store.count_blobs_with_kek(1).await.unwrap(), store.count_blobs_with_kek(2).await.unwrap()), (3, 2));
    // Another node that read the same old blob loses: the row is not written twice.
    assert!(!store.replace_sealed_blob(&first.at, &first.blob, &sealed(2, b"other-node")).await.unwrap());
    let found = store.user_by_id(users[0].id).await.unwrap().unwrap();
    assert_eq!(found.totp_seed_sealed.as_deref(), Some(&b"seed-0-v2"[..]));

    // The user turned two-factor sign-in off meanwhile: the swap must not bring the seed back.
    let second = entry(users[1].id);
    let keep = SessionId::from_random_bytes(random_bytes());
    assert!(store.disable_totp(users[1].id, keep, &audit(Some(users[1].id), "2fa.disabled", at(9))).await.unwrap());
    assert!(!store.replace_sealed_blob(&second.at, &second.blob, &sealed(2, b"resurrected")).await.unwrap());
    let found = store.user_by_id(users[1].id).await.unwrap().unwrap();
    assert_eq!((found.totp_seed_sealed, found.totp_enabled), (None, false));

    // The user started a new setup meanwhile: the new pending seed stays.
    let old_pending = entry(pending.id);
    let a = audit(Some(pending.id), "2fa.setup", at(9));
    assert!(store.begin_totp_setup(pending.id, &sealed(2, b"pending-new"), at(9), &a).await.unwrap());
    assert!(!store.replace_sealed_blob(&old_pending.at, &old_pending.blob, &sealed(2, b"stale")).await.unwrap());
    let found = store.user_by_id(pending.id).await.unwrap().unwrap();
    assert_eq!(found.totp_pending.map(|(b, _)| b), Some(b"pending-new".to_vec()));

    // A swap touches its own column and row only.
    let third = entry(users[2].id);
    let mut wrong_row = third.at.clone();
    wrong_row.row_id = users[0].id.to_string();
    assert!(!store.replace_sealed_blob(&wrong_row, &third.blob, &sealed(2, b"x")).await.unwrap());
    let mut wrong_column = third.at.clone();
    wrong_column.column = SealedColumn::TotpPending;
    assert!(!store.replace_sealed_blob(&wrong_column, &third.blob, &sealed(2, b"x")).await.unwrap());
    assert_eq!(store.sealed_blobs_with_kek(1, 100).await.unwrap(), [third]);
}

pub async fn a_kek_is_destroyed_only_unreferenced_decrypt_only_and_past_its_grace(store: &dyn Store) {
    let grace = Duration::from_secs(90);
    assert!(store.insert_first_kek(b"k1", at(0)).await.unwrap());
    let (user, _, _) = with_totp(store, "destroy@example.com", b"seed").await;
    let pending = with_pending(store, "destroy-pending@example.com", &v1(b"pending")).await;
    assert!(!store.destroy_kek(1, at(1000), grace).await.unwrap(), "the active key is never destroyed");
    assert!(store.rotate_kek(2, b"k2", at(100)).await.unwrap());
    assert!(!store.destroy_kek(1, at(1000), grace).await.unwrap(), "two blobs still name version 1");

    for entry in store.sealed_blobs_with_kek(1, 100).await.unwrap() {
        let new = sealed(2, &[entry.blob.as_slice(), b"-v2"].concat());
        assert!(store.replace_sealed_blob(&entry.at, &entry.blob, &new).await.unwrap());
        if entry.at.user_id == user.id {
            assert!(!store.destroy_kek(1, at(1000), grace).await.unwrap(), "the pending setup still names it");
        }
    }
    assert_eq!(store.count_blobs_with_kek(1).await.unwrap(), 0);
    assert!(!store.destroy_kek(1, at(189), grace).await.unwrap(), "within the grace period after demotion");
    assert!(!store.destroy_kek(2, at(1000), grace).await.unwrap(), "active");
    assert!(!store.destroy_kek(7, at(1000), grace).await.unwrap(), "no such version");
    let before = store.vault_keks().await.unwrap();
    assert_eq!(before[0].wrapped, b"k1", "a refused destroy changes nothing");

    assert!(store.destroy_kek(1, at(190), grace).await.unwrap(), "exactly at the end of the grace period");
    let ring = store.vault_keks().await.unwrap();
    assert_eq!((ring[0].version, ring[0].state, ring[0].destroyed_at), (1, KekState::Destroyed, Some(at(190))));
    assert!(ring[0].wrapped.is_empty(), "the wrapped key is erased");
    assert_eq!(ring[0].demoted_at, Some(at(100)));
    assert_eq!((ring[1].state, ring[1].wrapped.as_slice()), (KekState::Active, &b"k2"[..]));
    assert!(!store.destroy_kek(1, at(200), grace).await.unwrap(), "once");
    let found = store.user_by_id(pending.id).await.unwrap().unwrap();
    assert_eq!(found.totp_pending.map(|(b, _)| b), Some(b"pending-v2".to_vec()));
}

fn new_exchange_account(user: UserId, api_key: &str, blob: SealedBlob, created: Timestamp) -> NewExchangeAccount {
    NewExchangeAccount {
        id: ExchangeAccountId::from_random_bytes(random_bytes()),
        user_id: user,
        exchange: "binance".to_owned(),
        name: format!("main {api_key}"),
        api_key: api_key.to_owned(),
        api_key_fingerprint: {
            let mut fp = [0u8; 32];
            for (i, b) in api_key.bytes().enumerate() {
                fp[i % 32] ^= b.rotate_left(u32::try_from(i % 7).unwrap_or(0));
            }
            fp
        },
        key_kind: "hmac".to_owned(),
        secret_sealed: blob,
        permissions: StoredKeyPermissions {
            spot_trading: true,
            withdrawals: false,
            transfers: false,
            ip_restricted: true,
        },
        ip_restriction_waived: false,
        created_at: created,
    }
}

pub async fn exchange_accounts_are_stored_listed_checked_and_deleted(store: &dyn Store) {
    let (owner, _) = register(store, "keys@example.com").await;
    let (other, _) = register(store, "other-keys@example.com").await;
    let first = new_exchange_account(owner.id, "KEYAAAA1", v1(b"sealed-a"), at(10));
    let second = new_exchange_account(owner.id, "KEYBBBB2", v1(b"sealed-b"), at(20));
    store.insert_exchange_account(&first, &audit(Some(owner.id), "exchange_key.added", at(10))).await.unwrap();
    store.insert_exchange_account(&second, &audit(Some(owner.id), "exchange_key.added", at(20))).await.unwrap();

    let listed = store.exchange_accounts(owner.id).await.unwrap();
    assert_eq!(listed.iter().map(|a| a.id).collect::<Vec<_>>(), [first.id, second.id], "oldest first");
    let stored = &listed[0];
    assert_eq!(stored.secret_sealed, b"sealed-a");
    assert_eq!(stored.api_key_fingerprint, first.api_key_fingerprint);
    assert_eq!(stored.permissions, first.permissions);
    assert_eq!((stored.status, stored.status_reason.as_deref()), (ExchangeAccountStatus::Active, None));
    assert_eq!(stored.last_checked_at, at(10), "connecting is the first check");
    assert!(store.exchange_accounts(other.id).await.unwrap().is_empty());
    assert_eq!(store.exchange_account(other.id, first.id).await.unwrap(), None, "another user's account is not found");

    // A check that finds withdrawals pauses the account, and records when.
    let check = KeyCheck {
        account: first.id,
        permissions: StoredKeyPermissions { withdrawals: true, ..first.permissions },
        status: ExchangeAccountStatus::Paused,
        status_reason: Some("withdrawal_permission_enabled".to_owned()),
        at: at(100),
    };
    assert!(store.record_key_check(&check, &audit(Some(owner.id), "exchange_key.checked", at(100))).await.unwrap());
    let checked = store.exchange_account(owner.id, first.id).await.unwrap().unwrap();
    assert_eq!(checked.status, ExchangeAccountStatus::Paused);
    assert_eq!(checked.status_reason.as_deref(), Some("withdrawal_permission_enabled"));
    assert!(checked.permissions.withdrawals);
    assert_eq!(checked.last_checked_at, at(100));

    // Due for a check: least recently checked first, only those before the cutoff.
    let due = store.exchange_accounts_due_for_check(at(50), 10).await.unwrap();
    assert_eq!(due.iter().map(|a| a.id).collect::<Vec<_>>(), [second.id]);
    let due = store.exchange_accounts_due_for_check(at(1000), 1).await.unwrap();
    assert_eq!(due.iter().map(|a| a.id).collect::<Vec<_>>(), [second.id], "limit, oldest check first");

    // Deleting: only the owner, once, and the sealed blob goes with the row.
    let removed = audit(Some(other.id), "exchange_key.removed", at(200));
    assert!(!store.delete_exchange_account(other.id, first.id, &removed).await.unwrap());
    let removed = audit(Some(owner.id), "exchange_key.removed", at(200));
    assert!(store.delete_exchange_account(owner.id, first.id, &removed).await.unwrap());
    let again = audit(Some(owner.id), "exchange_key.removed", at(201));
    assert!(!store.delete_exchange_account(owner.id, first.id, &again).await.unwrap());
    assert_eq!(store.exchange_account(owner.id, first.id).await.unwrap(), None);
    assert!(!store.sealed_blobs().await.unwrap().iter().any(|(_, blob)| blob == b"sealed-a"));
    let gone = KeyCheck { at: at(300), ..check };
    assert!(!store.record_key_check(&gone, &audit(Some(owner.id), "exchange_key.checked", at(300))).await.unwrap());
    let kinds: Vec<String> =
        store.audit_for_user(owner.id, None, 10).await.unwrap().into_iter().map(|a| a.kind).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "exchange_key.removed").count(), 1, "{kinds:?}");
}

pub async fn an_api_key_is_connected_once_across_all_users(store: &dyn Store) {
    let (alice, _) = register(store, "alice-keys@example.com").await;
    let (bob, _) = register(store, "bob-keys@example.com").await;
    let original = new_exchange_account(alice.id, "SHAREDKEY", v1(b"alice"), at(1));
    assert!(!store.api_key_connected(&original.api_key_fingerprint).await.unwrap());
    store.insert_exchange_account(&original, &audit(Some(alice.id), "exchange_key.added", at(1))).await.unwrap();
    assert!(store.api_key_connected(&original.api_key_fingerprint).await.unwrap());

    let copy = new_exchange_account(bob.id, "SHAREDKEY", v1(b"bob"), at(2));
    let added = audit(Some(bob.id), "exchange_key.added", at(2));
    let err = store.insert_exchange_account(&copy, &added).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict("api_key_already_connected")), "{err:?}");
    assert!(store.exchange_accounts(bob.id).await.unwrap().is_empty());
    assert!(store.audit_for_user(bob.id, None, 10).await.unwrap().iter().all(|a| a.kind != "exchange_key.added"));
    // Two users racing to connect one key: exactly one wins.
    let (carol, _) = register(store, "carol-keys@example.com").await;
    let racing: Vec<NewExchangeAccount> =
        [bob.id, carol.id].into_iter().map(|user| new_exchange_account(user, "RACEKEY", v1(b"race"), at(3))).collect();
    let audits: Vec<AuditRecord> = racing.iter().map(|a| audit(Some(a.user_id), "exchange_key.added", at(3))).collect();
    let (one, two) = tokio::join!(
        store.insert_exchange_account(&racing[0], &audits[0]),
        store.insert_exchange_account(&racing[1], &audits[1])
    );
    assert_eq!(usize::from(one.is_ok()) + usize::from(two.is_ok()), 1, "{one:?} {two:?}");
}

pub async fn exchange_secrets_take_part_in_rotation(store: &dyn Store) {
    let (owner, _) = register(store, "rotate-keys@example.com").await;
    let mut account = new_exchange_account(owner.id, "ROTATEKEY", v1(b"exchange-v1"), at(1));
    account.key_kind = "ed25519".to_owned();
    store.insert_exchange_account(&account, &audit(Some(owner.id), "exchange_key.added", at(1))).await.unwrap();
    assert_eq!(store.count_blobs_with_kek(1).await.unwrap(), 1);
    let entries = store.sealed_blobs_with_kek(1, 10).await.unwrap();
    let entry = entries.iter().find(|e| e.at.column == SealedColumn::ExchangeSecret).expect("listed for rewrap");
    assert_eq!(entry.at.row_id, account.id.to_string());
    assert_eq!(entry.at.user_id, owner.id);
    assert_eq!(entry.at.purpose, "exchange_private_key");
    assert_eq!(entry.at.venue, "binance");
    assert_eq!(entry.at.api_key_fingerprint, account.api_key_fingerprint);
    assert!(store.replace_sealed_blob(&entry.at, &entry.blob, &sealed(2, b"exchange-v2")).await.unwrap());
    assert_eq!((store.count_blobs_with_kek(1).await.unwrap(), store.count_blobs_with_kek(2).await.unwrap()), (0, 1));
    let stored = store.exchange_account(owner.id, account.id).await.unwrap().unwrap();
    assert_eq!(stored.secret_sealed, b"exchange-v2");
    assert!(!store.replace_sealed_blob(&entry.at, &entry.blob, &sealed(2, b"again")).await.unwrap());
}

// --- bots, deals, orders and trading policies ---

const NODE_A: &str = "node-a";
const NODE_B: &str = "node-b";

fn pair(raw: &str) -> Pair {
    Pair::parse_3commas(raw).expect("test pair")
}

fn dec(raw: &str) -> Decimal {
    Decimal::from_str_exact(raw).expect("test decimal")
}

async fn exchange_account_of(store: &dyn Store, user: UserId, api_key: &str) -> ExchangeAccountId {
    let account = new_exchange_account(user, api_key, v1(b"sealed"), at(0));
    store.insert_exchange_account(&account, &audit(Some(user), "exchange_key.added", at(0))).await.unwrap();
    account.id
}

fn new_bot(user: UserId, account: ExchangeAccountId, name: &str, created: Timestamp) -> Bot {
    Bot {
        id: BotId::from_random_bytes(random_bytes()),
        user_id: user,
        exchange_account_id: account,
        name: name.to_owned(),
        pairs: vec![pair("USDT_BTC"), pair("USDT_ETH")],
        enabled: true,
        disabled_reason: None,
        settings: r#"{"base_order_volume":"10","take_profit":"1.5"}"#.to_owned(),
        created_at: created,
        updated_at: created,
    }
}

/// A webhook secret as the server stores it: a hash and a (stand-in) sealed copy under KEK 1.
fn webhook_secret() -> NewWebhookSecret {
    let hash: [u8; 32] = random_bytes();
    NewWebhookSecret { hash, sealed: sealed(1, &[b"webhook:".as_slice(), &hash].concat()) }
}

/// What `webhook_secrets` reads back for a bot whose only secret is `current`.
fn fresh_secrets(current: &NewWebhookSecret) -> WebhookSecrets {
    WebhookSecrets {
        current: Some(current.hash),
        previous: None,
        previous_until: None,
        current_sealed: Some(current.sealed.bytes.clone()),
        previous_sealed: None,
    }
}

/// What `webhook_secrets` reads back after `previous` was rotated to `current`, the old one
/// accepted until `until`.
fn rotated_secrets(current: &NewWebhookSecret, previous: &NewWebhookSecret, until: Timestamp) -> WebhookSecrets {
    WebhookSecrets {
        current: Some(current.hash),
        previous: Some(previous.hash),
        previous_until: Some(until),
        current_sealed: Some(current.sealed.bytes.clone()),
        previous_sealed: Some(previous.sealed.bytes.clone()),
    }
}

async fn add_bot(store: &dyn Store, bot: &Bot) -> NewWebhookSecret {
    let secret = webhook_secret();
    store.insert_bot(bot, &secret, &audit(Some(bot.user_id), "bot.created", bot.created_at)).await.unwrap();
    secret
}

/// A registered user with one exchange account and one enabled bot on it.
async fn bot_owner(store: &dyn Store, email: &str) -> (UserId, ExchangeAccountId, Bot) {
    let (user, _) = register(store, email).await;
    let account = exchange_account_of(store, user.id, &format!("KEY-{email}")).await;
    let bot = new_bot(user.id, account, "main", at(1));
    add_bot(store, &bot).await;
    (user.id, account, bot)
}

fn new_deal(bot: &Bot, status: DealStatus, created: Timestamp) -> Deal {
    Deal {
        id: DealId::from_random_bytes(random_bytes()),
        bot_id: bot.id,
        user_id: bot.user_id,
        exchange_account_id: bot.exchange_account_id,
        pair: pair("USDT_BTC"),
        strategy: Strategy::Long,
        status,
        close_reason: None,
        settings: bot.settings.clone(),
        base_price: None,
        next_seq: 0,
        stop_loss_since: None,
        best_price: None,
        trailing_peak: None,
        profit_quote: None,
        created_at: created,
        updated_at: created,
        closed_at: None,
    }
}

fn new_order(deal: &Deal, seq: u32, role: OrderRole) -> OrderIntent {
    OrderIntent {
        client_order_id: OrderIntent::client_order_id_for(deal.id, seq),
        user_id: deal.user_id,
        exchange_account_id: deal.exchange_account_id,
        pair: deal.pair.clone(),
        deal_id: Some(deal.id),
        seq,
        role,
        safety_index: 0,
        side: Side::Buy,
        kind: OrderKind::Limit,
        price: dec("27000.5"),
        quantity: Some(dec("0.001")),
        quote_amount: None,
        state: IntentState::Pending,
        cancel_requested: false,
        venue_order_id: None,
        executed_qty: Decimal::ZERO,
        executed_quote: Decimal::ZERO,
        fee_base: Decimal::ZERO,
        fee_quote: Decimal::ZERO,
        error: None,
        created_at: deal.created_at,
        updated_at: deal.created_at,
    }
}

fn manual_order(user: UserId, account: ExchangeAccountId, client_order_id: &str, created: Timestamp) -> OrderIntent {
    OrderIntent {
        client_order_id: client_order_id.to_owned(),
        user_id: user,
        exchange_account_id: account,
        pair: pair("USDT_ETH"),
        deal_id: None,
        seq: 0,
        role: OrderRole::Manual,
        safety_index: 0,
        side: Side::Sell,
        kind: OrderKind::Market,
        price: dec("1800.25"),
        quantity: None,
        quote_amount: Some(dec("50")),
        state: IntentState::Pending,
        cancel_requested: false,
        venue_order_id: None,
        executed_qty: Decimal::ZERO,
        executed_quote: Decimal::ZERO,
        fee_base: Decimal::ZERO,
        fee_quote: Decimal::ZERO,
        error: None,
        created_at: created,
        updated_at: created,
    }
}

/// Saves a deal as `node` at `now` with one audit row; whether it was written.
async fn save_as(store: &dyn Store, node: &str, now: Timestamp, deal: &Deal, orders: &[OrderIntent]) -> bool {
    let record = audit(Some(deal.user_id), "deal.saved", now);
    store.save_deal(node, now, deal, orders, &[record], None).await.unwrap()
}

/// Claims every bot that needs running for `NODE_A` until far in the future.
async fn claim_all(store: &dyn Store) -> Vec<Bot> {
    store.claim_bots(NODE_A, at(0), at(1_000_000)).await.unwrap()
}

async fn audit_kinds(store: &dyn Store, user: UserId) -> Vec<String> {
    store.audit_for_user(user, None, 500).await.unwrap().into_iter().map(|a| a.kind).collect()
}

fn ids<T, I: PartialEq>(items: &[T], id: impl Fn(&T) -> I) -> Vec<I> {
    items.iter().map(id).collect()
}

fn deal_ids(deals: &[(Deal, Vec<OrderIntent>)]) -> Vec<DealId> {
    ids(deals, |(deal, _)| deal.id)
}

/// `n` ids, each smaller than the one before: given to rows written in that order within one
/// millisecond, an order by id (instead of by write order) reverses them, so the test fails.
fn falling_ids<T: Ord>(n: usize, make: impl Fn() -> T) -> Vec<T> {
    let mut ids: Vec<T> = (0..n).map(|_| make()).collect();
    ids.sort_by(|a, b| b.cmp(a));
    ids
}

fn all_deals(limit: u32) -> DealFilter {
    DealFilter { bot_id: None, status: None, limit }
}

pub async fn bots_are_stored_listed_and_updated_per_user(store: &dyn Store) {
    let (owner, _) = register(store, "bots@example.com").await;
    let (other, _) = register(store, "other-bots@example.com").await;
    let account = exchange_account_of(store, owner.id, "BOTKEY1").await;
    let others_account = exchange_account_of(store, other.id, "BOTKEY2").await;
    // Three bots in one millisecond: listed in the order they were created.
    let mut bots = Vec::new();
    let bot_ids = falling_ids(3, || BotId::from_random_bytes(random_bytes()));
    for (name, id) in ["first", "second", "third"].into_iter().zip(bot_ids) {
        let bot = Bot { id, ..new_bot(owner.id, account, name, at(5)) };
        add_bot(store, &bot).await;
        bots.push(bot);
    }
    bots[1].pairs = vec![];
    bots[1].enabled = false;
    bots[1].disabled_reason = Some("guard_refused".to_owned());
    let updated = audit(Some(owner.id), "bot.updated", at(6));
    assert!(store.update_bot(&bots[1], &updated).await.unwrap());
    assert_eq!(store.bots(owner.id).await.unwrap(), bots, "oldest first, in write order within a millisecond");
    assert_eq!(store.bot(owner.id, bots[0].id).await.unwrap().as_ref(), Some(&bots[0]));
    assert_eq!(store.bot(other.id, bots[0].id).await.unwrap(), None, "another user's bot is not found");
    assert!(store.bots(other.id).await.unwrap().is_empty());

    // An update writes the mutable fields, for the owner only.
    let mut changed = bots[0].clone();
    changed.name = "renamed".to_owned();
    changed.pairs = vec![pair("BTC_ETH")];
    changed.enabled = false;
    changed.disabled_reason = Some("paused_key".to_owned());
    changed.settings = r#"{"base_order_volume":"20"}"#.to_owned();
    changed.updated_at = at(30);
    let mut stolen = changed.clone();
    stolen.user_id = other.id;
    stolen.name = "stolen".to_owned();
    assert!(!store.update_bot(&stolen, &audit(Some(other.id), "bot.updated", at(30))).await.unwrap());
    assert_eq!(store.bot(owner.id, bots[0].id).await.unwrap().as_ref(), Some(&bots[0]), "unchanged");
    assert!(!audit_kinds(store, other.id).await.contains(&"bot.updated".to_owned()), "no audit of a refusal");
    assert!(store.update_bot(&changed, &audit(Some(owner.id), "bot.updated", at(30))).await.unwrap());
    assert_eq!(store.bot(owner.id, bots[0].id).await.unwrap(), Some(changed.clone()));
    // Its creation time never changes.
    let mut later = changed.clone();
    later.created_at = at(99);
    assert!(store.update_bot(&later, &audit(Some(owner.id), "bot.updated", at(31))).await.unwrap());
    assert_eq!(store.bot(owner.id, bots[0].id).await.unwrap(), Some(changed));

    // A bot on someone else's exchange account, or with a taken id, is refused as a whole.
    let intruder = new_bot(owner.id, others_account, "intruder", at(40));
    let err = store.insert_bot(&intruder, &webhook_secret(), &audit(Some(owner.id), "bot.intruder", at(40))).await;
    assert!(matches!(err, Err(StoreError::Conflict("exchange_account_not_found"))), "{err:?}");
    let mut twin = new_bot(owner.id, account, "twin", at(41));
    twin.id = bots[2].id;
    let err = store.insert_bot(&twin, &webhook_secret(), &audit(Some(owner.id), "bot.twin", at(41))).await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    assert_eq!(store.bots(owner.id).await.unwrap().len(), 3);
    let kinds = audit_kinds(store, owner.id).await;
    assert!(!kinds.iter().any(|k| k == "bot.intruder" || k == "bot.twin"), "{kinds:?}");
    assert!(store.bots(other.id).await.unwrap().is_empty());
}

pub async fn webhook_secrets_are_hashes_rotated_with_a_grace_period(store: &dyn Store) {
    let (owner, _) = register(store, "hooks@example.com").await;
    let (other, _) = register(store, "other-hooks@example.com").await;
    let account = exchange_account_of(store, owner.id, "HOOKKEY").await;
    let bot = new_bot(owner.id, account, "hooked", at(1));
    let first = add_bot(store, &bot).await;
    let secrets = store.webhook_secrets(bot.id).await.unwrap().expect("stored");
    assert_eq!(secrets, fresh_secrets(&first));
    assert_eq!(store.webhook_secrets(BotId::from_random_bytes(random_bytes())).await.unwrap(), None);

    let second = webhook_secret();
    let refused = audit(Some(other.id), "bot.webhook_rotated", at(2));
    assert!(!store.rotate_webhook_secret(other.id, bot.id, &second, at(100), &refused).await.unwrap());
    assert_eq!(store.webhook_secrets(bot.id).await.unwrap(), Some(secrets), "another user cannot rotate it");
    let rotated = audit(Some(owner.id), "bot.webhook_rotated", at(2));
    assert!(store.rotate_webhook_secret(owner.id, bot.id, &second, at(100), &rotated).await.unwrap());
    assert_eq!(store.webhook_secrets(bot.id).await.unwrap(), Some(rotated_secrets(&second, &first, at(100))));
    assert!(audit_kinds(store, owner.id).await.contains(&"bot.webhook_rotated".to_owned()));
    assert!(!audit_kinds(store, other.id).await.contains(&"bot.webhook_rotated".to_owned()));
}

pub async fn deals_and_orders_round_trip_every_value_exactly(store: &dyn Store) {
    let (user, _, bot) = bot_owner(store, "roundtrip@example.com").await;
    assert_eq!(claim_all(store).await.len(), 1);
    // One deal per status, every close reason, both strategies, amounts at the edges of Decimal.
    let mut saved = Vec::new();
    for (i, status) in DealStatus::ALL.iter().enumerate() {
        let i32 = u32::try_from(i).unwrap();
        let mut deal = new_deal(&bot, *status, at(10 + i64::from(i32)));
        deal.strategy = if i % 2 == 0 { Strategy::Long } else { Strategy::Short };
        deal.pair = if i % 2 == 0 { pair("USDT_BTC") } else { pair("BTC_ETH") };
        deal.close_reason = i.checked_sub(DealStatus::ALL.len() - CloseReason::ALL.len()).map(|j| CloseReason::ALL[j]);
        deal.base_price = Some(dec(["123456.123456789", "0.00000001", "27000.50"][i % 3]));
        deal.profit_quote = (i % 2 == 1).then(|| dec("-0.00000001"));
        deal.stop_loss_since = (i % 3 == 0).then(|| at(11));
        deal.best_price = (i % 2 == 0).then(|| dec("101.23000001"));
        deal.trailing_peak = (i % 4 == 0).then(|| dec("0.00000001"));
        deal.closed_at = status.is_finished().then(|| at(12));
        deal.next_seq = i32 * 7;
        deal.settings = format!(r#"{{"deal":{i},"note":"ünïcödé 'quoted'"}}"#);
        assert!(save_as(store, NODE_A, at(20), &deal, &[]).await);
        saved.push(deal);
    }
    for deal in &saved {
        assert_eq!(store.deal(user, deal.id).await.unwrap(), Some((deal.clone(), vec![])), "{:?}", deal.status);
    }
    let roles = OrderRole::ALL.len();
    let mut deal = saved[2].clone();
    let mut orders = Vec::new();
    for i in 0..roles.max(IntentState::ALL.len()) {
        let seq = u32::try_from(i).unwrap();
        let mut order = new_order(&deal, seq, OrderRole::ALL[i % roles]);
        order.safety_index = seq;
        order.kind = OrderKind::ALL[i % OrderKind::ALL.len()];
        order.state = IntentState::ALL[i % IntentState::ALL.len()];
        order.side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
        order.cancel_requested = i % 2 == 1;
        order.venue_order_id = (i % 3 != 0).then(|| format!("{}", 9_000_000_000_u64 + u64::from(seq)));
        order.error = (i % 4 == 3).then(|| "MIN_NOTIONAL: order value below 5 USDT".to_owned());
        order.price = dec(["0.00000001", "123456.123456789", "79228162514264337593543950335"][i % 3]);
        order.quantity = (i % 2 == 0).then(|| dec("123456.123456789"));
        order.quote_amount = (i % 2 == 1).then(|| dec("0.00000001"));
        order.executed_qty = dec("0.0000000000000000000000000001");
        order.executed_quote = dec("-7922816251426433759354395033.5");
        order.fee_base = dec("0.00000001");
        order.fee_quote = dec("1.10");
        order.created_at = at(30 + i64::from(seq));
        order.updated_at = at(40);
        orders.push(order);
    }
    deal.next_seq = u32::try_from(orders.len()).unwrap();
    deal.updated_at = at(45);
    // Written in reverse: read back by sequence number.
    let reversed: Vec<OrderIntent> = orders.iter().rev().cloned().collect();
    assert!(save_as(store, NODE_A, at(45), &deal, &reversed).await);
    let (found, found_orders) = store.deal(user, deal.id).await.unwrap().expect("saved");
    assert_eq!(found, deal);
    assert_eq!(found_orders, orders);
    assert_eq!(found_orders[0].price.to_string(), "0.00000001", "not a float");
    assert_eq!(found_orders[1].price.to_string(), "123456.123456789");
    assert_eq!(found_orders[2].price.to_string(), "79228162514264337593543950335");
    assert_eq!(found_orders[0].executed_qty.to_string(), "0.0000000000000000000000000001");

    // Saving again updates in place; an order keeps its sequence number and creation time.
    deal.status = DealStatus::Completed;
    deal.close_reason = Some(CloseReason::TakeProfit);
    deal.profit_quote = Some(dec("12.345678901234567890"));
    deal.closed_at = Some(at(50));
    deal.updated_at = at(50);
    let mut filled = orders[0].clone();
    filled.state = IntentState::Filled;
    filled.executed_qty = dec("0.001");
    filled.executed_quote = dec("27.0005");
    filled.venue_order_id = Some("123".to_owned());
    filled.updated_at = at(50);
    let mut moved = filled.clone();
    moved.seq = 99;
    moved.created_at = at(49);
    assert!(save_as(store, NODE_A, at(50), &deal, &[moved]).await);
    let (found, found_orders) = store.deal(user, deal.id).await.unwrap().unwrap();
    assert_eq!(found, deal);
    assert_eq!(found_orders.len(), orders.len(), "no second row for the same client order id");
    assert_eq!(found_orders[0], filled);
    assert_eq!(found_orders[1..], orders[1..]);
    // A deal keeps its creation time too.
    let mut older = deal.clone();
    older.created_at = at(1);
    assert!(save_as(store, NODE_A, at(51), &older, &[]).await);
    assert_eq!(store.deal(user, deal.id).await.unwrap().unwrap().0.created_at, deal.created_at);
}

pub async fn deals_are_listed_newest_first_and_filtered_by_bot_and_status(store: &dyn Store) {
    let (user, account, first_bot) = bot_owner(store, "list@example.com").await;
    let second_bot = new_bot(user, account, "second", at(2));
    add_bot(store, &second_bot).await;
    let (other, _, others_bot) = bot_owner(store, "list-other@example.com").await;
    assert_eq!(claim_all(store).await.len(), 3);
    let d1 = new_deal(&first_bot, DealStatus::Completed, at(10));
    let d2 = new_deal(&first_bot, DealStatus::Bought, at(20));
    let d3 = new_deal(&second_bot, DealStatus::Bought, at(30));
    // Two deals of one millisecond: the later written is the newer.
    let same_ms = falling_ids(2, || DealId::from_random_bytes(random_bytes()));
    let d4 = Deal { id: same_ms[0], ..new_deal(&second_bot, DealStatus::Created, at(40)) };
    let d5 = Deal { id: same_ms[1], ..new_deal(&second_bot, DealStatus::Created, at(40)) };
    let foreign = new_deal(&others_bot, DealStatus::Bought, at(50));
    let d2_orders = vec![new_order(&d2, 0, OrderRole::Base), new_order(&d2, 1, OrderRole::Safety)];
    for (deal, orders) in [(&d1, vec![]), (&d2, d2_orders.clone()), (&d3, vec![]), (&d4, vec![]), (&d5, vec![])] {
        assert!(save_as(store, NODE_A, at(60), deal, &orders).await);
    }
    assert!(save_as(store, NODE_A, at(60), &foreign, &[]).await);

    let listed = store.deals(user, &all_deals(10)).await.unwrap();
    assert_eq!(deal_ids(&listed), [d5.id, d4.id, d3.id, d2.id, d1.id], "newest first");
    assert_eq!(listed[3].1, d2_orders, "each deal with its orders");
    assert!(listed.iter().filter(|(deal, _)| deal.id != d2.id).all(|(_, orders)| orders.is_empty()));
    let filter = DealFilter { bot_id: Some(first_bot.id), ..all_deals(10) };
    assert_eq!(deal_ids(&store.deals(user, &filter).await.unwrap()), [d2.id, d1.id]);
    let filter = DealFilter { status: Some(DealStatus::Bought), ..all_deals(10) };
    assert_eq!(deal_ids(&store.deals(user, &filter).await.unwrap()), [d3.id, d2.id]);
    let filter = DealFilter { bot_id: Some(second_bot.id), status: Some(DealStatus::Created), limit: 10 };
    assert_eq!(deal_ids(&store.deals(user, &filter).await.unwrap()), [d5.id, d4.id]);
    let filter = DealFilter { bot_id: Some(first_bot.id), status: Some(DealStatus::Created), limit: 10 };
    assert!(store.deals(user, &filter).await.unwrap().is_empty());
    // The limit counts deals, not order rows.
    assert_eq!(deal_ids(&store.deals(user, &all_deals(2)).await.unwrap()), [d5.id, d4.id]);
    let page = store.deals(user, &DealFilter { bot_id: Some(first_bot.id), ..all_deals(1) }).await.unwrap();
    assert_eq!((deal_ids(&page), page[0].1.len()), (vec![d2.id], 2));
    assert!(store.deals(user, &all_deals(0)).await.unwrap().is_empty());

    // Per user: another user's deals are neither listed nor found, even by a filter on their bot.
    let filter = DealFilter { bot_id: Some(others_bot.id), ..all_deals(10) };
    assert!(store.deals(user, &filter).await.unwrap().is_empty());
    assert_eq!(store.deal(user, foreign.id).await.unwrap(), None);
    assert_eq!(store.deal(other, d1.id).await.unwrap(), None);
    assert_eq!(deal_ids(&store.deals(other, &all_deals(10)).await.unwrap()), [foreign.id]);
}

pub async fn open_deals_are_the_unfinished_deals_of_the_bots_asked_for(store: &dyn Store) {
    let (user, account, bot1) = bot_owner(store, "open@example.com").await;
    let bot2 = new_bot(user, account, "second", at(2));
    add_bot(store, &bot2).await;
    let (_, _, bot3) = bot_owner(store, "open-other@example.com").await;
    let (_, _, bot4) = bot_owner(store, "open-unasked@example.com").await;
    assert_eq!(claim_all(store).await.len(), 4);
    let mut deals = Vec::new();
    let mut same_ms = falling_ids(2, || DealId::from_random_bytes(random_bytes()));
    for (bot, status, when) in [
        (&bot1, DealStatus::Completed, 1),
        (&bot1, DealStatus::Bought, 2),
        (&bot2, DealStatus::Created, 3),
        (&bot2, DealStatus::PanicSold, 4),
        (&bot2, DealStatus::CancelPending, 5),
        (&bot3, DealStatus::PanicSellOrderPlaced, 0),
        (&bot1, DealStatus::Canceled, 6),
        (&bot1, DealStatus::Failed, 7),
        (&bot4, DealStatus::Bought, 0),
        (&bot1, DealStatus::BaseOrderPlaced, 7),
        (&bot2, DealStatus::PanicSellPending, 7),
    ] {
        let mut deal = new_deal(bot, status, at(when));
        if matches!(status, DealStatus::BaseOrderPlaced | DealStatus::PanicSellPending) {
            deal.id = same_ms.remove(0);
        }
        let mut order = new_order(&deal, 0, OrderRole::Base);
        if status.is_finished() {
            order.state = IntentState::Filled;
        }
        let orders = vec![order];
        assert!(save_as(store, NODE_A, at(10), &deal, &orders).await);
        deals.push((deal, orders));
    }
    let open = store.open_deals(&[bot1.id, bot2.id, bot3.id]).await.unwrap();
    let expected = [&deals[5], &deals[1], &deals[2], &deals[4], &deals[9], &deals[10]];
    assert_eq!(
        open.iter().collect::<Vec<_>>(),
        expected,
        "unfinished only, of these bots and any user, oldest first (write order within a millisecond)"
    );
    assert_eq!(deal_ids(&store.open_deals(&[bot2.id]).await.unwrap()), [deals[2].0.id, deals[4].0.id, deals[10].0.id]);
    assert!(store.open_deals(&[]).await.unwrap().is_empty());
    assert!(store.open_deals(&[BotId::from_random_bytes(random_bytes())]).await.unwrap().is_empty());
}

pub async fn a_deal_is_saved_only_under_the_nodes_live_lease(store: &dyn Store) {
    let (user, _, bot) = bot_owner(store, "lease@example.com").await;
    let mut deal = new_deal(&bot, DealStatus::Created, at(1));
    let orders = [new_order(&deal, 0, OrderRole::Base)];
    assert!(!save_as(store, NODE_A, at(1), &deal, &orders).await, "nobody holds the lease yet");
    assert_eq!(store.deal(user, deal.id).await.unwrap(), None, "nothing written");
    assert!(store.orders_since(bot.exchange_account_id, at(0)).await.unwrap().is_empty());
    assert!(!audit_kinds(store, user).await.contains(&"deal.saved".to_owned()), "no audit row either");

    assert_eq!(ids(&store.claim_bots(NODE_A, at(0), at(100)).await.unwrap(), |b| b.id), [bot.id]);
    assert!(!save_as(store, NODE_B, at(50), &deal, &orders).await, "another node");
    assert_eq!(store.deal(user, deal.id).await.unwrap(), None);
    assert!(save_as(store, NODE_A, at(100), &deal, &orders).await, "the lease holds until its end");
    deal.status = DealStatus::BaseOrderPlaced;
    assert!(!save_as(store, NODE_A, at(101), &deal, &orders).await, "expired");
    assert_eq!(store.deal(user, deal.id).await.unwrap().unwrap().0.status, DealStatus::Created, "not written");

    // Another node takes the expired lease; the first may no longer write.
    assert_eq!(ids(&store.claim_bots(NODE_B, at(101), at(200)).await.unwrap(), |b| b.id), [bot.id]);
    assert!(!save_as(store, NODE_A, at(150), &deal, &orders).await, "the lease is another node's now");
    assert!(save_as(store, NODE_B, at(150), &deal, &orders).await);
    assert_eq!(store.deal(user, deal.id).await.unwrap().unwrap().0.status, DealStatus::BaseOrderPlaced);
    store.release_bots(NODE_B).await.unwrap();
    deal.status = DealStatus::Bought;
    assert!(!save_as(store, NODE_B, at(160), &deal, &orders).await, "released");
    assert_eq!(store.deal(user, deal.id).await.unwrap().unwrap().0.status, DealStatus::BaseOrderPlaced);
    let saved = audit_kinds(store, user).await.iter().filter(|k| *k == "deal.saved").count();
    assert_eq!(saved, 2, "an audit row for each save that happened");
}

pub async fn a_deal_is_written_whole_or_not_at_all(store: &dyn Store) {
    let (user, account, bot) = bot_owner(store, "whole@example.com").await;
    let (other, others_account, others_bot) = bot_owner(store, "whole-other@example.com").await;
    assert_eq!(claim_all(store).await.len(), 2);
    let deal = new_deal(&bot, DealStatus::Bought, at(1));
    assert!(save_as(store, NODE_A, at(1), &deal, &[new_order(&deal, 0, OrderRole::Base)]).await);
    let before = store.deal(user, deal.id).await.unwrap();

    // A deal id of another bot's deal.
    let mut hijack = new_deal(&others_bot, DealStatus::Completed, at(2));
    hijack.id = deal.id;
    let err = store.save_deal(NODE_A, at(2), &hijack, &[], &[audit(Some(other), "deal.hijack", at(2))], None).await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    assert_eq!(store.deal(user, deal.id).await.unwrap(), before);
    assert_eq!(store.deal(other, deal.id).await.unwrap(), None);

    // An order of another deal, or a deal of another account than its bot's.
    let fresh = new_deal(&bot, DealStatus::Created, at(3));
    let err = store.save_deal(NODE_A, at(3), &fresh, &[new_order(&deal, 5, OrderRole::Safety)], &[], None).await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    let mut misplaced = new_deal(&bot, DealStatus::Created, at(3));
    misplaced.exchange_account_id = others_account;
    let err = store.save_deal(NODE_A, at(3), &misplaced, &[], &[], None).await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");

    // A client order id another account already used: the deal, its other order and the audit
    // row are not written either.
    let taken = manual_order(other, others_account, "taken-id", at(3));
    store.record_order(&taken, None).await.unwrap();
    let good = new_order(&fresh, 0, OrderRole::Base);
    let mut clash = new_order(&fresh, 1, OrderRole::Safety);
    clash.client_order_id = "taken-id".to_owned();
    let record = audit(Some(user), "deal.clash", at(3));
    let err = store.save_deal(NODE_A, at(3), &fresh, &[good, clash], &[record], None).await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    for id in [fresh.id, misplaced.id] {
        assert_eq!(store.deal(user, id).await.unwrap(), None);
    }
    let orders = store.orders_since(account, at(0)).await.unwrap();
    assert_eq!(ids(&orders, |o| o.client_order_id.clone()), [OrderIntent::client_order_id_for(deal.id, 0)]);
    assert_eq!(store.orders_since(others_account, at(0)).await.unwrap(), [taken]);
    let kinds = audit_kinds(store, user).await;
    assert!(!kinds.iter().any(|k| k == "deal.clash"), "{kinds:?}");
    assert!(!audit_kinds(store, other).await.iter().any(|k| k == "deal.hijack"));
}

/// A deal that finished just before a crash may still have orders at the venue it asked to
/// cancel: it needs a node (and its disabled bot a lease) until they are settled.
pub async fn a_finished_deal_with_live_orders_still_needs_running(store: &dyn Store) {
    let (user, _, mut bot) = bot_owner(store, "orphans@example.com").await;
    assert_eq!(claim_all(store).await.len(), 1);
    let deal = new_deal(&bot, DealStatus::Completed, at(1));
    let mut base = new_order(&deal, 0, OrderRole::Base);
    base.state = IntentState::Filled;
    let mut safety = new_order(&deal, 1, OrderRole::Safety);
    safety.state = IntentState::Open;
    safety.cancel_requested = true;
    assert!(save_as(store, NODE_A, at(2), &deal, &[base.clone(), safety.clone()]).await);
    bot.enabled = false;
    assert!(store.update_bot(&bot, &audit(Some(user), "bot.disabled", at(3))).await.unwrap());
    store.release_bots(NODE_A).await.unwrap();
    assert_eq!(deal_ids(&store.open_deals(&[bot.id]).await.unwrap()), [deal.id], "its cancels are still owed");
    assert_eq!(ids(&store.claim_bots(NODE_B, at(4), at(50)).await.unwrap(), |b| b.id), [bot.id]);
    safety.state = IntentState::Canceled;
    safety.cancel_requested = false;
    assert!(save_as(store, NODE_B, at(5), &deal, &[safety]).await);
    assert!(store.open_deals(&[bot.id]).await.unwrap().is_empty(), "settled");
    store.release_bots(NODE_B).await.unwrap();
    assert!(store.claim_bots(NODE_A, at(6), at(50)).await.unwrap().is_empty());
}

pub async fn claims_lease_the_bots_that_need_running(store: &dyn Store) {
    let (user, account, enabled) = bot_owner(store, "claims@example.com").await;
    let mut idle = new_bot(user, account, "idle", at(2));
    idle.enabled = false;
    add_bot(store, &idle).await;
    let mut winding_down = new_bot(user, account, "winding down", at(3));
    let mut finished = new_bot(user, account, "finished", at(4));
    add_bot(store, &winding_down).await;
    add_bot(store, &finished).await;
    // Give two bots a deal, then disable them: one deal still open, one finished.
    assert_eq!(store.claim_bots("setup", at(0), at(5)).await.unwrap().len(), 3);
    let mut open = new_deal(&winding_down, DealStatus::Bought, at(1));
    assert!(save_as(store, "setup", at(1), &open, &[]).await);
    assert!(save_as(store, "setup", at(1), &new_deal(&finished, DealStatus::Completed, at(1)), &[]).await);
    for bot in [&mut winding_down, &mut finished] {
        bot.enabled = false;
        assert!(store.update_bot(bot, &audit(Some(user), "bot.disabled", at(2))).await.unwrap());
    }
    store.release_bots("setup").await.unwrap();

    let needed = [enabled.id, winding_down.id];
    assert_eq!(ids(&store.claim_bots(NODE_A, at(10), at(100)).await.unwrap(), |b| b.id), needed);
    assert!(store.claim_bots(NODE_B, at(20), at(120)).await.unwrap().is_empty(), "leased to another node");
    let renewed = store.claim_bots(NODE_A, at(50), at(200)).await.unwrap();
    assert_eq!(ids(&renewed, |b| b.id), needed, "a node renews its own leases");
    assert_eq!(renewed[0], enabled, "the bots as stored");
    assert!(store.claim_bots(NODE_B, at(150), at(250)).await.unwrap().is_empty(), "the renewal holds");
    assert!(store.claim_bots(NODE_B, at(200), at(250)).await.unwrap().is_empty(), "until its very end");
    assert_eq!(ids(&store.claim_bots(NODE_B, at(201), at(300)).await.unwrap(), |b| b.id), needed, "expired");
    assert!(store.claim_bots(NODE_A, at(202), at(300)).await.unwrap().is_empty());
    store.release_bots(NODE_B).await.unwrap();
    assert_eq!(ids(&store.claim_bots(NODE_A, at(203), at(400)).await.unwrap(), |b| b.id), needed, "released");

    // The open deal finishes: its disabled bot no longer needs running. Enabling one does.
    open.status = DealStatus::PanicSold;
    assert!(save_as(store, NODE_A, at(204), &open, &[]).await);
    idle.enabled = true;
    assert!(store.update_bot(&idle, &audit(Some(user), "bot.enabled", at(204))).await.unwrap());
    assert_eq!(ids(&store.claim_bots(NODE_A, at(205), at(400)).await.unwrap(), |b| b.id), [enabled.id, idle.id]);
    // Releasing touches only the node's own leases.
    store.release_bots(NODE_B).await.unwrap();
    assert!(store.claim_bots(NODE_B, at(206), at(400)).await.unwrap().is_empty());
}

pub async fn concurrent_claims_never_share_a_bot(store: &dyn Store) {
    let (user, _) = register(store, "race@example.com").await;
    let mut all = Vec::new();
    for i in 0..4 {
        let account = exchange_account_of(store, user.id, &format!("RACE{i}")).await;
        for j in 0..4 {
            let bot = new_bot(user.id, account, &format!("bot {i}.{j}"), at(i * 4 + j));
            add_bot(store, &bot).await;
            all.push(bot.id);
        }
    }
    all.sort();
    // Each round the previous leases have expired, so every node may take any bot.
    for round in 0..4 {
        let now = at(1000 * (round + 1));
        let until = now.plus(Duration::from_secs(500));
        let (a, b, c) = tokio::join!(
            store.claim_bots("race-a", now, until),
            store.claim_bots("race-b", now, until),
            store.claim_bots("race-c", now, until)
        );
        let mut claimed: Vec<BotId> = [a, b, c].into_iter().flat_map(|r| r.unwrap()).map(|bot| bot.id).collect();
        claimed.sort();
        assert_eq!(claimed, all, "round {round}: every bot exactly once");
    }
}

pub async fn manual_orders_are_recorded_and_counted_since(store: &dyn Store) {
    let (user, account, bot) = bot_owner(store, "manual@example.com").await;
    let second_account = exchange_account_of(store, user, "MANUAL2").await;
    let (other, others_account, _) = bot_owner(store, "manual-other@example.com").await;
    assert_eq!(claim_all(store).await.len(), 2);
    let mut m1 = manual_order(user, account, "manual-1", at(10));
    let m2 = manual_order(user, account, "manual-2", at(20));
    let m3 = manual_order(user, second_account, "manual-3", at(20));
    let placed = audit(Some(user), "order.placed", at(10));
    store.record_order(&m1, Some(&placed)).await.unwrap();
    store.record_order(&m2, None).await.unwrap();
    store.record_order(&m3, None).await.unwrap();
    let deal = new_deal(&bot, DealStatus::BaseOrderPlaced, at(15));
    let base = new_order(&deal, 0, OrderRole::Base);
    assert!(save_as(store, NODE_A, at(15), &deal, std::slice::from_ref(&base)).await);

    let since = |account, t| async move { store.orders_since(account, at(t)).await.unwrap() };
    assert_eq!(since(account, 0).await, [m1.clone(), base.clone(), m2.clone()], "every path, oldest first");
    assert_eq!(since(account, 15).await, [base.clone(), m2.clone()], "from `since` on, inclusive");
    assert!(since(account, 21).await.is_empty());
    assert_eq!(since(second_account, 0).await, [m3], "per account");
    assert!(since(others_account, 0).await.is_empty());
    assert_eq!(audit_kinds(store, user).await.iter().filter(|k| *k == "order.placed").count(), 1);

    // The venue's answer updates the row; its creation time stays.
    m1.state = IntentState::Filled;
    m1.venue_order_id = Some("777".to_owned());
    m1.executed_qty = dec("0.02777777");
    m1.executed_quote = dec("49.99999999");
    m1.fee_quote = dec("0.04999999");
    m1.updated_at = at(30);
    let mut resent = m1.clone();
    resent.created_at = at(30);
    store.record_order(&resent, None).await.unwrap();
    assert_eq!(since(account, 0).await, [m1.clone(), base, m2], "updated in place, not added");

    // A client order id is one order: another account (or user) cannot take it over.
    let mut hijack = manual_order(other, others_account, "manual-1", at(40));
    hijack.state = IntentState::Canceled;
    let err = store.record_order(&hijack, Some(&audit(Some(other), "order.hijack", at(40)))).await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    let mut moved = m1.clone();
    moved.exchange_account_id = second_account;
    assert!(matches!(store.record_order(&moved, None).await, Err(StoreError::Conflict(_))));
    // Nor can a manual order take over a deal's order, or the other way round.
    let mut into_deal = manual_order(user, account, &OrderIntent::client_order_id_for(deal.id, 0), at(40));
    into_deal.state = IntentState::Canceled;
    assert!(matches!(store.record_order(&into_deal, None).await, Err(StoreError::Conflict(_))));
    let mut out_of_deal = new_order(&deal, 1, OrderRole::Safety);
    out_of_deal.client_order_id = "manual-2".to_owned();
    let err = store.save_deal(NODE_A, at(40), &deal, &[out_of_deal], &[], None).await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    assert_eq!(since(account, 0).await[0], m1);
    assert_eq!(since(account, 0).await[1].state, IntentState::Pending);
    assert!(since(others_account, 0).await.is_empty());
    assert!(!audit_kinds(store, other).await.contains(&"order.hijack".to_owned()));
}

pub async fn unresolved_manual_orders_are_listed_until_the_venue_settles_them(store: &dyn Store) {
    let (user, account, bot) = bot_owner(store, "unresolved@example.com").await;
    let (other, others_account, _) = bot_owner(store, "unresolved-other@example.com").await;
    assert!(store.unresolved_manual_orders().await.unwrap().is_empty());
    let pending = manual_order(user, account, "u-pending", at(30));
    let mut open = manual_order(other, others_account, "u-open", at(10));
    open.state = IntentState::Open;
    open.venue_order_id = Some("41".to_owned());
    let late = manual_order(user, account, "u-late", at(30));
    let mut settled = Vec::new();
    for (i, state) in [IntentState::Filled, IntentState::Canceled, IntentState::Rejected, IntentState::NotPlaced]
        .into_iter()
        .enumerate()
    {
        let mut order = manual_order(user, account, &format!("u-settled-{i}"), at(5));
        order.state = state;
        settled.push(order);
    }
    for order in [&pending, &open, &late].into_iter().chain(&settled) {
        store.record_order(order, None).await.unwrap();
    }
    // A deal's pending order is the runner's to resolve, not the manual reconciler's.
    assert_eq!(claim_all(store).await.len(), 2);
    let deal = new_deal(&bot, DealStatus::BaseOrderPlaced, at(1));
    assert!(save_as(store, NODE_A, at(1), &deal, &[new_order(&deal, 0, OrderRole::Base)]).await);

    let listed = || async { store.unresolved_manual_orders().await.unwrap() };
    assert_eq!(listed().await, [open.clone(), late.clone(), pending.clone()], "every user's, oldest first");

    let mut filled = pending.clone();
    filled.state = IntentState::Filled;
    filled.venue_order_id = Some("42".to_owned());
    filled.executed_qty = dec("0.02777777");
    filled.executed_quote = dec("49.99999999");
    filled.fee_quote = dec("0.04999999");
    filled.updated_at = at(40);
    assert!(store.advance_order(&filled).await.unwrap());
    let mut not_placed = late.clone();
    not_placed.state = IntentState::NotPlaced;
    not_placed.updated_at = at(40);
    assert!(store.advance_order(&not_placed).await.unwrap());
    assert_eq!(listed().await, [open]);
    let rows = store.orders_since(account, at(30)).await.unwrap();
    assert_eq!(rows, [not_placed, filled], "written exactly, creation time kept");
}

pub async fn manual_orders_only_move_forward_even_when_updated_at_once(store: &dyn Store) {
    let (user, account, bot) = bot_owner(store, "forward@example.com").await;
    let (other, others_account, _) = bot_owner(store, "forward-other@example.com").await;
    let order = manual_order(user, account, "f-1", at(10));
    store.record_order(&order, None).await.unwrap();
    let stored = || async { store.orders_since(account, at(10)).await.unwrap().remove(0) };
    let report = |state: IntentState, qty: &str, quote: &str, when: i64| {
        let mut next = order.clone();
        next.state = state;
        next.venue_order_id = Some("900".to_owned());
        next.executed_qty = dec(qty);
        next.executed_quote = dec(quote);
        next.updated_at = at(when);
        next
    };

    let half = report(IntentState::Open, "0.01", "18", 20);
    assert!(store.advance_order(&half).await.unwrap());
    assert!(store.advance_order(&half).await.unwrap(), "the same report again changes nothing");
    assert_eq!(stored().await, half);
    // Back to pending, or less executed than stored: refused, nothing written.
    assert!(!store.advance_order(&report(IntentState::Pending, "0.01", "18", 21)).await.unwrap());
    assert!(!store.advance_order(&report(IntentState::Open, "0.005", "18", 21)).await.unwrap());
    assert!(!store.advance_order(&report(IntentState::Open, "0.01", "17.99", 21)).await.unwrap());
    assert!(!store.advance_order(&report(IntentState::Canceled, "0", "0", 21)).await.unwrap());
    assert_eq!(stored().await, half);
    // A report without the venue's id keeps the one stored.
    let mut more = report(IntentState::Open, "0.02", "36", 22);
    more.venue_order_id = None;
    assert!(store.advance_order(&more).await.unwrap());
    more.venue_order_id = Some("900".to_owned());
    assert_eq!(stored().await, more);
    // Final: never changed again, not even to another final state or with more executed.
    let mut filled = report(IntentState::Filled, "0.03", "54", 23);
    filled.fee_base = dec("0.00003");
    assert!(store.advance_order(&filled).await.unwrap());
    for late in [
        report(IntentState::Filled, "0.03", "54", 24),
        report(IntentState::Canceled, "0.03", "54", 24),
        report(IntentState::Filled, "0.04", "72", 24),
        report(IntentState::Open, "0.03", "54", 24),
    ] {
        assert!(!store.advance_order(&late).await.unwrap(), "{:?}", late.state);
    }
    assert_eq!(stored().await, filled);

    // Only the order's own user and account, and only orders outside any deal.
    let theirs = manual_order(other, others_account, "f-theirs", at(10));
    store.record_order(&theirs, None).await.unwrap();
    let mut hijack = theirs.clone();
    hijack.user_id = user;
    hijack.exchange_account_id = account;
    hijack.state = IntentState::Canceled;
    assert!(!store.advance_order(&hijack).await.unwrap());
    assert!(!store.advance_order(&manual_order(user, account, "f-unknown", at(10))).await.unwrap());
    assert_eq!(claim_all(store).await.len(), 2);
    let deal = new_deal(&bot, DealStatus::BaseOrderPlaced, at(1));
    let base = new_order(&deal, 0, OrderRole::Base);
    assert!(save_as(store, NODE_A, at(1), &deal, std::slice::from_ref(&base)).await);
    let mut deal_fill = base.clone();
    deal_fill.state = IntentState::Filled;
    assert!(!store.advance_order(&deal_fill).await.unwrap(), "a deal's orders are written under its lease only");
    assert_eq!(store.deal(user, deal.id).await.unwrap().unwrap().1, [base]);
    assert_eq!(store.orders_since(others_account, at(0)).await.unwrap(), [theirs]);

    // Two nodes reporting at once, in either order: the order ends filled, never open again.
    for round in 0..6 {
        let order = manual_order(user, account, &format!("f-race-{round}"), at(100));
        store.record_order(&order, None).await.unwrap();
        let mut open = order.clone();
        open.state = IntentState::Open;
        open.executed_qty = dec("0.01");
        open.executed_quote = dec("18");
        let mut done = order.clone();
        done.state = IntentState::Filled;
        done.executed_qty = dec("0.03");
        done.executed_quote = dec("54");
        let (first, second) = if round % 2 == 0 { (&open, &done) } else { (&done, &open) };
        let (a, b) = tokio::join!(store.advance_order(first), store.advance_order(second));
        let written = [a.unwrap(), b.unwrap()];
        let now = store.orders_since(account, at(100)).await.unwrap();
        let row = now.iter().find(|o| o.client_order_id == order.client_order_id).unwrap();
        assert_eq!(row, &done, "round {round}: {written:?}");
        assert!(written.contains(&true));
    }
}

pub async fn trading_policies_are_set_per_account_by_its_owner(store: &dyn Store) {
    let (owner, _) = register(store, "policy@example.com").await;
    let (other, _) = register(store, "policy-other@example.com").await;
    let account = exchange_account_of(store, owner.id, "POLICY1").await;
    let second = exchange_account_of(store, owner.id, "POLICY2").await;
    assert_eq!(store.trading_policy(account).await.unwrap(), None, "never set");
    let strict = TradingPolicy {
        pair_allowlist: vec![pair("USDT_BTC"), pair("BTC_ETH")],
        max_order_notional: dec("0.00000001"),
        max_daily_volume: dec("123456.123456789"),
        max_orders_per_minute: 7,
        max_price_deviation_percent: dec("2.50"),
        min_quote_volume_24h: dec("0"),
    };
    let set = audit(Some(owner.id), "trading_policy.changed", at(1));
    assert!(store.set_trading_policy(owner.id, account, &strict, at(1), &set).await.unwrap());
    assert_eq!(store.trading_policy(account).await.unwrap(), Some(strict.clone()));
    assert_eq!(store.trading_policy(second).await.unwrap(), None, "per account");
    let loose = TradingPolicy { max_orders_per_minute: u32::MAX, ..TradingPolicy::default() };
    let set = audit(Some(owner.id), "trading_policy.changed", at(2));
    assert!(store.set_trading_policy(owner.id, account, &loose, at(2), &set).await.unwrap());
    assert_eq!(store.trading_policy(account).await.unwrap(), Some(loose.clone()), "replaced, allowlist emptied");

    let refused = audit(Some(other.id), "trading_policy.changed", at(3));
    assert!(!store.set_trading_policy(other.id, account, &strict, at(3), &refused).await.unwrap());
    let nowhere = ExchangeAccountId::from_random_bytes(random_bytes());
    assert!(!store.set_trading_policy(owner.id, nowhere, &strict, at(3), &refused).await.unwrap());
    assert_eq!(store.trading_policy(account).await.unwrap(), Some(loose), "unchanged");
    assert_eq!(store.trading_policy(nowhere).await.unwrap(), None);
    assert!(audit_kinds(store, other.id).await.iter().all(|k| k != "trading_policy.changed"), "no audit row");
    let changes = audit_kinds(store, owner.id).await.iter().filter(|k| *k == "trading_policy.changed").count();
    assert_eq!(changes, 2);
}

pub async fn the_kill_switch_stops_bots_revokes_webhooks_and_ends_other_sessions(store: &dyn Store) {
    let (user, account, first) = bot_owner(store, "kill@example.com").await;
    let second = new_bot(user, account, "second", at(2));
    let mut stopped = new_bot(user, account, "stopped", at(3));
    stopped.enabled = false;
    stopped.disabled_reason = Some("guard_refused".to_owned());
    add_bot(store, &second).await;
    add_bot(store, &stopped).await;
    let rotated = audit(Some(user), "bot.webhook_rotated", at(4));
    assert!(store.rotate_webhook_secret(user, first.id, &webhook_secret(), at(10_000), &rotated).await.unwrap());
    let (other, _, others_bot) = bot_owner(store, "kill-other@example.com").await;
    let others_secrets = store.webhook_secrets(others_bot.id).await.unwrap();
    let keep = session(user, at(5));
    let sessions = [session(user, at(5)), keep.clone(), session(user, at(6)), session(other, at(6))];
    for s in &sessions {
        assert!(store.record_login(&login(s, None)).await.unwrap());
    }

    let killed = audit(Some(user), "account.kill_switch", at(20));
    let outcome = store.kill_switch(user, keep.id, at(20), &killed).await.unwrap();
    assert_eq!(outcome, KillSwitchOutcome { bots_disabled: 2, sessions_ended: 2 });
    let bots = store.bots(user).await.unwrap();
    assert!(bots.iter().all(|b| !b.enabled), "{bots:?}");
    for bot in &bots[..2] {
        assert_eq!((bot.disabled_reason.as_deref(), bot.updated_at), (Some("kill_switch"), at(20)));
    }
    assert_eq!(bots[2], stopped, "an already disabled bot keeps its reason");
    let revoked = WebhookSecrets::default();
    for bot in &bots {
        assert_eq!(store.webhook_secrets(bot.id).await.unwrap(), Some(revoked.clone()), "{}", bot.name);
    }
    // The sealed copies are gone, not only unreachable: rotation finds none of them.
    let listed = store.sealed_blobs_with_kek(1, 100).await.unwrap();
    let bot_ids: Vec<String> = bots.iter().map(|b| b.id.to_string()).collect();
    assert!(!listed.iter().any(|e| bot_ids.contains(&e.at.row_id)), "{listed:?}");
    assert_eq!(ids(&store.sessions_for_user(user).await.unwrap(), |s| s.id), [keep.id], "the current one stays");
    assert!(store.session_by_token(&keep.token_hash).await.unwrap().is_some());
    assert_eq!(store.audit_for_user(user, None, 1).await.unwrap(), [killed]);

    // Nothing of another user's changes.
    assert_eq!(store.bots(other).await.unwrap(), std::slice::from_ref(&others_bot));
    assert_eq!(store.webhook_secrets(others_bot.id).await.unwrap(), others_secrets);
    assert_eq!(store.sessions_for_user(other).await.unwrap().len(), 1);

    // Pressed again: nothing left to disable or end.
    let again = audit(Some(user), "account.kill_switch", at(21));
    let outcome = store.kill_switch(user, keep.id, at(21), &again).await.unwrap();
    assert_eq!(outcome, KillSwitchOutcome { bots_disabled: 0, sessions_ended: 0 });
    assert_eq!(store.bots(user).await.unwrap(), bots, "nothing changes the second time");
}

pub async fn deleting_an_exchange_account_removes_its_bots_deals_orders_and_policy(store: &dyn Store) {
    let (user, account, bot) = bot_owner(store, "cascade@example.com").await;
    let kept_account = exchange_account_of(store, user, "CASCADE2").await;
    let kept_bot = new_bot(user, kept_account, "kept", at(2));
    add_bot(store, &kept_bot).await;
    assert_eq!(claim_all(store).await.len(), 2);
    let deal = new_deal(&bot, DealStatus::Bought, at(3));
    let kept_deal = new_deal(&kept_bot, DealStatus::Bought, at(3));
    assert!(save_as(store, NODE_A, at(3), &deal, &[new_order(&deal, 0, OrderRole::Base)]).await);
    let kept_orders = vec![new_order(&kept_deal, 0, OrderRole::Base)];
    assert!(save_as(store, NODE_A, at(3), &kept_deal, &kept_orders).await);
    store.record_order(&manual_order(user, account, "cascade-manual", at(4)), None).await.unwrap();
    let policy = TradingPolicy::default();
    for id in [account, kept_account] {
        let set = audit(Some(user), "trading_policy.changed", at(5));
        assert!(store.set_trading_policy(user, id, &policy, at(5), &set).await.unwrap());
    }

    let removed = audit(Some(user), "exchange_key.removed", at(6));
    assert!(store.delete_exchange_account(user, account, &removed).await.unwrap());
    assert_eq!(store.bot(user, bot.id).await.unwrap(), None);
    assert_eq!(store.webhook_secrets(bot.id).await.unwrap(), None);
    assert_eq!(store.deal(user, deal.id).await.unwrap(), None);
    assert!(store.orders_since(account, at(0)).await.unwrap().is_empty(), "deal and manual orders");
    assert_eq!(store.trading_policy(account).await.unwrap(), None);
    assert!(store.open_deals(&[bot.id]).await.unwrap().is_empty());
    assert_eq!(ids(&claim_all(store).await, |b| b.id), [kept_bot.id]);

    // The other account keeps everything.
    assert_eq!(store.bots(user).await.unwrap(), [kept_bot]);
    assert_eq!(store.deal(user, kept_deal.id).await.unwrap(), Some((kept_deal, kept_orders.clone())));
    assert_eq!(store.orders_since(kept_account, at(0)).await.unwrap(), kept_orders);
    assert_eq!(store.trading_policy(kept_account).await.unwrap(), Some(policy));
}

// --- webhook signals ---

/// The dedupe window of the tests (spec/webhooks.md section 4's default).
const WINDOW: Duration = Duration::from_secs(60);

fn new_signal(bot: &Bot, action: SignalAction, received: Timestamp, delay: Duration) -> Signal {
    Signal {
        id: SignalId::from_random_bytes(random_bytes()),
        bot_id: bot.id,
        user_id: bot.user_id,
        action,
        pair: Some(pair("USDT_BTC")),
        params: r#"{"volume":"10.50","price":"27000.5"}"#.to_owned(),
        source_ip: "52.89.214.238".to_owned(),
        received_at: received,
        due_at: received.plus(delay),
        state: SignalState::Pending,
        outcome: None,
        handled_at: None,
    }
}

/// Records `signal` under the dedupe key `key` with the tests' window ending at its arrival.
async fn record(store: &dyn Store, signal: &Signal, key: &[u8; 32]) -> bool {
    let accepted = audit(Some(signal.user_id), "webhook.signal_accepted", signal.received_at);
    store.record_signal(signal, key, signal.received_at.minus(WINDOW), &accepted).await.unwrap()
}

/// A new signal recorded at `received` (due then), under a fresh dedupe key.
async fn recorded(store: &dyn Store, bot: &Bot, received: Timestamp) -> Signal {
    let signal = new_signal(bot, SignalAction::StartDeal, received, Duration::ZERO);
    assert!(record(store, &signal, &random_bytes()).await);
    signal
}

/// The signal as stored, found in its bot's log.
async fn stored_signal(store: &dyn Store, signal: &Signal) -> Signal {
    let log = store.signals(signal.user_id, signal.bot_id, 1000).await.unwrap();
    log.into_iter().find(|s| s.id == signal.id).expect("recorded")
}

fn ended(signal: &Signal, state: SignalState, outcome: &str) -> SignalOutcome {
    SignalOutcome { id: signal.id, state, outcome: outcome.to_owned() }
}

fn signal_ids(signals: &[Signal]) -> Vec<SignalId> {
    ids(signals, |s| s.id)
}

async fn accepted_audits(store: &dyn Store, user: UserId) -> usize {
    audit_kinds(store, user).await.iter().filter(|k| *k == "webhook.signal_accepted").count()
}

pub async fn a_webhook_target_is_any_bot_by_id_with_its_secrets(store: &dyn Store) {
    assert!(store.webhook_target(BotId::from_random_bytes(random_bytes())).await.unwrap().is_none());
    let (owner, _) = register(store, "target@example.com").await;
    let account = exchange_account_of(store, owner.id, "TARGETKEY").await;
    let mut bot = new_bot(owner.id, account, "hooked", at(1));
    bot.pairs = vec![pair("BTC_ETH")];
    let first = add_bot(store, &bot).await;
    let (other_bot, other_hash) = {
        let (_, _, other_bot) = bot_owner(store, "target-other@example.com").await;
        let hash = store.webhook_secrets(other_bot.id).await.unwrap().unwrap().current;
        (other_bot, hash)
    };
    assert_eq!(store.webhook_target(bot.id).await.unwrap(), Some((bot.clone(), fresh_secrets(&first))));
    let theirs = store.webhook_target(other_bot.id).await.unwrap().expect("any user's bot");
    assert_eq!((theirs.0, theirs.1.current), (other_bot, other_hash));

    // A rotation shows the previous hash and its end; an update shows the bot as it is now.
    let second = webhook_secret();
    let rotated = audit(Some(owner.id), "bot.webhook_rotated", at(2));
    assert!(store.rotate_webhook_secret(owner.id, bot.id, &second, at(100), &rotated).await.unwrap());
    bot.enabled = false;
    bot.disabled_reason = Some("paused_key".to_owned());
    bot.updated_at = at(3);
    assert!(store.update_bot(&bot, &audit(Some(owner.id), "bot.updated", at(3))).await.unwrap());
    assert_eq!(
        store.webhook_target(bot.id).await.unwrap(),
        Some((bot.clone(), rotated_secrets(&second, &first, at(100))))
    );

    // A deleted bot is no target; its signals and dedupe entries go with it.
    let signal = recorded(store, &bot, at(4)).await;
    assert_eq!(store.signals(owner.id, bot.id, 10).await.unwrap(), [signal]);
    let removed = audit(Some(owner.id), "exchange_key.removed", at(5));
    assert!(store.delete_exchange_account(owner.id, account, &removed).await.unwrap());
    assert!(store.webhook_target(bot.id).await.unwrap().is_none());
    assert!(store.signals(owner.id, bot.id, 10).await.unwrap().is_empty());
}

pub async fn signals_round_trip_every_value_and_are_listed_newest_first(store: &dyn Store) {
    let (user, account, bot) = bot_owner(store, "signals@example.com").await;
    let second_bot = new_bot(user, account, "second", at(2));
    add_bot(store, &second_bot).await;
    let (other, _, others_bot) = bot_owner(store, "signals-other@example.com").await;
    // Every action, with and without a pair, each a second apart; the last three in one
    // millisecond, listed newest first in the reverse of the order they were written.
    let same_ms = falling_ids(3, || SignalId::from_random_bytes(random_bytes()));
    let mut written = Vec::new();
    for (i, action) in SignalAction::ALL.iter().enumerate() {
        let n = i64::try_from(i).unwrap();
        let received = at(10 + n.min(8));
        let mut signal = new_signal(&bot, *action, received, Duration::from_millis(1500 * u64::try_from(i).unwrap()));
        signal.pair = (i % 3 != 1).then(|| pair(["USDT_BTC", "BTC_ETH", "USDC_SOL"][i % 3]));
        signal.params = format!(r#"{{"i":{i},"volume":"0.00000001","note":"ünïcödé 'q' \"dq\""}}"#);
        signal.source_ip = ["52.89.214.238", "2001:db8::7", "10.0.0.1"][i % 3].to_owned();
        if n >= 8 {
            signal.id = same_ms[usize::try_from(n - 8).unwrap()];
        }
        assert!(record(store, &signal, &random_bytes()).await, "{action:?}");
        written.push(signal);
    }
    assert_eq!(written.len(), 11, "a new action gets a row here");
    let others = recorded(store, &second_bot, at(30)).await;
    let foreign = recorded(store, &others_bot, at(30)).await;

    let newest_first: Vec<Signal> = written.iter().rev().cloned().collect();
    assert_eq!(store.signals(user, bot.id, 100).await.unwrap(), newest_first, "every field as written");
    assert_eq!(store.signals(user, bot.id, 4).await.unwrap(), newest_first[..4], "at most the limit");
    assert!(store.signals(user, bot.id, 0).await.unwrap().is_empty());
    assert_eq!(store.signals(user, second_bot.id, 100).await.unwrap(), [others], "per bot");
    assert!(store.signals(other, bot.id, 100).await.unwrap().is_empty(), "not another user's bot");
    assert!(store.signals(user, others_bot.id, 100).await.unwrap().is_empty());
    assert_eq!(store.signals(other, others_bot.id, 100).await.unwrap(), [foreign]);
    assert_eq!(accepted_audits(store, user).await, 12, "an audit row with each");

    // A signal of another user's bot, of no bot, or one already ended is refused whole.
    let mut stolen = new_signal(&others_bot, SignalAction::StartDeal, at(40), Duration::ZERO);
    stolen.user_id = user;
    let unknown = new_signal(&new_bot(user, account, "ghost", at(40)), SignalAction::StartDeal, at(40), Duration::ZERO);
    for refused in [stolen, unknown] {
        let record = audit(Some(user), "webhook.signal_accepted", at(40));
        let err = store.record_signal(&refused, &random_bytes(), at(0), &record).await;
        assert!(matches!(err, Err(StoreError::Conflict("signal_bot_not_found"))), "{err:?}");
    }
    // A finished signal needs its outcome and time; a pending one has neither.
    let mut done = new_signal(&bot, SignalAction::StartDeal, at(40), Duration::ZERO);
    done.state = SignalState::Done;
    let mut handled = new_signal(&bot, SignalAction::StartDeal, at(40), Duration::ZERO);
    handled.handled_at = Some(at(40));
    let mut explained = new_signal(&bot, SignalAction::StartDeal, at(40), Duration::ZERO);
    explained.outcome = Some("Started.".to_owned());
    let mut unexplained = new_signal(&bot, SignalAction::StartDeal, at(40), Duration::ZERO);
    unexplained.state = SignalState::Refused;
    unexplained.handled_at = Some(at(40));
    for refused in [done, handled, explained, unexplained] {
        let record = audit(Some(user), "webhook.signal_accepted", at(40));
        let err = store.record_signal(&refused, &random_bytes(), at(0), &record).await;
        assert!(matches!(err, Err(StoreError::Conflict("signal_inconsistent"))), "{err:?}");
    }
    assert_eq!(store.signals(user, bot.id, 100).await.unwrap(), newest_first, "nothing written");
    assert_eq!(store.signals(other, others_bot.id, 100).await.unwrap().len(), 1);
    assert_eq!(accepted_audits(store, user).await, 12);

    // One refused on arrival (a start signal for a disabled bot) is recorded finished, as given,
    // and is never due.
    let mut refused = new_signal(&second_bot, SignalAction::StartDeal, at(50), Duration::ZERO);
    refused.state = SignalState::Refused;
    refused.outcome = Some("Not acted on: the bot is disabled.".to_owned());
    refused.handled_at = Some(at(50));
    assert!(record(store, &refused, &random_bytes()).await);
    assert_eq!(store.signals(user, second_bot.id, 1).await.unwrap(), [refused]);
}

pub async fn a_duplicate_signal_inside_the_window_is_refused_and_writes_nothing(store: &dyn Store) {
    let (user, account, bot) = bot_owner(store, "dedupe@example.com").await;
    let second_bot = new_bot(user, account, "second", at(2));
    add_bot(store, &second_bot).await;
    let body: [u8; 32] = random_bytes();
    let first = new_signal(&bot, SignalAction::StartDeal, at(10), Duration::ZERO);
    assert!(record(store, &first, &body).await);

    // The same body inside the window (60 s back from its arrival, the first's millisecond
    // included): no signal, no audit row, and the window is not moved.
    for when in [at(10), at(40), at(70)] {
        let again = new_signal(&bot, SignalAction::StartDeal, when, Duration::ZERO);
        assert!(!record(store, &again, &body).await, "{when:?}");
    }
    assert_eq!(store.signals(user, bot.id, 10).await.unwrap(), std::slice::from_ref(&first));
    assert_eq!(accepted_audits(store, user).await, 1);

    // Another body, or the same body for another bot, is no duplicate.
    let other_body = new_signal(&bot, SignalAction::CloseAtMarketPrice, at(40), Duration::ZERO);
    assert!(record(store, &other_body, &random_bytes()).await);
    let other_bot = new_signal(&second_bot, SignalAction::StartDeal, at(40), Duration::ZERO);
    assert!(record(store, &other_bot, &body).await);

    // Just past the window the body is accepted again, and the window starts over from it.
    let after = new_signal(&bot, SignalAction::StartDeal, at(70).plus(Duration::from_millis(1)), Duration::ZERO);
    assert!(record(store, &after, &body).await);
    let within_new_window = new_signal(&bot, SignalAction::StartDeal, at(100), Duration::ZERO);
    assert!(!record(store, &within_new_window, &body).await);
    assert_eq!(signal_ids(&store.signals(user, bot.id, 10).await.unwrap()), [after.id, other_body.id, first.id]);
    assert_eq!(signal_ids(&store.signals(user, second_bot.id, 10).await.unwrap()), [other_bot.id]);
    assert_eq!(accepted_audits(store, user).await, 4);
}

pub async fn identical_signals_arriving_at_once_are_recorded_once(store: &dyn Store) {
    let (user, _, bot) = bot_owner(store, "dedupe-race@example.com").await;
    let mut expected = 0;
    for round in 0..3 {
        let body: [u8; 32] = random_bytes();
        // A new body, then the same body again once its window has passed: each time eight
        // identical requests at once, of which one is recorded.
        for when in [at(1000 * round), at(1000 * round + 61)] {
            let signals: Vec<Signal> =
                (0..8).map(|_| new_signal(&bot, SignalAction::StartDeal, when, Duration::ZERO)).collect();
            let audits: Vec<AuditRecord> = (0..8).map(|_| audit(Some(user), "webhook.signal_accepted", when)).collect();
            let one = |i: usize| store.record_signal(&signals[i], &body, when.minus(WINDOW), &audits[i]);
            let (a, b, c, d, e, f, g, h) = tokio::join!(one(0), one(1), one(2), one(3), one(4), one(5), one(6), one(7));
            let results: Vec<bool> = [a, b, c, d, e, f, g, h].into_iter().map(|r| r.unwrap()).collect();
            assert_eq!(
                results.iter().filter(|accepted| **accepted).count(),
                1,
                "round {round} at {when:?}: {results:?}"
            );
            expected += 1;
            let log = store.signals(user, bot.id, 100).await.unwrap();
            assert_eq!(log.len(), expected);
            let winner = results.iter().position(|accepted| *accepted).unwrap();
            assert_eq!(log[0], signals[winner], "the accepted one is the one recorded");
            assert_eq!(accepted_audits(store, user).await, expected);
        }
    }
}

pub async fn due_signals_are_the_pending_due_signals_of_the_nodes_leased_bots(store: &dyn Store) {
    let (user, account, bot) = bot_owner(store, "due@example.com").await;
    let (_, _, others_bot) = bot_owner(store, "due-other@example.com").await;
    assert_eq!(store.claim_bots(NODE_A, at(0), at(1000)).await.unwrap().len(), 2);
    let b_bot = new_bot(user, account, "node b's", at(2));
    add_bot(store, &b_bot).await;
    assert_eq!(ids(&store.claim_bots(NODE_B, at(0), at(1000)).await.unwrap(), |b| b.id), [b_bot.id]);

    // Received first but delayed: due after the others, still listed first once due.
    let delayed = new_signal(&bot, SignalAction::AddFundsInQuote, at(5), Duration::from_secs(25));
    assert!(record(store, &delayed, &random_bytes()).await);
    // Two in one millisecond: in the order they were recorded.
    let same_ms = falling_ids(2, || SignalId::from_random_bytes(random_bytes()));
    let first = Signal { id: same_ms[0], ..new_signal(&bot, SignalAction::StartDeal, at(10), Duration::ZERO) };
    let second = Signal { id: same_ms[1], pair: None, ..new_signal(&bot, SignalAction::Buy, at(10), Duration::ZERO) };
    for signal in [&first, &second] {
        assert!(record(store, signal, &random_bytes()).await);
    }
    let finished = recorded(store, &bot, at(8)).await;
    assert!(store.finish_signal(&ended(&finished, SignalState::Refused, "No deal."), at(9)).await.unwrap());
    let foreign = recorded(store, &others_bot, at(20)).await;
    let node_bs = recorded(store, &b_bot, at(10)).await;

    let due = |node: &'static str, now: Timestamp, limit: u32| async move {
        store.due_signals(node, now, limit).await.unwrap()
    };
    assert!(due(NODE_A, at(9), 10).await.is_empty(), "nothing due yet");
    assert_eq!(due(NODE_A, at(20), 10).await, [first.clone(), second.clone(), foreign.clone()], "every field");
    assert_eq!(signal_ids(&due(NODE_A, at(29), 10).await), [first.id, second.id, foreign.id], "not before due");
    let all = [delayed.id, first.id, second.id, foreign.id];
    assert_eq!(signal_ids(&due(NODE_A, at(30), 10).await), all, "oldest first, due at due_at");
    assert_eq!(signal_ids(&due(NODE_A, at(30), 2).await), all[..2], "at most the limit");
    assert_eq!(signal_ids(&due(NODE_B, at(30), 10).await), [node_bs.id], "each node its own bots");
    assert!(due("node-c", at(30), 10).await.is_empty());
    assert_eq!(signal_ids(&due(NODE_A, at(1000), 10).await), all, "the lease holds until its very end");
    assert!(due(NODE_A, at(1001), 10).await.is_empty(), "an expired lease is no lease");

    // A finished signal is no longer due.
    assert!(store.finish_signal(&ended(&first, SignalState::Done, "Started."), at(31)).await.unwrap());
    assert_eq!(signal_ids(&due(NODE_A, at(31), 10).await), [delayed.id, second.id, foreign.id]);
    store.release_bots(NODE_A).await.unwrap();
    assert!(due(NODE_A, at(32), 10).await.is_empty(), "released");
    assert_eq!(signal_ids(&due(NODE_B, at(32), 10).await), [node_bs.id]);
}

pub async fn a_signal_is_finished_once_and_never_with_a_pending_outcome(store: &dyn Store) {
    let (user, _, bot) = bot_owner(store, "finish@example.com").await;
    let signal = new_signal(&bot, SignalAction::CloseAtMarketPrice, at(10), Duration::ZERO);
    assert!(record(store, &signal, &random_bytes()).await);

    let err = store.finish_signal(&ended(&signal, SignalState::Pending, "Still waiting."), at(11)).await;
    assert!(matches!(err, Err(StoreError::Conflict("signal_outcome_pending"))), "{err:?}");
    assert_eq!(stored_signal(store, &signal).await, signal, "nothing written");

    let sentence = "No deal to close on USDT_BTC.";
    assert!(store.finish_signal(&ended(&signal, SignalState::Refused, sentence), at(12)).await.unwrap());
    let refused = Signal {
        state: SignalState::Refused,
        outcome: Some(sentence.to_owned()),
        handled_at: Some(at(12)),
        ..signal.clone()
    };
    assert_eq!(stored_signal(store, &refused).await, refused);
    for state in [SignalState::Done, SignalState::Refused, SignalState::Expired] {
        assert!(!store.finish_signal(&ended(&signal, state, "Again."), at(13)).await.unwrap(), "{state:?}");
    }
    assert_eq!(stored_signal(store, &signal).await, refused, "the first outcome stays");
    let unknown = new_signal(&bot, SignalAction::StartDeal, at(10), Duration::ZERO);
    assert!(!store.finish_signal(&ended(&unknown, SignalState::Done, "Started."), at(13)).await.unwrap());
    assert_eq!(store.signals(user, bot.id, 10).await.unwrap(), [refused]);
}

pub async fn a_deal_saved_with_its_signal_finishes_it_in_the_same_write(store: &dyn Store) {
    let (user, account, bot) = bot_owner(store, "deal-signal@example.com").await;
    let second_bot = new_bot(user, account, "second", at(2));
    add_bot(store, &second_bot).await;
    assert_eq!(claim_all(store).await.len(), 2);
    let signal = recorded(store, &bot, at(10)).await;
    let seconds = recorded(store, &second_bot, at(10)).await;

    let mut deal = new_deal(&bot, DealStatus::Created, at(11));
    let base = new_order(&deal, 0, OrderRole::Base);
    deal.next_seq = 1;
    let started = ended(&signal, SignalState::Done, "Started a deal on USDT_BTC.");
    let record = audit(Some(user), "deal.saved", at(11));
    assert!(
        store.save_deal(NODE_A, at(11), &deal, std::slice::from_ref(&base), &[record], Some(&started)).await.unwrap()
    );
    let done = Signal {
        state: SignalState::Done,
        outcome: Some(started.outcome.clone()),
        handled_at: Some(at(11)),
        ..signal.clone()
    };
    assert_eq!(stored_signal(store, &signal).await, done);
    let saved = Some((deal.clone(), vec![base.clone()]));
    assert_eq!(store.deal(user, deal.id).await.unwrap(), saved);

    // The same signal again, a signal of another bot, one of no bot, or an outcome that ends
    // nothing: an error, and neither the deal, its orders, nor the audit row are written.
    let mut changed = deal.clone();
    changed.status = DealStatus::BaseOrderPlaced;
    changed.next_seq = 2;
    changed.updated_at = at(12);
    let safety = new_order(&changed, 1, OrderRole::Safety);
    let unknown = new_signal(&bot, SignalAction::StartDeal, at(10), Duration::ZERO);
    for (outcome, code) in [
        (ended(&signal, SignalState::Done, "Started again."), "signal_not_pending"),
        (ended(&seconds, SignalState::Done, "Started."), "signal_not_pending"),
        (ended(&unknown, SignalState::Done, "Started."), "signal_not_pending"),
        (ended(&seconds, SignalState::Pending, "Waiting."), "signal_outcome_pending"),
    ] {
        let record = audit(Some(user), "deal.resaved", at(12));
        let err =
            store.save_deal(NODE_A, at(12), &changed, std::slice::from_ref(&safety), &[record], Some(&outcome)).await;
        assert!(matches!(err, Err(StoreError::Conflict(c)) if c == code), "{outcome:?}: {err:?}");
        assert_eq!(store.deal(user, deal.id).await.unwrap(), saved, "{outcome:?}");
    }
    assert!(!audit_kinds(store, user).await.contains(&"deal.resaved".to_owned()));
    assert_eq!(stored_signal(store, &signal).await, done, "the first outcome stays");
    assert_eq!(stored_signal(store, &seconds).await, seconds, "another bot's signal is untouched");

    // Without the lease nothing is written and the signal stays pending, due for the next holder.
    store.release_bots(NODE_A).await.unwrap();
    let later = recorded(store, &bot, at(20)).await;
    let outcome = ended(&later, SignalState::Done, "Closed at market.");
    let record = audit(Some(user), "deal.resaved", at(21));
    assert!(
        !store
            .save_deal(NODE_A, at(21), &changed, std::slice::from_ref(&safety), &[record], Some(&outcome))
            .await
            .unwrap()
    );
    assert_eq!(stored_signal(store, &later).await, later);
    assert_eq!(store.deal(user, deal.id).await.unwrap(), saved);
    assert_eq!(store.claim_bots(NODE_B, at(22), at(100)).await.unwrap().len(), 2);
    assert_eq!(signal_ids(&store.due_signals(NODE_B, at(22), 10).await.unwrap()), [seconds.id, later.id]);
    let record = audit(Some(user), "deal.resaved", at(23));
    assert!(
        store
            .save_deal(NODE_B, at(23), &changed, std::slice::from_ref(&safety), &[record], Some(&outcome))
            .await
            .unwrap()
    );
    assert_eq!(store.deal(user, deal.id).await.unwrap(), Some((changed, vec![base, safety])));
    assert_eq!(stored_signal(store, &later).await.handled_at, Some(at(23)));
    assert_eq!(signal_ids(&store.due_signals(NODE_B, at(23), 10).await.unwrap()), [seconds.id]);
}

pub async fn expiry_ends_overdue_pending_signals_and_forgets_old_dedupe_entries(store: &dyn Store) {
    let (user, _, bot) = bot_owner(store, "expiry@example.com").await;
    let (other, _, others_bot) = bot_owner(store, "expiry-other@example.com").await;
    let old_body: [u8; 32] = random_bytes();
    let overdue = new_signal(&bot, SignalAction::StartDeal, at(10), Duration::ZERO);
    assert!(record(store, &overdue, &old_body).await);
    let others_overdue = recorded(store, &others_bot, at(20)).await;
    let finished = recorded(store, &bot, at(20)).await;
    let result = ended(&finished, SignalState::Done, "Started.");
    assert!(store.finish_signal(&result, at(21)).await.unwrap());
    // Due exactly at the cut: not before it.
    let on_the_cut = new_signal(&bot, SignalAction::StartDeal, at(50), Duration::from_secs(50));
    let new_body: [u8; 32] = random_bytes();
    assert!(record(store, &on_the_cut, &new_body).await);
    let later = new_signal(&bot, SignalAction::StartDeal, at(60), Duration::from_secs(300));
    assert!(record(store, &later, &random_bytes()).await);

    assert_eq!(store.expire_signals(at(100), at(50), at(200)).await.unwrap(), 2);
    for signal in [&overdue, &others_overdue] {
        let stored = stored_signal(store, signal).await;
        assert_eq!((stored.state, stored.handled_at), (SignalState::Expired, Some(at(200))));
        assert!(stored.outcome.is_some_and(|sentence| sentence.len() > 10), "a sentence says why");
        assert_eq!(Signal { state: SignalState::Pending, outcome: None, handled_at: None, ..stored }, *signal);
    }
    let done = Signal { state: SignalState::Done, outcome: Some(result.outcome), handled_at: Some(at(21)), ..finished };
    assert_eq!(stored_signal(store, &done).await, done, "a finished signal is left as it is");
    assert_eq!(stored_signal(store, &on_the_cut).await, on_the_cut);
    assert_eq!(stored_signal(store, &later).await, later);
    assert!(!store.finish_signal(&ended(&overdue, SignalState::Done, "Late."), at(201)).await.unwrap());
    assert_eq!(store.expire_signals(at(100), at(50), at(201)).await.unwrap(), 0, "nothing left to expire");

    // The entries recorded before `dedupe_before` are gone: their bodies are new again even to a
    // window that would still hold them. The later entry stays.
    let resent = new_signal(&bot, SignalAction::StartDeal, at(210), Duration::ZERO);
    let accepted = audit(Some(user), "webhook.signal_accepted", at(210));
    assert!(store.record_signal(&resent, &old_body, at(0), &accepted).await.unwrap());
    let resent_new = new_signal(&bot, SignalAction::StartDeal, at(210), Duration::ZERO);
    let accepted = audit(Some(user), "webhook.signal_accepted", at(210));
    assert!(!store.record_signal(&resent_new, &new_body, at(0), &accepted).await.unwrap());
    assert_eq!(signal_ids(&store.signals(other, others_bot.id, 10).await.unwrap()), [others_overdue.id]);
}

// --- for backend tests that damage stored rows by hand ---

/// What `damaged_fixture` holds, for a backend test to damage with its own SQL.
#[derive(Debug, Clone)]
pub struct DealFixture {
    pub user: UserId,
    pub account: ExchangeAccountId,
    pub bot: BotId,
    pub deal: DealId,
}

/// Which stored record a damaging statement hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damaged {
    Bot,
    Deal,
    Order,
    Policy,
    /// A pending signal, which `due_signals` reads too.
    Signal,
    /// A signal's state: no longer read as pending, so only the signal log reads it.
    SignalState,
}

/// Statements that damage one record of the fixture the way a hand edit or a bad migration could,
/// each with the record it hits. The tables' checks allow each of them.
pub const DAMAGING_UPDATES: [(&str, Damaged); 13] = [
    ("UPDATE bots SET pairs = 'USDT'", Damaged::Bot),
    ("UPDATE bots SET pairs = 'USDT_BTC,,USDT_ETH'", Damaged::Bot),
    ("UPDATE deals SET status = 'bogus'", Damaged::Deal),
    ("UPDATE deals SET close_reason = 'boredom'", Damaged::Deal),
    ("UPDATE deals SET base_price = '12.3.4'", Damaged::Deal),
    ("UPDATE deals SET profit_quote = '1e400'", Damaged::Deal),
    ("UPDATE orders SET executed_qty = 'NaN'", Damaged::Order),
    ("UPDATE orders SET role = 'sideways'", Damaged::Order),
    ("UPDATE orders SET price = '79228162514264337593543950336'", Damaged::Order),
    ("UPDATE trading_policies SET max_order_notional = ''", Damaged::Policy),
    ("UPDATE signals SET action = 'shout'", Damaged::Signal),
    ("UPDATE signals SET pair = 'USDT'", Damaged::Signal),
    ("UPDATE signals SET state = 'limbo'", Damaged::SignalState),
];

/// A user with an exchange account and its trading policy, a bot, an open deal with an order, and
/// a pending signal of the bot, due.
pub async fn deal_fixture(store: &dyn Store) -> DealFixture {
    let (user, account, bot) = bot_owner(store, "damaged@example.com").await;
    assert_eq!(claim_all(store).await.len(), 1);
    let deal = new_deal(&bot, DealStatus::Bought, at(2));
    assert!(save_as(store, NODE_A, at(2), &deal, &[new_order(&deal, 0, OrderRole::Base)]).await);
    let set = audit(Some(user), "trading_policy.changed", at(3));
    assert!(store.set_trading_policy(user, account, &TradingPolicy::default(), at(3), &set).await.unwrap());
    recorded(store, &bot, at(4)).await;
    DealFixture { user, account, bot: bot.id, deal: deal.id }
}

/// Every read of the damaged record reports a corrupt row (never a panic, never a wrong value).
pub async fn damaged_record_reads_as_corrupt(store: &dyn Store, fixture: &DealFixture, damaged: Damaged) {
    fn corrupt<T: std::fmt::Debug>(result: StoreResult<T>, what: &str) {
        assert!(matches!(result, Err(StoreError::Corrupt(_))), "{what}: {result:?}");
    }
    match damaged {
        Damaged::Bot => {
            corrupt(store.bots(fixture.user).await, "bots");
            corrupt(store.bot(fixture.user, fixture.bot).await, "bot");
            corrupt(store.claim_bots(NODE_A, at(10), at(20)).await, "claim_bots");
        }
        Damaged::Deal | Damaged::Order => {
            corrupt(store.deal(fixture.user, fixture.deal).await, "deal");
            corrupt(store.deals(fixture.user, &all_deals(10)).await, "deals");
            corrupt(store.open_deals(&[fixture.bot]).await, "open_deals");
            if damaged == Damaged::Order {
                corrupt(store.orders_since(fixture.account, at(0)).await, "orders_since");
            }
        }
        Damaged::Policy => corrupt(store.trading_policy(fixture.account).await, "trading_policy"),
        Damaged::Signal => {
            corrupt(store.signals(fixture.user, fixture.bot, 10).await, "signals");
            corrupt(store.due_signals(NODE_A, at(10), 10).await, "due_signals");
        }
        Damaged::SignalState => {
            corrupt(store.signals(fixture.user, fixture.bot, 10).await, "signals");
            assert!(store.due_signals(NODE_A, at(10), 10).await.unwrap().is_empty(), "an unknown state is not pending");
        }
    }
}

pub async fn a_batch_of_signals_is_recorded_in_order_each_with_its_own_answer(store: &dyn Store) {
    let (user, _, bot) = bot_owner(store, "batch@example.com").await;
    let (other, _, others_bot) = bot_owner(store, "batch-other@example.com").await;
    let item = |signal: Signal, key: [u8; 32]| NewSignal {
        dedupe_key: key,
        dedupe_since: signal.received_at.minus(WINDOW),
        audit: audit(Some(signal.user_id), "webhook.signal_accepted", signal.received_at),
        signal,
    };
    let key: [u8; 32] = random_bytes();
    let first = new_signal(&bot, SignalAction::StartDeal, at(10), Duration::ZERO);
    let replay = new_signal(&bot, SignalAction::StartDeal, at(10), Duration::ZERO);
    let mut stolen = new_signal(&others_bot, SignalAction::ExitLong, at(10), Duration::ZERO);
    stolen.user_id = user;
    let mut inconsistent = new_signal(&bot, SignalAction::Buy, at(10), Duration::ZERO);
    inconsistent.state = SignalState::Done;
    let last = new_signal(&bot, SignalAction::Sell, at(10), Duration::ZERO);
    let batch = [
        item(first.clone(), key),
        item(replay, key),
        item(stolen, random_bytes()),
        item(inconsistent, random_bytes()),
        item(last.clone(), random_bytes()),
    ];
    let answers = store.record_signals(&batch).await.unwrap();
    assert!(matches!(answers[0], Ok(true)), "{answers:?}");
    assert!(matches!(answers[1], Ok(false)), "the same body later in the batch is a replay: {answers:?}");
    assert!(matches!(answers[2], Err(StoreError::Conflict("signal_bot_not_found"))), "{answers:?}");
    assert!(matches!(answers[3], Err(StoreError::Conflict("signal_inconsistent"))), "{answers:?}");
    assert!(matches!(answers[4], Ok(true)), "a refusal does not end the batch: {answers:?}");
    assert_eq!(answers.len(), 5);
    assert_eq!(store.signals(user, bot.id, 10).await.unwrap(), [last, first], "only the recorded ones, as given");
    assert!(store.signals(other, others_bot.id, 10).await.unwrap().is_empty());
    assert_eq!(accepted_audits(store, user).await, 2, "an audit row with each recorded signal only");
    assert!(store.record_signals(&[]).await.unwrap().is_empty());
}

// --- the install's operator (issue 8: safe defaults) ---

pub async fn the_first_account_is_the_operator_and_no_later_one(store: &dyn Store) {
    let first = new_user("first@example.com");
    let verify = token(first.id, TokenPurpose::VerifyEmail, DAY);
    let made = store.create_user(&first, &verify, &audit(Some(first.id), "auth.registered", at(0))).await.unwrap();
    assert!(made, "the first account of a database is its operator");
    for (i, email) in ["second@example.com", "third@example.com"].into_iter().enumerate() {
        let user = new_user(email);
        let verify = token(user.id, TokenPurpose::VerifyEmail, DAY);
        let made = store.create_user(&user, &verify, &audit(Some(user.id), "auth.registered", at(1))).await.unwrap();
        assert!(!made, "account {} is not the operator", i + 2);
        assert!(!store.user_by_id(user.id).await.unwrap().unwrap().operator);
    }
    assert!(store.user_by_id(first.id).await.unwrap().unwrap().operator);
    assert!(store.user_by_email("first@example.com").await.unwrap().unwrap().operator, "read by email too");
    // A taken email is still a conflict, not a retry, and changes no flag.
    let again = new_user("FIRST@example.com");
    let verify = token(again.id, TokenPurpose::VerifyEmail, DAY);
    let err = store.create_user(&again, &verify, &audit(Some(again.id), "auth.registered", at(2))).await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    assert!(store.user_by_id(first.id).await.unwrap().unwrap().operator);
}

/// Several first registrations at once on an empty database (on PostgreSQL each on its own
/// connection, READ COMMITTED, so several find no account before any commits): every account is
/// created and exactly one is the operator.
pub async fn first_accounts_created_at_once_make_exactly_one_operator(store: &dyn Store) {
    let users: Vec<NewUser> = (0..6).map(|i| new_user(&format!("racer{i}@example.com"))).collect();
    async fn make(store: &dyn Store, user: &NewUser) -> StoreResult<bool> {
        let verify = token(user.id, TokenPurpose::VerifyEmail, DAY);
        store.create_user(user, &verify, &audit(Some(user.id), "auth.registered", at(0))).await
    }
    let make = |user| make(store, user);
    let (a, b, c, d, e, f) = tokio::join!(
        make(&users[0]),
        make(&users[1]),
        make(&users[2]),
        make(&users[3]),
        make(&users[4]),
        make(&users[5])
    );
    let answers: Vec<bool> = [a, b, c, d, e, f].into_iter().map(|r| r.expect("every account is created")).collect();
    assert_eq!(answers.iter().filter(|op| **op).count(), 1, "one answer says operator: {answers:?}");
    let mut operators = Vec::new();
    for (user, answer) in users.iter().zip(&answers) {
        let stored = store.user_by_id(user.id).await.unwrap().expect("stored");
        assert_eq!(stored.operator, *answer, "the answer matches the stored flag");
        if stored.operator {
            operators.push(user.id);
        }
    }
    assert_eq!(operators.len(), 1, "exactly one operator");
    // Each account got its own audit row, once (a retried attempt leaves nothing behind).
    for user in &users {
        let rows = store.audit_for_user(user.id, None, 10).await.unwrap();
        assert_eq!(rows.len(), 1, "{:?}", rows.iter().map(|r| &r.kind).collect::<Vec<_>>());
    }
}

pub async fn only_the_operator_changes_the_settings_and_each_change_is_audited(store: &dyn Store) {
    let open = OperatorSettings { registration: Registration::Open };
    let closed = OperatorSettings { registration: Registration::Closed };
    assert_eq!(store.operator_settings().await.unwrap(), open, "a fresh install is open");
    assert_eq!(OperatorSettings::default(), open);
    let (operator, _) = register(store, "operator@example.com").await;
    let (other, _) = register(store, "member@example.com").await;

    // Not the operator, or no such user: nothing written, no audit row.
    let refused = audit(Some(other.id), "operator.settings_changed", at(5));
    assert_eq!(
        store.set_operator_settings(other.id, &open, &closed, at(5), &refused).await.unwrap(),
        SettingsWrite::NotOperator
    );
    let nobody = UserId::from_random_bytes(random_bytes());
    let refused = audit(None, "operator.settings_changed", at(5));
    assert_eq!(
        store.set_operator_settings(nobody, &open, &closed, at(5), &refused).await.unwrap(),
        SettingsWrite::NotOperator
    );
    assert_eq!(store.operator_settings().await.unwrap(), open);
    assert_eq!(audit_kinds(store, other.id).await, ["auth.registered"]);

    // A stale expectation writes nothing; the right one writes the setting and the audit row.
    let stale = audit(Some(operator.id), "operator.settings_changed", at(6));
    assert_eq!(
        store.set_operator_settings(operator.id, &closed, &open, at(6), &stale).await.unwrap(),
        SettingsWrite::Stale
    );
    assert_eq!(audit_kinds(store, operator.id).await, ["auth.registered"]);
    let change = audit(Some(operator.id), "operator.settings_changed", at(7));
    assert_eq!(
        store.set_operator_settings(operator.id, &open, &closed, at(7), &change).await.unwrap(),
        SettingsWrite::Written
    );
    assert_eq!(store.operator_settings().await.unwrap(), closed);
    assert_eq!(audit_kinds(store, operator.id).await, ["operator.settings_changed", "auth.registered"]);
    let back = audit(Some(operator.id), "operator.settings_changed", at(8));
    assert_eq!(
        store.set_operator_settings(operator.id, &closed, &open, at(8), &back).await.unwrap(),
        SettingsWrite::Written
    );
    assert_eq!(store.operator_settings().await.unwrap(), open);

    // Two changes from the same state at once: one wins, the other is told it is stale.
    let one = audit(Some(operator.id), "operator.settings_changed", at(9));
    let two = audit(Some(operator.id), "operator.settings_changed", at(9));
    let (x, y) = tokio::join!(
        store.set_operator_settings(operator.id, &open, &closed, at(9), &one),
        store.set_operator_settings(operator.id, &open, &closed, at(9), &two)
    );
    let mut outcomes = [x.unwrap(), y.unwrap()];
    outcomes.sort_by_key(|w| *w == SettingsWrite::Stale);
    assert_eq!(outcomes, [SettingsWrite::Written, SettingsWrite::Stale]);
    let changes = audit_kinds(store, operator.id).await.iter().filter(|k| *k == "operator.settings_changed").count();
    assert_eq!(changes, 3, "one audit row per change that happened");
}

pub async fn closed_registration_creates_nothing_until_reopened(store: &dyn Store) {
    let (operator, _) = register(store, "owner@example.com").await;
    let open = OperatorSettings { registration: Registration::Open };
    let closed = OperatorSettings { registration: Registration::Closed };
    let close = audit(Some(operator.id), "operator.settings_changed", at(1));
    assert_eq!(
        store.set_operator_settings(operator.id, &open, &closed, at(1), &close).await.unwrap(),
        SettingsWrite::Written
    );

    let late = new_user("late@example.com");
    let verify = token(late.id, TokenPurpose::VerifyEmail, DAY);
    let err = store.create_user(&late, &verify, &audit(Some(late.id), "auth.registered", at(2))).await;
    assert!(matches!(err, Err(StoreError::Conflict("registration_closed"))), "{err:?}");
    // Nothing of it exists: no account, no usable token, no audit row.
    assert_eq!(store.user_by_id(late.id).await.unwrap(), None);
    assert_eq!(store.user_by_email("late@example.com").await.unwrap(), None);
    assert_eq!(store.audit_for_user(late.id, None, 10).await.unwrap(), vec![]);
    assert_eq!(
        store.verify_email(&verify.hash, at(3), &audit(None, "auth.email_verified", at(3))).await.unwrap(),
        None
    );
    // A taken email is refused the same way while closed (nothing is looked up first).
    let taken = new_user("owner@example.com");
    let verify_taken = token(taken.id, TokenPurpose::VerifyEmail, DAY);
    let err = store.create_user(&taken, &verify_taken, &audit(Some(taken.id), "auth.registered", at(2))).await;
    assert!(matches!(err, Err(StoreError::Conflict("registration_closed"))), "{err:?}");

    let reopen = audit(Some(operator.id), "operator.settings_changed", at(4));
    assert_eq!(
        store.set_operator_settings(operator.id, &closed, &open, at(4), &reopen).await.unwrap(),
        SettingsWrite::Written
    );
    let made = store.create_user(&late, &verify, &audit(Some(late.id), "auth.registered", at(5))).await.unwrap();
    assert!(!made, "a later account is never the operator");
    assert!(store.user_by_id(late.id).await.unwrap().is_some());
}

/// Accounts of an install made before the operator existed (migration 0009): id, email and
/// creation time. The oldest two share a millisecond; the lower id of those is the first.
pub const PRE_OPERATOR_ACCOUNTS: [(&str, &str, i64); 3] = [
    ("00000000-0000-4000-8000-000000000001", "newest@example.com", T0 + 300),
    ("00000000-0000-4000-8000-000000000003", "tied@example.com", T0 + 100),
    ("00000000-0000-4000-8000-000000000002", "oldest@example.com", T0 + 100),
];

/// Inserts one of [`PRE_OPERATOR_ACCOUNTS`] into a database migrated up to 0009 ($1 id, $2 email,
/// $3 creation time).
pub const INSERT_PRE_OPERATOR_ACCOUNT: &str = "INSERT INTO users (id, email, email_canonical, password_phc, created_at) \
     VALUES ($1, $2, $2, 'not used by the test', $3)";

/// After migration 0010 ran over [`PRE_OPERATOR_ACCOUNTS`]: the oldest account (by creation time,
/// then id) is the operator and no other; registration is open; a new account is not the operator.
pub async fn the_oldest_existing_account_became_the_operator(store: &dyn Store) {
    async fn flag(store: &dyn Store, raw: &str) -> bool {
        let id: UserId = raw.parse().expect("id");
        store.user_by_id(id).await.unwrap().expect("kept by the migration").operator
    }
    let flag = |raw| flag(store, raw);
    let [newest, tied, oldest] = PRE_OPERATOR_ACCOUNTS;
    assert!(flag(oldest.0).await, "the oldest account is the operator");
    assert!(!flag(tied.0).await, "same millisecond, higher id: not the operator");
    assert!(!flag(newest.0).await, "the newest (lowest id) is not the operator");
    assert_eq!(store.operator_settings().await.unwrap(), OperatorSettings::default());
    let (user, _) = register(store, "after@example.com").await;
    assert!(!store.user_by_id(user.id).await.unwrap().unwrap().operator);
}
