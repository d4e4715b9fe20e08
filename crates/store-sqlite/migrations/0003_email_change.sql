-- Email changes awaiting confirmation from the new address. Only the SHA-256 of the mailed token
-- is stored; the new address waits here until its owner opens the link.
CREATE TABLE email_changes (
    hash                BLOB PRIMARY KEY NOT NULL,
    user_id             TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    new_email           TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    expires_at          INTEGER NOT NULL,
    used_at             INTEGER
) STRICT;
CREATE INDEX email_changes_user ON email_changes (user_id);
