-- Accounts, sessions, single-use email tokens, throttles and the audit log.
-- Times are Unix milliseconds (BIGINT); hashes are 32-byte BYTEA values. No secret is stored in plain.

CREATE TABLE users (
    id                TEXT PRIMARY KEY NOT NULL,
    email             TEXT NOT NULL,
    email_canonical   TEXT NOT NULL UNIQUE,
    password_phc      TEXT NOT NULL,
    email_verified_at BIGINT,
    totp_enabled      BOOLEAN NOT NULL DEFAULT FALSE,
    hide_balances     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at        BIGINT NOT NULL
);

CREATE TABLE email_tokens (
    hash       BYTEA PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX email_tokens_user ON email_tokens (user_id);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY NOT NULL,
    token_hash   BYTEA NOT NULL UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    reauth_at    BIGINT,
    ip           TEXT NOT NULL,
    user_agent   TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE throttles (
    key             TEXT PRIMARY KEY NOT NULL,
    failures        BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL,
    blocked_until   BIGINT NOT NULL DEFAULT 0
);

-- Kept when a user is deleted: the log outlives the account.
-- `seq` orders events that share a millisecond in the order they were written.
CREATE TABLE audit_log (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    user_id    TEXT,
    at         BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    ip         TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    detail     TEXT NOT NULL
);
CREATE INDEX audit_log_user_at ON audit_log (user_id, at);
