-- Two-factor sign-in, backup codes, preferences and the root-key check.
-- TOTP seeds are stored only sealed by the vault (AES-256-GCM under the root key, bound to the
-- user id); backup codes only as Argon2id PHC strings.

ALTER TABLE users ADD COLUMN totp_seed_sealed BLOB;
-- The last TOTP time step accepted for this user: a code is accepted at most once (AU-6).
ALTER TABLE users ADD COLUMN totp_last_step INTEGER;
-- A setup that has not been confirmed with a code yet.
ALTER TABLE users ADD COLUMN totp_pending_sealed BLOB;
ALTER TABLE users ADD COLUMN totp_pending_at INTEGER;
ALTER TABLE users ADD COLUMN anti_phishing_code TEXT;

CREATE TABLE backup_codes (
    id         TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    phc        TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER
) STRICT;
CREATE INDEX backup_codes_user ON backup_codes (user_id);

-- The id (never the key) of the root key that seals this database's secrets: one row, written by
-- the first node that starts, so a node started with another key file refuses to start instead of
-- failing every sign-in. The vault's key ring (rotation) will extend this.
CREATE TABLE vault_root_key (
    id         INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    key_id     TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
