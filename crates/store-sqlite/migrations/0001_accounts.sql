-- Accounts, sessions, single-use email tokens, throttles and the audit log.
-- Times are Unix milliseconds (INTEGER); hashes are 32-byte BLOBs. No secret is stored in plain.

CREATE TABLE users (
    id                TEXT PRIMARY KEY NOT NULL,
    email             TEXT NOT NULL,
    email_canonical   TEXT NOT NULL UNIQUE,
    password_phc      TEXT NOT NULL,
    email_verified_at INTEGER,
    totp_enabled      INTEGER NOT NULL DEFAULT 0 CHECK (totp_enabled IN (0, 1)),
    hide_balances     INTEGER NOT NULL DEFAULT 0 CHECK (hide_balances IN (0, 1)),
    created_at        INTEGER NOT NULL
) STRICT;

CREATE TABLE email_tokens (
    hash       BLOB PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) STRICT;
CREATE INDEX email_tokens_user ON email_tokens (user_id);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY NOT NULL,
    token_hash   BLOB NOT NULL UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    reauth_at    INTEGER,
    ip           TEXT NOT NULL,
    user_agent   TEXT NOT NULL
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE throttles (
    key             TEXT PRIMARY KEY NOT NULL,
    failures        INTEGER NOT NULL,
    last_failure_at INTEGER NOT NULL,
    blocked_until   INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Kept when a user is deleted: the log outlives the account.
-- `seq` orders events that share a millisecond in the order they were written.
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    user_id    TEXT,
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    ip         TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    detail     TEXT NOT NULL
) STRICT;
CREATE INDEX audit_log_user_at ON audit_log (user_id, at);
