-- Email changes awaiting confirmation from the new address. Only the SHA-256 of the mailed token
-- is stored; the new address waits here until its owner opens the link.
CREATE TABLE email_changes (
    hash                BYTEA PRIMARY KEY NOT NULL,
    user_id             TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    new_email           TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    expires_at          BIGINT NOT NULL,
    used_at             BIGINT
);
CREATE INDEX email_changes_user ON email_changes (user_id);
