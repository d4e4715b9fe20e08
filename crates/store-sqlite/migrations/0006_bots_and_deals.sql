-- Bots, their deals, every order Bulwark sends (order intents) and each exchange account's trading
-- policy (spec/dca.md, spec/security.md TR-1).
--
-- Amounts are decimal TEXT (the normalized `Decimal` string, never a float); times are Unix
-- milliseconds. Pairs are written the 3Commas way (`USDT_BTC`); a bot's pairs and a policy's
-- allowlist join them with ','. Status-like columns with a fixed set of values (strategy, side,
-- booleans) are checked here; the names of deal statuses, close reasons, order roles, order kinds
-- and intent states belong to the domain and are checked when read (an unknown one is a corrupt
-- row), so a new one needs no table rebuild.
--
-- `created_seq` orders rows created in the same millisecond in the order they were written
-- (dev-notes rule 5): one more than the largest so far, assigned at insert.

-- A bot's webhook secret is kept only as its SHA-256 (NULL: revoked); after a rotation the
-- previous one is accepted until `previous_secret_until`. `lease_node`/`lease_until`: the node
-- running the bot and until when (NULL: nobody); a node writes a deal only while it holds the
-- lease. Statements that lock several bots lock them in id order (no deadlock between nodes).
CREATE TABLE bots (
    id                           TEXT PRIMARY KEY NOT NULL,
    user_id                      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    exchange_account_id          TEXT NOT NULL REFERENCES exchange_accounts (id) ON DELETE CASCADE,
    name                         TEXT NOT NULL,
    pairs                        TEXT NOT NULL,
    enabled                      INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    disabled_reason              TEXT,
    settings                     TEXT NOT NULL,
    webhook_secret_hash          BLOB,
    previous_webhook_secret_hash BLOB,
    previous_secret_until        INTEGER,
    lease_node                   TEXT,
    lease_until                  INTEGER,
    created_seq                  INTEGER NOT NULL,
    created_at                   INTEGER NOT NULL,
    updated_at                   INTEGER NOT NULL,
    CHECK ((lease_node IS NULL) = (lease_until IS NULL))
) STRICT;
CREATE INDEX bots_user ON bots (user_id);
CREATE INDEX bots_exchange_account ON bots (exchange_account_id);
CREATE INDEX bots_lease_node ON bots (lease_node) WHERE lease_node IS NOT NULL;
CREATE INDEX bots_created_seq ON bots (created_seq);

-- `settings` is the bot's settings the deal started with (JSON, opaque to the store).
CREATE TABLE deals (
    id                  TEXT PRIMARY KEY NOT NULL,
    bot_id              TEXT NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    user_id             TEXT NOT NULL,
    exchange_account_id TEXT NOT NULL,
    pair                TEXT NOT NULL,
    strategy            TEXT NOT NULL CHECK (strategy IN ('long', 'short')),
    status              TEXT NOT NULL,
    close_reason        TEXT,
    settings            TEXT NOT NULL,
    base_price          TEXT,
    next_seq            INTEGER NOT NULL CHECK (next_seq >= 0),
    stop_loss_since     INTEGER,
    profit_quote        TEXT,
    created_seq         INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    closed_at           INTEGER
) STRICT;
CREATE INDEX deals_user_created ON deals (user_id, created_at);
CREATE INDEX deals_bot_status ON deals (bot_id, status);
CREATE INDEX deals_created_seq ON deals (created_seq);

-- Every order Bulwark sends, from a deal or by hand (`deal_id` NULL), recorded before it is sent
-- under its client order id and updated with what the venue reports. The order guard counts them.
CREATE TABLE orders (
    client_order_id     TEXT PRIMARY KEY NOT NULL,
    user_id             TEXT NOT NULL,
    exchange_account_id TEXT NOT NULL REFERENCES exchange_accounts (id) ON DELETE CASCADE,
    deal_id             TEXT REFERENCES deals (id) ON DELETE CASCADE,
    pair                TEXT NOT NULL,
    seq                 INTEGER NOT NULL CHECK (seq >= 0),
    role                TEXT NOT NULL,
    safety_index        INTEGER NOT NULL CHECK (safety_index >= 0),
    side                TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    kind                TEXT NOT NULL,
    price               TEXT NOT NULL,
    quantity            TEXT,
    quote_amount        TEXT,
    state               TEXT NOT NULL,
    cancel_requested    INTEGER NOT NULL CHECK (cancel_requested IN (0, 1)),
    venue_order_id      TEXT,
    executed_qty        TEXT NOT NULL,
    executed_quote      TEXT NOT NULL,
    fee_base            TEXT NOT NULL,
    fee_quote           TEXT NOT NULL,
    error               TEXT,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
) STRICT;
CREATE INDEX orders_account_created ON orders (exchange_account_id, created_at);
CREATE INDEX orders_deal ON orders (deal_id);

-- What an exchange account may trade (TR-1). No row: the defaults apply.
CREATE TABLE trading_policies (
    exchange_account_id         TEXT PRIMARY KEY NOT NULL REFERENCES exchange_accounts (id) ON DELETE CASCADE,
    pair_allowlist              TEXT NOT NULL,
    max_order_notional          TEXT NOT NULL,
    max_daily_volume            TEXT NOT NULL,
    max_orders_per_minute       INTEGER NOT NULL CHECK (max_orders_per_minute >= 0),
    max_price_deviation_percent TEXT NOT NULL,
    min_quote_volume_24h        TEXT NOT NULL,
    updated_at                  INTEGER NOT NULL
) STRICT;
