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
    api_key_fingerprint   BLOB NOT NULL UNIQUE,
    key_kind              TEXT NOT NULL CHECK (key_kind IN ('hmac', 'ed25519')),
    secret_sealed         BLOB NOT NULL,
    secret_kek            INTEGER NOT NULL,
    perm_spot_trading     INTEGER NOT NULL CHECK (perm_spot_trading IN (0, 1)),
    perm_withdrawals      INTEGER NOT NULL CHECK (perm_withdrawals IN (0, 1)),
    perm_transfers        INTEGER NOT NULL CHECK (perm_transfers IN (0, 1)),
    perm_ip_restricted    INTEGER NOT NULL CHECK (perm_ip_restricted IN (0, 1)),
    ip_restriction_waived INTEGER NOT NULL CHECK (ip_restriction_waived IN (0, 1)),
    status                TEXT NOT NULL CHECK (status IN ('active', 'paused')),
    status_reason         TEXT,
    last_checked_at       INTEGER,
    created_at            INTEGER NOT NULL
) STRICT;
CREATE INDEX exchange_accounts_user ON exchange_accounts (user_id);
CREATE INDEX exchange_accounts_kek ON exchange_accounts (secret_kek);
CREATE INDEX exchange_accounts_checked ON exchange_accounts (last_checked_at);
