-- Safe defaults (issue 8): Bulwark ships with no account at all; the first account created on an
-- install is its operator, who holds the install's settings (`operator_settings`).
--
-- At most one operator, enforced here: of two first registrations at once (READ COMMITTED lets
-- both see an empty table), the second insert that claims the flag waits for the first and then
-- hits this index, and `create_user` retries it as an ordinary account.
ALTER TABLE users ADD COLUMN operator BOOLEAN NOT NULL DEFAULT FALSE;
CREATE UNIQUE INDEX users_one_operator ON users (operator) WHERE operator;
-- An install that already has accounts: its oldest account (by creation time, then id) is the
-- operator. Accounts are never deleted, so that is the account that was first.
UPDATE users SET operator = TRUE WHERE id = (SELECT id FROM users ORDER BY created_at, id LIMIT 1);

-- The install's settings: exactly one row, changed only by the operator. `registration` is
-- `open` (anyone who reaches the server may create an account: the contract's default) or
-- `closed` (no new accounts). Shared by every node on the database.
CREATE TABLE operator_settings (
    id           BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    registration TEXT NOT NULL CHECK (registration IN ('open', 'closed')),
    updated_at   BIGINT,
    updated_by   TEXT
);
INSERT INTO operator_settings (id, registration) VALUES (1, 'open');
