//! Key rotation without downtime (SEC-4): a second node rotates the key-encryption key while this
//! node opens and seals TOTP seeds under load; the rewrap job moves every secret to the new key and
//! the old one is destroyed after its grace period. Zero failures throughout; afterwards nothing
//! names the old version and what was sealed under it no longer opens.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::{AuditId, Clock as _, Email, SessionId, Timestamp, UserId};
use server::LiveVault;
use store::{AuditRecord, EnableTotp, KekState, NewEmailToken, NewUser, Store, TokenPurpose};
use vault::VaultError;
use vault::envelope::{Binding, kek_version_of};

use crate::{Backend, PASSWORD, TestApp, logs, spawn_app_with};

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_rotation_under_load_fails_nothing_and_destroys_the_old_key() {
        super::a_rotation_under_load_fails_nothing_and_destroys_the_old_key(crate::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serve_follows_and_finishes_a_rotation_in_the_background() {
        super::serve_follows_and_finishes_a_rotation_in_the_background(crate::Backend::Sqlite).await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_rotation_under_load_fails_nothing_and_destroys_the_old_key() {
        super::a_rotation_under_load_fails_nothing_and_destroys_the_old_key(crate::Backend::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serve_follows_and_finishes_a_rotation_in_the_background() {
        super::serve_follows_and_finishes_a_rotation_in_the_background(crate::Backend::Postgres).await;
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    auth::Random::fill(&auth::OsRandom, &mut out);
    out
}

fn audit(user: UserId, kind: &str, at: Timestamp) -> AuditRecord {
    AuditRecord {
        id: AuditId::from_random_bytes(random()),
        user_id: Some(user),
        at,
        kind: kind.to_owned(),
        ip: "192.0.2.1".to_owned(),
        user_agent: "rotation-test".to_owned(),
        detail: "{}".to_owned(),
    }
}

fn binding(user: UserId) -> Binding {
    Binding::totp_seed(&user.to_string())
}

/// A user straight in the store (no password hashing: the load is on the vault).
async fn new_user(store: &dyn Store, now: Timestamp, email: &str) -> UserId {
    let id = UserId::from_random_bytes(random());
    let user = NewUser {
        id,
        email: Email::parse(email).unwrap(),
        password_phc: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        created_at: now,
    };
    let token = NewEmailToken {
        hash: random(),
        user_id: id,
        purpose: TokenPurpose::VerifyEmail,
        created_at: now,
        expires_at: now,
    };
    store.create_user(&user, &token, &audit(id, "auth.registered", now)).await.unwrap();
    id
}

/// Seals `seed` on `node` and stores it as the user's pending setup.
async fn begin_setup(store: &dyn Store, node: &LiveVault, now: Timestamp, user: UserId, seed: &[u8]) {
    let sealed = node.seal(&binding(user), seed).await.expect("seal");
    assert!(store.begin_totp_setup(user, &sealed, now, &audit(user, "2fa.setup_started", now)).await.unwrap());
}

/// A user with two-factor sign-in on, its seed sealed by `node`. Returns the blob.
async fn with_seed(store: &dyn Store, node: &LiveVault, now: Timestamp, email: &str, seed: &[u8]) -> (UserId, Vec<u8>) {
    let user = new_user(store, now, email).await;
    begin_setup(store, node, now, user, seed).await;
    let blob = store.user_by_id(user).await.unwrap().unwrap().totp_pending.unwrap().0;
    let enable = EnableTotp {
        user,
        sealed_seed: blob.clone(),
        step: 1,
        backup_codes: vec![],
        keep_session: SessionId::from_random_bytes(random()),
        now,
        audit: audit(user, "2fa.enabled", now),
    };
    assert!(store.enable_totp(&enable).await.unwrap());
    (user, blob)
}

/// Another node on the same database, with the same root key file.
async fn second_node(app: &TestApp, refresh: Duration) -> LiveVault {
    let root = vault::RootKey::from_file_text(&app.root_key).unwrap();
    LiveVault::load(app.store.clone(), app.clock.clone(), root, refresh).await.expect("second node")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Default)]
struct Load {
    stop: AtomicBool,
    opens: AtomicU64,
    seals: AtomicU64,
    failures: Mutex<Vec<String>>,
}

impl Load {
    fn fail(&self, what: String) {
        self.failures.lock().unwrap().push(what);
    }
}

async fn wait_until<F: AsyncFnMut() -> bool>(what: &str, mut done: F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// SEC-4
pub async fn a_rotation_under_load_fails_nothing_and_destroys_the_old_key(backend: Backend) {
    logs::install();
    // This node never refreshes on its own during the test: only a blob naming a version it
    // lacks makes it reload (until the test plays its periodic reload explicitly).
    let refresh = Duration::from_secs(3600);
    let app = spawn_app_with(backend, |config| config.vault_refresh = refresh).await;
    let store = app.store.clone();
    let node_a = app.keys.clone();
    let node_b = Arc::new(second_node(&app, refresh).await);
    let now = || app.clock.now();

    // A user of the HTTP API with two-factor sign-in on.
    let email = "rotating@example.com";
    let cookie = app.signed_in(email, PASSWORD).await;
    let (api_secret, _) = app.enable_totp(&cookie).await;

    let mut seeds: Vec<(UserId, Vec<u8>)> = Vec::new();
    let mut old_blob = None;
    for i in 0..24 {
        let seed = random::<20>().to_vec();
        let (user, blob) = with_seed(&*store, &node_a, now(), &format!("load{i}@example.com"), &seed).await;
        assert_eq!(kek_version_of(&blob).unwrap(), 1);
        old_blob.get_or_insert((user, blob));
        seeds.push((user, seed));
    }
    let (old_user, old_blob) = old_blob.unwrap();
    let seeds = Arc::new(seeds);
    let load = Arc::new(Load::default());
    let mut tasks = Vec::new();

    // Readers on node A: read the seed from the database and open it, like a sign-in does.
    for reader in 0..4 {
        let (store, node, seeds, load) = (store.clone(), node_a.clone(), seeds.clone(), load.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = reader;
            while !load.stop.load(Ordering::SeqCst) {
                let (user, seed) = &seeds[i % seeds.len()];
                i += 1;
                let blob = store.user_by_id(*user).await.unwrap().unwrap().totp_seed_sealed.unwrap();
                match node.open_with_reload(&binding(*user), &blob).await {
                    Ok(plain) if plain.as_slice() == seed.as_slice() => {
                        load.opens.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(_) => load.fail(format!("reader: wrong plaintext for {user}")),
                    Err(err) => load.fail(format!("reader: {err} (blob names {:?})", kek_version_of(&blob))),
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    // Writers on both nodes: seal new seeds (setups) and open them back on node A.
    for (name, node) in [("a", node_a.clone()), ("b", node_b.clone())] {
        let mut users = Vec::new();
        for i in 0..3 {
            users.push(new_user(&*store, now(), &format!("writer-{name}{i}@example.com")).await);
        }
        let (store, reader, load, clock) = (store.clone(), node_a.clone(), load.clone(), app.clock.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0usize;
            while !load.stop.load(Ordering::SeqCst) {
                let user = users[i % users.len()];
                i += 1;
                let seed = random::<20>();
                let at = clock.now();
                match node.seal(&binding(user), &seed).await {
                    Ok(sealed) => {
                        let a = audit(user, "2fa.setup_started", at);
                        assert!(store.begin_totp_setup(user, &sealed, at, &a).await.unwrap());
                        load.seals.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(err) => {
                        load.fail(format!("writer {name}: seal: {err}"));
                        continue;
                    }
                }
                let blob = store.user_by_id(user).await.unwrap().unwrap().totp_pending.unwrap().0;
                match reader.open_with_reload(&binding(user), &blob).await {
                    Ok(plain) if plain.as_slice() == seed.as_slice() => {
                        load.opens.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(_) => load.fail(format!("writer {name}: wrong plaintext")),
                    Err(err) => load.fail(format!("writer {name}: open: {err}")),
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    let opens_now = || load.opens.load(Ordering::SeqCst);
    let more_opens = async |since: u64| wait_until("the load goes on", async || opens_now() > since + 20).await;
    more_opens(0).await;

    // Node B rotates: version 2 is active there at once; node A does not know it yet.
    let started = now();
    assert_eq!(node_b.rotate().await.unwrap(), 2);
    assert_eq!(app.vault.active_version(), Some(1), "node A has not reloaded yet");
    more_opens(opens_now()).await;

    // The rewrap job runs on node B under the load; node A meets seeds under version 2 and reloads.
    let first = node_b.finish_rotations().await.unwrap();
    assert!(first.rewrapped >= 24, "{first:?}");
    assert_eq!((first.failed, first.destroyed.len()), (0, 0), "{first:?}");
    assert_eq!(first.waiting.iter().map(|w| w.version).collect::<Vec<_>>(), [1]);
    assert_eq!(first.waiting[0].destroy_after, started.plus(refresh * 3), "three refresh intervals of grace");
    wait_until("node A reloads on meeting version 2", async || app.vault.active_version() == Some(2)).await;
    more_opens(opens_now()).await;

    // Within the grace period nothing is destroyed, even with nothing left to rewrap.
    node_a.reload().await.unwrap(); // node A's periodic reload, due within one interval
    let second = node_b.finish_rotations().await.unwrap();
    assert!(second.destroyed.is_empty(), "{second:?}");
    assert!(app.vault.has_version(1), "version 1 still opens during the grace period");

    // The grace period passes: the next run destroys version 1 (on node A this time).
    app.clock.advance(refresh * 3);
    let mut destroyed = Vec::new();
    for _ in 0..3 {
        destroyed.extend(node_a.finish_rotations().await.unwrap().destroyed);
        if !destroyed.is_empty() {
            break;
        }
    }
    assert_eq!(destroyed, [1]);
    node_b.reload().await.unwrap();
    assert!(!app.vault.has_version(1) && !node_b.vault().has_version(1), "both nodes dropped the key");
    more_opens(opens_now()).await;

    load.stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    let failures = load.failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "{} failures, first: {:?}", failures.len(), failures.first());
    assert!(load.seals.load(Ordering::SeqCst) > 10, "the writers sealed throughout");

    // Afterwards no row names version 1, every blob's header agrees, and version 1 is gone.
    assert_eq!(store.count_blobs_with_kek(1).await.unwrap(), 0);
    let blobs = store.sealed_blobs().await.unwrap();
    assert_eq!(blobs.len(), 24 + 6 + 1, "24 seeds, 6 writer setups, the API user's seed");
    for (recorded, blob) in &blobs {
        assert_eq!((*recorded, kek_version_of(blob).unwrap()), (2, 2));
    }
    let ring = store.vault_keks().await.unwrap();
    assert_eq!((ring[0].state, ring[0].wrapped.is_empty()), (KekState::Destroyed, true));
    assert_eq!(ring[1].state, KekState::Active);

    // What was sealed under version 1 no longer opens anywhere, not even on a freshly started node.
    let fresh = second_node(&app, refresh).await;
    for node in [&*node_a, &*node_b, &fresh] {
        assert_eq!(
            node.open_with_reload(&binding(old_user), &old_blob).await.unwrap_err(),
            VaultError::UnknownKeyVersion(1)
        );
    }
    // The rewrapped seed of the same user opens: only the data key's wrap changed.
    let now_blob = store.user_by_id(old_user).await.unwrap().unwrap().totp_seed_sealed.unwrap();
    assert_eq!(now_blob[80..], old_blob[80..], "the secret's ciphertext is carried over");
    assert!(fresh.open_with_reload(&binding(old_user), &now_blob).await.is_ok());

    // The API still signs in with an authenticator code, and no seed reached the log.
    app.next_totp_step();
    let code = app.totp_now(&api_secret);
    app.login_with_code(email, PASSWORD, &code).await;
    let logged = logs::captured();
    for (_, seed) in seeds.iter() {
        assert!(!logged.contains(&hex(seed)), "a seed in the log");
    }
}

/// `serve` reloads the ring every refresh interval and runs the rewrap job itself; the old key is
/// destroyed only once its grace period (on the app's clock) is over.
pub async fn serve_follows_and_finishes_a_rotation_in_the_background(backend: Backend) {
    logs::install();
    let refresh = Duration::from_millis(150);
    let app = spawn_app_with(backend, |config| config.vault_refresh = refresh).await;
    let store = app.store.clone();
    let mut users = Vec::new();
    for i in 0..5 {
        let seed = random::<20>();
        users.push(with_seed(&*store, &app.keys, app.clock.now(), &format!("bg{i}@example.com"), &seed).await);
    }
    // A bot whose webhook secret was rotated once: its current and previous secrets are sealed too.
    let cookie = app.signed_in("bg-bot@example.com", PASSWORD).await;
    let account = crate::deals::paper_account(&app, &cookie, serde_json::json!({"USDT": "1000"})).await;
    let body = crate::deals::bot_body(&account, serde_json::json!({"strategy_list": [{"strategy": "trading_view"}]}));
    let created = app.post("/api/v1/bots", body, Some(&cookie)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let bot = created.json["id"].as_str().unwrap().to_owned();
    let first_secret = created.json["webhook_secret"].as_str().unwrap().to_owned();
    let rotated =
        app.post(&format!("/api/v1/bots/{bot}/rotate_webhook_secret"), serde_json::json!({}), Some(&cookie)).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let secret = rotated.json["webhook_secret"].as_str().unwrap().to_owned();
    // A node that rotates and then does nothing else (`bulwark vault rotate` without --wait).
    let rotator = second_node(&app, Duration::from_secs(3600)).await;
    assert_eq!(rotator.rotate().await.unwrap(), 2);

    wait_until("the app reloads the ring on its own", async || app.vault.active_version() == Some(2)).await;
    wait_until("the app's rewrap job moves every seed", async || store.count_blobs_with_kek(1).await.unwrap() == 0)
        .await;
    // Refresh intervals pass in real time, but the app's clock stands still: still in the grace.
    tokio::time::sleep(refresh * 4).await;
    assert_eq!(store.vault_keks().await.unwrap()[0].state, KekState::DecryptOnly);
    assert!(app.vault.has_version(1));

    app.clock.advance(refresh * 3);
    wait_until("the app destroys version 1", async || {
        store.vault_keks().await.unwrap()[0].state == KekState::Destroyed
    })
    .await;
    wait_until("the app drops version 1 from memory", async || !app.vault.has_version(1)).await;
    let (user, old_blob) = &users[0];
    assert_eq!(
        app.keys.open_with_reload(&binding(*user), old_blob).await.unwrap_err(),
        VaultError::UnknownKeyVersion(1)
    );
    for (user, _) in &users {
        let blob = store.user_by_id(*user).await.unwrap().unwrap().totp_seed_sealed.unwrap();
        assert_eq!(kek_version_of(&blob).unwrap(), 2);
        assert!(app.keys.open_with_reload(&binding(*user), &blob).await.is_ok());
    }
    // The bot's sealed webhook secrets moved with the rest, and both still sign (WH-4).
    let secrets = store.webhook_secrets(bot.parse().unwrap()).await.unwrap().unwrap();
    for blob in [secrets.current_sealed.unwrap(), secrets.previous_sealed.unwrap()] {
        assert_eq!(kek_version_of(&blob).unwrap(), 2);
    }
    for (i, key) in [&secret, &first_secret].into_iter().enumerate() {
        let message = serde_json::json!({"message_type": "bot", "bot_id": bot, "pair": "USDT_BTC", "nonce": i});
        let body = message.to_string();
        let t = app.clock.now().as_unix_millis() / 1000;
        let header = webhook::signature::header_value(key.as_bytes(), t, body.as_bytes());
        let headers = [("content-type", "application/json"), ("bulwark-signature", header.as_str())];
        let reply = app.post_raw("/trade_signal/trading_view", body, &headers).await;
        assert_eq!(reply.status, 202, "signed with secret {i} after the rotation: {}", reply.text);
    }
}
