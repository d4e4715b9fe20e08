-- Signed webhooks (spec/security.md WH-4): a signed request carries the HMAC-SHA256 of its body
-- under the bot's webhook secret, so checking one needs the secret itself, not only its hash (0006).
-- Each secret is therefore also kept as a vault blob bound to the bot (purpose `webhook_secret`,
-- the bot's id and user), with the KEK version its header names beside it (invariant 9, see
-- 0004): the current one, and the one the last rotation replaced, which signs until
-- `previous_secret_until`. Both are NULL for a revoked secret and for a secret made before this
-- migration (such a bot can sign once its secret is rotated). A dump without the root key reveals
-- no secret.
ALTER TABLE bots ADD COLUMN webhook_secret_sealed BYTEA;
ALTER TABLE bots ADD COLUMN webhook_secret_kek BIGINT;
ALTER TABLE bots ADD COLUMN previous_webhook_secret_sealed BYTEA;
ALTER TABLE bots ADD COLUMN previous_webhook_secret_kek BIGINT;
CREATE INDEX bots_webhook_secret_kek ON bots (webhook_secret_kek) WHERE webhook_secret_kek IS NOT NULL;
CREATE INDEX bots_previous_webhook_secret_kek ON bots (previous_webhook_secret_kek)
    WHERE previous_webhook_secret_kek IS NOT NULL;
