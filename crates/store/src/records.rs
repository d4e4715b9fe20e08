//! The records the store reads and writes.

use std::time::Duration;

use domain::{AuditId, BackupCodeId, BotId, DealStatus, Email, ExchangeAccountId, SessionId, Timestamp, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: UserId,
    pub email: Email,
    /// The PHC string of the password hash.
    pub password_phc: String,
    pub email_verified_at: Option<Timestamp>,
    pub totp_enabled: bool,
    /// The TOTP seed as a vault blob, present while two-factor sign-in is on.
    pub totp_seed_sealed: Option<Vec<u8>>,
    /// The last TOTP time step accepted: a code of that step or an earlier one is refused (AU-6).
    pub totp_last_step: Option<u64>,
    /// A setup awaiting confirmation: the sealed seed and when it was started.
    pub totp_pending: Option<(Vec<u8>, Timestamp)>,
    pub hide_balances: bool,
    /// Shown in every mail Bulwark sends the user, so a phishing copy can be told apart.
    pub anti_phishing_code: Option<String>,
    /// The install's operator: the first account created on it (at most one has the flag).
    pub operator: bool,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: UserId,
    pub email: Email,
    pub password_phc: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    VerifyEmail,
    ResetPassword,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::VerifyEmail => "verify_email",
            TokenPurpose::ResetPassword => "reset_password",
        }
    }
}

/// A single-use token sent by mail. Only the SHA-256 of the token is stored.
#[derive(Debug, Clone)]
pub struct NewEmailToken {
    pub hash: [u8; 32],
    pub user_id: UserId,
    pub purpose: TokenPurpose,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// The absolute end of the session, fixed at sign-in.
    pub expires_at: Timestamp,
    /// The last password (and second-factor) confirmation inside this session.
    pub reauth_at: Option<Timestamp>,
    pub ip: String,
    pub user_agent: String,
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: SessionId,
    pub token_hash: [u8; 32],
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub ip: String,
    pub user_agent: String,
}

/// Everything a successful sign-in writes, in one transaction.
#[derive(Debug, Clone)]
pub struct LoginWrite {
    pub session: NewSession,
    /// The token hash of the session the browser presented, which the new one replaces.
    pub replaces: Option<[u8; 32]>,
    /// A fresh hash when the stored one used outdated parameters.
    pub upgraded_password_phc: Option<String>,
    /// Throttle keys to clear (the account's failure count).
    pub clear_throttles: Vec<String>,
    /// The second factor this sign-in used, consumed in the same transaction.
    pub second_factor: Option<SecondFactorUse>,
    pub audit: AuditRecord,
}

/// A second factor being spent. Spending is atomic and happens at most once: a TOTP step only
/// if it is later than the last one accepted, a backup code only if it is unused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactorUse {
    TotpStep(u64),
    BackupCode(BackupCodeId),
}

/// A backup code as stored: its id and the Argon2id PHC string of the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupCodeRecord {
    pub id: BackupCodeId,
    pub phc: String,
}

/// Everything that turns two-factor sign-in on, in one transaction.
#[derive(Debug, Clone)]
pub struct EnableTotp {
    pub user: UserId,
    /// The pending blob the confirmation code was checked against; the write fails if the
    /// pending setup changed meanwhile.
    pub sealed_seed: Vec<u8>,
    /// The step the confirmation code matched (it cannot be used again to sign in).
    pub step: u64,
    pub backup_codes: Vec<BackupCodeRecord>,
    /// Every other session of the user ends (SE-1).
    pub keep_session: SessionId,
    pub now: Timestamp,
    pub audit: AuditRecord,
}

/// A change of preferences; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct PreferencesUpdate {
    pub hide_balances: Option<bool>,
    /// `Some(None)` clears the code.
    pub anti_phishing_code: Option<Option<String>>,
}

/// One audit-log row. `detail` is a JSON object with event-specific fields; never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: AuditId,
    pub user_id: Option<UserId>,
    pub at: Timestamp,
    /// A dotted event name such as `auth.login_succeeded`.
    pub kind: String,
    pub ip: String,
    pub user_agent: String,
    pub detail: String,
}

/// How many failures a throttle key may collect before it is blocked, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleRule {
    /// Failures per block step.
    pub limit: u32,
    /// The first block; each further `limit` failures double it.
    pub base_block: Duration,
    pub max_block: Duration,
    /// Failures older than this are forgotten: the count starts again.
    pub forget_after: Duration,
    /// After this many consecutive failures the key stays blocked until it is cleared (for an
    /// account: a password reset or a successful sign-in is the only way back).
    pub lock_after: Option<u32>,
}

/// A requested change of a user's email, confirmed by a link mailed to the new address. Only the
/// SHA-256 of the token is stored.
#[derive(Debug, Clone)]
pub struct NewEmailChange {
    pub hash: [u8; 32],
    pub user_id: UserId,
    pub new_email: Email,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// What confirming an email change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailChangeOutcome {
    /// The address changed (and counts as verified); the user's other sessions ended.
    Changed { user: UserId, old_email: Email, new_email: Email },
    /// The token is unknown, used or expired; nothing changed.
    InvalidToken,
    /// Another account has the new address by now; nothing changed, the token stays unused.
    Taken { user: UserId, new_email: Email },
}

/// The state of a key-encryption key of the vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KekState {
    /// The one key new secrets are sealed under.
    Active,
    /// Still opens secrets that name it; rotation moves them off it.
    DecryptOnly,
    /// No secret names it any more; its wrapped key is gone.
    Destroyed,
}

impl KekState {
    pub fn as_str(self) -> &'static str {
        match self {
            KekState::Active => "active",
            KekState::DecryptOnly => "decrypt_only",
            KekState::Destroyed => "destroyed",
        }
    }

    pub fn parse(raw: &str) -> Option<KekState> {
        Some(match raw {
            "active" => KekState::Active,
            "decrypt_only" => KekState::DecryptOnly,
            "destroyed" => KekState::Destroyed,
            _ => return None,
        })
    }
}

/// A key-encryption key as stored: wrapped by the root key (which is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KekRecord {
    pub version: u32,
    /// Empty once destroyed.
    pub wrapped: Vec<u8>,
    pub state: KekState,
    pub created_at: Timestamp,
    /// When a rotation made it decrypt-only; the destroy grace period counts from here.
    pub demoted_at: Option<Timestamp>,
    pub destroyed_at: Option<Timestamp>,
}

/// A vault blob on its way into the database, with the KEK version its header names. The store
/// keeps the version in an integer column beside the blob, so SQL can count and refuse by version
/// (rotation) without parsing blobs. The caller reads the version from the blob
/// (`vault::envelope::kek_version_of`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBlob {
    pub kek_version: u32,
    pub bytes: Vec<u8>,
}

/// Every column that holds vault blobs. Rotation (rewrap, counts, the destroy check) goes over
/// all of them: a new sealed column is one variant here (and in `ALL`) and one arm in
/// `store-sql`'s registry (`sealed_spec`), which says where the row keeps what the blob's binding
/// is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SealedColumn {
    /// `users.totp_seed_sealed`: the seed of an enabled second factor.
    TotpSeed,
    /// `users.totp_pending_sealed`: a setup awaiting its confirming code.
    TotpPending,
    /// `exchange_accounts.secret_sealed`: an exchange API secret or Ed25519 private key.
    ExchangeSecret,
    /// `bots.webhook_secret_sealed`: a bot's current webhook secret, the key of its signed
    /// requests (WH-4).
    WebhookSecret,
    /// `bots.previous_webhook_secret_sealed`: the secret the last rotation replaced, a signing key
    /// until its grace period ends.
    PreviousWebhookSecret,
}

impl SealedColumn {
    pub const ALL: [SealedColumn; 5] = [
        SealedColumn::TotpSeed,
        SealedColumn::TotpPending,
        SealedColumn::ExchangeSecret,
        SealedColumn::WebhookSecret,
        SealedColumn::PreviousWebhookSecret,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SealedColumn::TotpSeed => "totp_seed",
            SealedColumn::TotpPending => "totp_pending",
            SealedColumn::ExchangeSecret => "exchange_secret",
            SealedColumn::WebhookSecret => "webhook_secret",
            SealedColumn::PreviousWebhookSecret => "previous_webhook_secret",
        }
    }
}

/// Where one sealed secret lives, with what its binding is built from: enough to rewrap it (the
/// vault needs the same binding to open it) and to write it back to the same place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedRef {
    pub column: SealedColumn,
    /// The primary key of the row (the binding's credential id): the user id for a TOTP seed, the
    /// exchange account id for an exchange secret.
    pub row_id: String,
    /// The owner the secret is bound to.
    pub user_id: UserId,
    /// The binding's purpose, by name (`totp_seed`, `exchange_api_secret`, ...: the vault's
    /// `SecretPurpose::as_str`); from the row when one column holds several kinds of secret.
    pub purpose: String,
    /// The venue (`binance`); empty for secrets that belong to none.
    pub venue: String,
    /// SHA-256 of the public API key; zeros when there is none.
    pub api_key_fingerprint: [u8; 32],
}

/// A sealed secret as found: where it is and the blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedEntry {
    pub at: SealedRef,
    pub blob: Vec<u8>,
}

/// What an exchange key may do, as last checked (the parts Bulwark decides on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoredKeyPermissions {
    pub spot_trading: bool,
    pub withdrawals: bool,
    /// Internal or universal transfer.
    pub transfers: bool,
    pub ip_restricted: bool,
}

/// Whether an exchange account may trade. A check that finds a forbidden permission, or a key the
/// venue rejects, pauses it; a later clean check makes it active again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeAccountStatus {
    Active,
    Paused,
}

impl ExchangeAccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeAccountStatus::Active => "active",
            ExchangeAccountStatus::Paused => "paused",
        }
    }

    pub fn parse(raw: &str) -> Option<ExchangeAccountStatus> {
        match raw {
            "active" => Some(ExchangeAccountStatus::Active),
            "paused" => Some(ExchangeAccountStatus::Paused),
            _ => None,
        }
    }
}

/// A key that passed its first check, about to be stored. Its last check is its creation.
#[derive(Debug, Clone)]
pub struct NewExchangeAccount {
    pub id: ExchangeAccountId,
    pub user_id: UserId,
    pub exchange: String,
    pub name: String,
    /// The public API key (sent in a header with every request; shown only as its last four).
    pub api_key: String,
    /// SHA-256 of `api_key`; unique across all users.
    pub api_key_fingerprint: [u8; 32],
    /// `hmac` or `ed25519`.
    pub key_kind: String,
    pub secret_sealed: SealedBlob,
    pub permissions: StoredKeyPermissions,
    pub ip_restriction_waived: bool,
    pub created_at: Timestamp,
}

/// A stored exchange account. `secret_sealed` is a vault blob; the plaintext is never here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeAccountRecord {
    pub id: ExchangeAccountId,
    pub user_id: UserId,
    pub exchange: String,
    pub name: String,
    pub api_key: String,
    pub api_key_fingerprint: [u8; 32],
    pub key_kind: String,
    pub secret_sealed: Vec<u8>,
    pub permissions: StoredKeyPermissions,
    pub ip_restriction_waived: bool,
    pub status: ExchangeAccountStatus,
    /// Why the account is paused: a refusal code of `spec/api.md`, or `key_rejected`.
    pub status_reason: Option<String>,
    pub last_checked_at: Timestamp,
    pub created_at: Timestamp,
}

/// The result of asking the venue again what a key may do.
#[derive(Debug, Clone)]
pub struct KeyCheck {
    pub account: ExchangeAccountId,
    pub permissions: StoredKeyPermissions,
    pub status: ExchangeAccountStatus,
    pub status_reason: Option<String>,
    pub at: Timestamp,
}

/// Which of a user's deals to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DealFilter {
    /// Only this bot's deals.
    pub bot_id: Option<BotId>,
    /// Only deals in this status.
    pub status: Option<DealStatus>,
    /// At most this many, newest first.
    pub limit: u32,
}

/// What the kill switch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KillSwitchOutcome {
    /// Bots that were enabled and are now disabled.
    pub bots_disabled: u64,
    /// Sessions ended (every one of the user's but the one kept).
    pub sessions_ended: u64,
}

/// A bot's webhook secrets as stored: the SHA-256 of each (what a secret carried in a body is
/// compared with) and each sealed under the vault (the HMAC key of a signed request, WH-4). The
/// secrets are never stored in the clear. `Default` is a bot with no secret at all (all revoked).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebhookSecrets {
    /// `None` once revoked.
    pub current: Option<[u8; 32]>,
    /// The secret replaced by the last rotation, accepted until `previous_until`.
    pub previous: Option<[u8; 32]>,
    pub previous_until: Option<Timestamp>,
    /// The current secret, sealed (binding: purpose `webhook_secret`, the bot's id and user).
    /// `None` once revoked, and for a secret made before signed mode existed.
    pub current_sealed: Option<Vec<u8>>,
    /// The previous secret, sealed with the same binding; follows `previous`.
    pub previous_sealed: Option<Vec<u8>>,
}

/// A new webhook secret as it is stored: its SHA-256 and the secret sealed under the vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhookSecret {
    pub hash: [u8; 32],
    pub sealed: SealedBlob,
}

/// How a signal ended: written by `Store::finish_signal`, or by `Store::save_deal` together with
/// the deal the signal changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalOutcome {
    pub id: domain::SignalId,
    /// `Done`, `Refused` or `Expired` (never `Pending`).
    pub state: domain::SignalState,
    /// What came of it, in a sentence the signal log shows.
    pub outcome: String,
}

/// One signal of a batch for `Store::record_signals`: the arguments of `Store::record_signal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSignal {
    pub signal: domain::Signal,
    pub dedupe_key: [u8; 32],
    pub dedupe_since: domain::Timestamp,
    pub audit: AuditRecord,
}

/// Whether people who reach the server may create accounts (`POST /api/v1/auth/register`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// Anyone may register (the contract's default).
    Open,
    /// No new accounts; registration is refused before anything is looked up or sent.
    Closed,
}

impl Registration {
    pub fn as_str(self) -> &'static str {
        match self {
            Registration::Open => "open",
            Registration::Closed => "closed",
        }
    }

    /// `None` for anything but `open` and `closed`.
    pub fn parse(raw: &str) -> Option<Registration> {
        match raw {
            "open" => Some(Registration::Open),
            "closed" => Some(Registration::Closed),
            _ => None,
        }
    }
}

/// The install's settings, which only its operator changes; one set for every node of a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperatorSettings {
    pub registration: Registration,
}

impl Default for OperatorSettings {
    /// A fresh install: registration open.
    fn default() -> OperatorSettings {
        OperatorSettings { registration: Registration::Open }
    }
}

/// What `Store::set_operator_settings` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsWrite {
    /// The new settings and the audit row are stored.
    Written,
    /// Nothing written: the user is not the operator.
    NotOperator,
    /// Nothing written: the stored settings are no longer the ones expected (another change came
    /// first). Read them again and decide again.
    Stale,
}
