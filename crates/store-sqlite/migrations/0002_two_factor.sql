-- Two-factor sign-in, backup codes, preferences and the vault's key ring.
-- TOTP seeds are stored only sealed by the vault (XChaCha20-Poly1305 under a data key wrapped by a
-- key-encryption key wrapped by the root key, bound to the user id); backup codes only as Argon2id
-- PHC strings.

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

-- The vault's key-encryption keys (spec/security.md section 3), each wrapped by the root key,
-- which never enters the database. Exactly one is active for writes; a rotation adds the next
-- version and retires the old one once no secret names it.
CREATE TABLE vault_keks (
    version    INTEGER PRIMARY KEY NOT NULL CHECK (version >= 1),
    wrapped    BLOB NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('active', 'decrypt_only', 'destroyed')),
    created_at INTEGER NOT NULL
) STRICT;
