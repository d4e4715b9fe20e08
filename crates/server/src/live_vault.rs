//! The node's vault, kept current with the key ring in the database, and key rotation (SEC-4,
//! `spec/security.md` section 3 point 5).
//!
//! A rotation happens on one node (or `bulwark vault rotate`): KEK version v+1 becomes active and v
//! decrypt-only. Every other node learns of it by reloading the ring every refresh interval, and
//! at once when it meets a blob naming a version its ring lacks ([`LiveVault::open_with_reload`]),
//! so no open fails while the nodes catch up. The rewrap job ([`LiveVault::finish_rotations`])
//! then moves every sealed secret's data key to the active KEK with a compare-and-swap, and destroys
//! a decrypt-only KEK once no secret names it and its grace period is over: by then every node has
//! reloaded, so none can still seal under it.
//!
//! The root key stays in memory (in the zeroizing [`RootKey`]) to unwrap new KEKs; a sealed node
//! has none and reloads nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use domain::{Clock, Timestamp};
use store::{KekRecord, KekState, SealedBlob, SealedRef, Store, StoreError};
use vault::envelope::{Binding, Kek, KekRing, SecretPurpose, kek_version_of};
use vault::{RootKey, Vault, VaultError};
use zeroize::Zeroizing;

/// How many sealed secrets the rewrap job reads and rewraps per round trip.
pub const REWRAP_BATCH: u32 = 100;

/// Why the ring could not be (re)loaded or changed.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    #[error("the vault is sealed: this node has no root key that opens the key ring")]
    Sealed,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the root key does not open the key ring (another key file?): {0}")]
    Vault(#[from] VaultError),
    #[error("the key ring has no active key-encryption key")]
    NoActiveKey,
    #[error("another rotation won: version {0} is taken, or the ring moved on meanwhile")]
    RotationLost(u32),
}

/// Builds the ring from the stored KEKs: every version not destroyed, unwrapped by `root`.
///
/// # Errors
/// `RingError::Vault` when `root` is not the key that wrapped them, `NoActiveKey` when none is
/// active.
pub fn ring_from_records(root: &RootKey, keks: &[KekRecord]) -> Result<KekRing, RingError> {
    let live = keks
        .iter()
        .filter(|k| k.state != KekState::Destroyed)
        .map(|k| Kek::unwrap(root, k.version, &k.wrapped))
        .collect::<Result<Vec<_>, _>>()?;
    let active = keks.iter().find(|k| k.state == KekState::Active).ok_or(RingError::NoActiveKey)?;
    KekRing::new(active.version, live).map_err(|_| RingError::NoActiveKey)
}

/// The binding a sealed secret was sealed with, rebuilt from where it is stored: the rewrap job
/// needs it to open the data key. The credential id is the row's key (the user id for a TOTP
/// seed, as [`Binding::totp_seed`] has it; the account id for an exchange secret). `None` for a
/// purpose this build does not know.
pub fn binding_for(at: &SealedRef) -> Option<Binding> {
    Some(Binding {
        purpose: SecretPurpose::parse(&at.purpose)?,
        user_id: at.user_id.to_string(),
        credential_id: at.row_id.clone(),
        exchange: at.venue.clone(),
        api_key_fingerprint: at.api_key_fingerprint,
    })
}

/// What [`LiveVault::finish_rotations`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationReport {
    /// The active version secrets were moved to.
    pub active: u32,
    /// Secrets whose data key now sits under the active KEK.
    pub rewrapped: u64,
    /// Secrets that changed between reading and writing (the user replaced or removed them, or
    /// another node rewrapped them first); left as they are.
    pub changed: u64,
    /// Secrets that would not open: corrupt or tampered. Their version cannot be destroyed.
    pub failed: u64,
    /// Versions destroyed by this run.
    pub destroyed: Vec<u32>,
    /// Decrypt-only versions still standing.
    pub waiting: Vec<Waiting>,
}

/// A decrypt-only KEK not destroyed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub version: u32,
    /// Sealed secrets still naming it.
    pub remaining: u64,
    /// When its grace period ends.
    pub destroy_after: Timestamp,
}

/// Why sealing or opening through the live vault failed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("the key ring could not be refreshed before sealing: {0}")]
    Reload(#[from] RingError),
}

/// The vault of a running node: its ring is reloaded from the database every refresh interval and
/// whenever a blob names a version the ring lacks.
pub struct LiveVault {
    vault: Arc<Vault>,
    root: Option<RootKey>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    refresh: Duration,
    /// Reloads run one at a time.
    reload_lock: tokio::sync::Mutex<()>,
    /// Reloads started so far, and the number of the last one that finished (it loaded the ring
    /// as the database had it when it started).
    started: AtomicU64,
    finished: AtomicU64,
    /// When the last successful reload started.
    loaded_at: std::sync::Mutex<tokio::time::Instant>,
}

impl std::fmt::Debug for LiveVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveVault")
            .field("vault", &self.vault)
            .field("root", &self.root)
            .field("refresh", &self.refresh)
            .finish_non_exhaustive()
    }
}

impl LiveVault {
    /// Unseals with `root`: the ring as the database holds it.
    ///
    /// # Errors
    /// `RingError::Vault` when `root` does not open the ring, `NoActiveKey` when there is none,
    /// `Store` when the database cannot be read.
    pub async fn load(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        root: RootKey,
        refresh: Duration,
    ) -> Result<LiveVault, RingError> {
        let started = tokio::time::Instant::now();
        let ring = ring_from_records(&root, &store.vault_keks().await?)?;
        Ok(LiveVault {
            vault: Arc::new(Vault::unsealed(ring)),
            root: Some(root),
            store,
            clock,
            refresh,
            reload_lock: tokio::sync::Mutex::new(()),
            started: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            loaded_at: std::sync::Mutex::new(started),
        })
    }

    /// A sealed node: nothing can be sealed or opened, and nothing is reloaded.
    pub fn sealed(store: Arc<dyn Store>, clock: Arc<dyn Clock>, refresh: Duration) -> LiveVault {
        LiveVault {
            vault: Arc::new(Vault::sealed()),
            root: None,
            store,
            clock,
            refresh,
            reload_lock: tokio::sync::Mutex::new(()),
            started: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            loaded_at: std::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// The vault itself (its ring as last loaded).
    pub fn vault(&self) -> &Arc<Vault> {
        &self.vault
    }

    pub fn is_sealed(&self) -> bool {
        self.vault.is_sealed()
    }

    pub fn refresh_interval(&self) -> Duration {
        self.refresh
    }

    /// How long a KEK stays decrypt-only at least before it may be destroyed: three refresh
    /// intervals. A node seals only with a ring loaded less than two intervals ago (see
    /// [`LiveVault::seal`]), so once the grace is over no node can still seal under the demoted
    /// version; the third interval absorbs write latency and clock differences between nodes.
    pub fn destroy_grace(&self) -> Duration {
        self.refresh.saturating_mul(3)
    }

    /// Reads the ring from the database and puts it in place. Returns the KEK records read.
    ///
    /// # Errors
    /// `RingError::Sealed` on a sealed node; otherwise the ring is kept as it was and the cause is
    /// returned (database unreachable, a KEK the root key does not open).
    pub async fn reload(&self) -> Result<Vec<KekRecord>, RingError> {
        let _one_at_a_time = self.reload_lock.lock().await;
        self.reload_locked().await
    }

    async fn reload_locked(&self) -> Result<Vec<KekRecord>, RingError> {
        let root = self.root.as_ref().ok_or(RingError::Sealed)?;
        let number = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        let started = tokio::time::Instant::now();
        let keks = self.store.vault_keks().await?;
        let ring = ring_from_records(root, &keks)?;
        let before = self.vault.active_version();
        self.vault.replace_ring(ring);
        self.finished.store(number, Ordering::SeqCst);
        *self.loaded_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = started;
        let active = self.vault.active_version();
        if before != active {
            tracing::info!(active_kek = ?active, previous = ?before, "vault: key ring reloaded with a new active key");
        }
        Ok(keks)
    }

    /// Reloads unless a reload that started after reload number `seen` has finished meanwhile
    /// (so many requests meeting the same new version cause one database read).
    async fn reload_since(&self, seen: u64) -> Result<(), RingError> {
        let _one_at_a_time = self.reload_lock.lock().await;
        if self.finished.load(Ordering::SeqCst) > seen {
            return Ok(());
        }
        self.reload_locked().await.map(|_| ())
    }

    /// Seals under the active KEK, with a ring loaded less than two refresh intervals ago (it is
    /// reloaded first if the periodic reload has fallen behind), and returns the blob with the
    /// version it names, as the store takes it.
    ///
    /// # Errors
    /// `SealError::Vault(VaultError::Sealed)` on a sealed node; `SealError::Reload` when the ring
    /// is stale and cannot be reloaded.
    pub async fn seal(&self, binding: &Binding, plaintext: &[u8]) -> Result<SealedBlob, SealError> {
        if self.root.is_some() {
            let age = self.loaded_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner).elapsed();
            if age > self.refresh.saturating_mul(2) {
                let seen = self.started.load(Ordering::SeqCst);
                self.reload_since(seen).await?;
            }
        }
        let bytes = self.vault.seal(binding, plaintext)?;
        Ok(SealedBlob { kek_version: kek_version_of(&bytes)?, bytes })
    }

    /// Opens `blob`; when it names a KEK version this node's ring lacks (another node rotated and
    /// sealed under the new version before this one reloaded), reloads the ring once and retries.
    ///
    /// # Errors
    /// What [`Vault::open`] reports after the retry: `UnknownKeyVersion` for a destroyed version.
    pub async fn open_with_reload(&self, binding: &Binding, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let seen = self.started.load(Ordering::SeqCst);
        match self.vault.open(binding, blob) {
            Err(VaultError::UnknownKeyVersion(version)) if self.root.is_some() => {
                if let Err(err) = self.reload_since(seen).await {
                    tracing::warn!(error = %err, kek = version, "vault: reloading the key ring for an unknown version failed");
                }
                self.vault.open(binding, blob)
            }
            other => other,
        }
    }

    /// Starts a rotation: generates KEK version (highest + 1), wraps it with the root key and
    /// stores it as the active key, the previous one becoming decrypt-only. This node's ring is
    /// reloaded at once; other nodes follow within a refresh interval. Returns the new version.
    ///
    /// # Errors
    /// `RingError::RotationLost` when another rotation won at the same moment (nothing changed),
    /// `Sealed`, or what reading and writing the ring reported.
    pub async fn rotate(&self) -> Result<u32, RingError> {
        let root = self.root.as_ref().ok_or(RingError::Sealed)?;
        let keks = self.store.vault_keks().await?;
        // The root key must open the ring it is about to extend.
        ring_from_records(root, &keks)?;
        let version = keks.iter().map(|k| k.version).max().unwrap_or(0) + 1;
        let kek = Kek::generate(version)?;
        if !self.store.rotate_kek(version, &kek.wrap(root)?, self.clock.now()).await? {
            return Err(RingError::RotationLost(version));
        }
        tracing::info!(active_kek = version, "vault: rotation started; the previous key is decrypt-only");
        if let Err(err) = self.reload().await {
            // The rotation stands; this node catches up at its next reload.
            tracing::warn!(error = %err, "vault: reloading the key ring after the rotation failed");
        }
        Ok(version)
    }

    /// The rewrap job: for every decrypt-only KEK, rewraps the data key of each secret naming it
    /// under the active KEK (batches of [`REWRAP_BATCH`], compare-and-swap, so a secret changed
    /// meanwhile is never overwritten), then destroys the version when no secret names it any
    /// more, its grace period ([`LiveVault::destroy_grace`]) is over and this run moved nothing off
    /// it (so the last swap is at least a run old). Idempotent and resumable:
    /// a crash loses nothing, and two nodes running it at once only duplicate work. Logs counts,
    /// never a secret.
    ///
    /// # Errors
    /// `RingError::Sealed`, or a database error (the work done so far stays done).
    pub async fn finish_rotations(&self) -> Result<RotationReport, RingError> {
        let keks = self.reload().await?;
        let active = self.vault.active_version().ok_or(RingError::Sealed)?;
        let mut report = RotationReport { active, ..RotationReport::default() };
        let grace = self.destroy_grace();
        for kek in keks.iter().filter(|k| k.state == KekState::DecryptOnly && k.version != active) {
            let moved = self.rewrap_version(kek.version, &mut report).await?;
            let remaining = self.store.count_blobs_with_kek(kek.version).await?;
            let demoted_at = kek.demoted_at.unwrap_or(kek.created_at);
            let destroy_after = demoted_at.plus(grace);
            let now = self.clock.now();
            // Not in the run that moved the last secrets: a request that read one of them just
            // before the swap still opens it with the old key, which stays until the next run.
            if remaining == 0
                && moved == 0
                && now >= destroy_after
                && self.store.destroy_kek(kek.version, now, grace).await?
            {
                tracing::info!(kek = kek.version, "vault: key-encryption key destroyed; nothing names it any more");
                report.destroyed.push(kek.version);
            } else {
                report.waiting.push(Waiting { version: kek.version, remaining, destroy_after });
            }
        }
        if !report.destroyed.is_empty() {
            // Drop the destroyed keys from this node's memory now, not at the next refresh.
            self.reload().await?;
        }
        Ok(report)
    }

    /// Rewraps everything naming `version`; returns how many secrets moved (rewrapped, or found
    /// changed).
    async fn rewrap_version(&self, version: u32, report: &mut RotationReport) -> Result<u64, RingError> {
        let (mut rewrapped, mut changed, mut failed) = (0u64, 0u64, 0u64);
        loop {
            let batch = self.store.sealed_blobs_with_kek(version, REWRAP_BATCH).await?;
            if batch.is_empty() {
                break;
            }
            let mut moved = false;
            for entry in batch {
                let Some(binding) = binding_for(&entry.at) else {
                    tracing::warn!(kek = version, column = entry.at.column.as_str(), row = %entry.at.row_id, purpose = %entry.at.purpose, "vault: a sealed secret has a purpose this build does not know; it keeps its version");
                    failed += 1;
                    continue;
                };
                let new = match self.vault.rewrap(&binding, &entry.blob) {
                    Ok(bytes) => bytes,
                    Err(err) => {
                        // Column and row only: the blob and its binding stay out of the log.
                        tracing::warn!(kek = version, column = entry.at.column.as_str(), row = %entry.at.row_id, error = %err, "vault: a sealed secret does not open; it keeps its version");
                        failed += 1;
                        continue;
                    }
                };
                let new_version = kek_version_of(&new)?;
                if new_version == version {
                    // The ring's active version is this one: nothing to move to (a newer
                    // rotation is not loaded yet); the next run finishes.
                    failed += 1;
                    continue;
                }
                let new = SealedBlob { kek_version: new_version, bytes: new };
                if self.store.replace_sealed_blob(&entry.at, &entry.blob, &new).await? {
                    rewrapped += 1;
                } else {
                    changed += 1;
                }
                moved = true;
            }
            // A batch of nothing but secrets that do not open would come back forever.
            if !moved {
                break;
            }
        }
        if rewrapped + changed + failed > 0 {
            tracing::info!(
                kek = version,
                rewrapped,
                changed,
                failed,
                "vault: rewrapped sealed secrets off a decrypt-only key"
            );
        }
        report.rewrapped += rewrapped;
        report.changed += changed;
        report.failed += failed;
        Ok(rewrapped + changed)
    }

    /// Runs until the process ends: every refresh interval, reloads the ring and, while a
    /// rotation is unfinished (a decrypt-only version exists), runs [`LiveVault::finish_rotations`].
    /// A sealed node returns at once.
    pub async fn run_refresh(self: Arc<Self>) {
        if self.root.is_none() {
            return;
        }
        let mut tick = tokio::time::interval(self.refresh);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            match self.reload().await {
                Ok(keks) if keks.iter().any(|k| k.state == KekState::DecryptOnly) => {
                    if let Err(err) = self.finish_rotations().await {
                        tracing::warn!(error = %err, "vault: the rewrap job failed; it runs again at the next refresh");
                    }
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "vault: reloading the key ring failed; keeping the one loaded")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use domain::UserId;
    use store::{SealedColumn, SealedRef};
    use vault::envelope::{Binding, SecretPurpose};

    use super::binding_for;

    #[test]
    fn the_rebuilt_binding_is_the_one_sealing_used() {
        let user = UserId::from_random_bytes([7; 16]);
        let totp = SealedRef {
            column: SealedColumn::TotpSeed,
            row_id: user.to_string(),
            user_id: user,
            purpose: "totp_seed".to_owned(),
            venue: String::new(),
            api_key_fingerprint: [0; 32],
        };
        assert_eq!(binding_for(&totp), Some(Binding::totp_seed(&user.to_string())));
        let exchange = SealedRef {
            purpose: "exchange_api_secret".to_owned(),
            row_id: "acct-1".to_owned(),
            venue: "binance".to_owned(),
            api_key_fingerprint: [9; 32],
            ..totp.clone()
        };
        let binding = binding_for(&exchange).unwrap();
        assert_eq!(binding.purpose, SecretPurpose::ExchangeApiSecret);
        assert_eq!((binding.credential_id.as_str(), binding.exchange.as_str()), ("acct-1", "binance"));
        assert_eq!(binding.api_key_fingerprint, [9; 32]);
        assert_eq!(binding_for(&SealedRef { purpose: "unknown".to_owned(), ..totp }), None);
    }
}
