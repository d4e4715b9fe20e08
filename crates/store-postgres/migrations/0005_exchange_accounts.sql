-- Exchange accounts: one API key at one venue (spec/security.md EX-1..5, SEC-1..6).
-- The public API key is kept as it is (it travels in a header with every request and is shown only
-- as its last four characters); the secret only as a vault blob bound to this row, with the KEK
-- version its header names beside it (see 0004). One key, one place: the fingerprint (SHA-256 of
-- the API key) is unique across all users.
CREATE TABLE exchange_accounts (
    id                    TEXT PRIMARY KEY NOT NULL,
    user_id               TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    exchange              TEXT NOT NULL,
    name                  TEXT NOT NULL,
    api_key               TEXT NOT NULL,
    api_key_fingerprint   BYTEA NOT NULL UNIQUE,
    key_kind              TEXT NOT NULL CHECK (key_kind IN ('hmac', 'ed25519')),
    secret_sealed         BYTEA NOT NULL,
    secret_kek            BIGINT NOT NULL,
    perm_spot_trading     BOOLEAN NOT NULL,
    perm_withdrawals      BOOLEAN NOT NULL,
    perm_transfers        BOOLEAN NOT NULL,
    perm_ip_restricted    BOOLEAN NOT NULL,
    ip_restriction_waived BOOLEAN NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('active', 'paused')),
    status_reason         TEXT,
    last_checked_at       BIGINT,
    created_at            BIGINT NOT NULL
);
CREATE INDEX exchange_accounts_user ON exchange_accounts (user_id);
CREATE INDEX exchange_accounts_kek ON exchange_accounts (secret_kek);
CREATE INDEX exchange_accounts_checked ON exchange_accounts (last_checked_at);
