-- Key rotation without downtime (SEC-4, spec/security.md section 3 point 5).
--
-- Every sealed column gets an integer column beside it with the KEK version its blob's header
-- names, written with every write of the blob, so SQL can count and refuse by version without
-- parsing blobs. Before this migration the ring could only hold version 1 (nothing else ever
-- wrote a key), so every existing blob names version 1.
ALTER TABLE users ADD COLUMN totp_seed_kek BIGINT;
ALTER TABLE users ADD COLUMN totp_pending_kek BIGINT;
UPDATE users SET totp_seed_kek = 1 WHERE totp_seed_sealed IS NOT NULL;
UPDATE users SET totp_pending_kek = 1 WHERE totp_pending_sealed IS NOT NULL;
CREATE INDEX users_totp_seed_kek ON users (totp_seed_kek) WHERE totp_seed_kek IS NOT NULL;
CREATE INDEX users_totp_pending_kek ON users (totp_pending_kek) WHERE totp_pending_kek IS NOT NULL;

-- When a rotation made a key decrypt-only (the destroy grace period counts from here), and when it
-- was destroyed (its wrapped bytes are erased then: `wrapped` becomes empty).
ALTER TABLE vault_keks ADD COLUMN demoted_at BIGINT;
ALTER TABLE vault_keks ADD COLUMN destroyed_at BIGINT;
-- At most one active key at any moment.
CREATE UNIQUE INDEX vault_keks_one_active ON vault_keks (state) WHERE state = 'active';
