-- Webhook signals (spec/webhooks.md): every accepted signal is recorded before it is answered 202,
-- so it survives a crash and is acted on once, by the node leasing its bot, when it is due.
--
-- Times are Unix milliseconds. The pair is written the 3Commas way (`USDT_BTC`; NULL: the signal
-- names none); `params` is the action's parameters as JSON, opaque to the store. The names of
-- actions and states belong to the domain and are checked when read (an unknown one is a corrupt
-- row), so a new one needs no table rebuild. `outcome` and `handled_at` are set when the signal
-- leaves `pending`.
--
-- `created_seq` orders rows created in the same millisecond in the order they were written
-- (dev-notes rule 5): one more than the largest so far, assigned at insert.
CREATE TABLE signals (
    id          TEXT PRIMARY KEY NOT NULL,
    bot_id      TEXT NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    action      TEXT NOT NULL,
    pair        TEXT,
    params      TEXT NOT NULL,
    source_ip   TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    due_at      INTEGER NOT NULL,
    state       TEXT NOT NULL,
    outcome     TEXT,
    handled_at  INTEGER,
    created_seq INTEGER NOT NULL
) STRICT;
-- The pending signals of a bot that are due (`due_signals`), a bot's latest signals (`signals`),
-- the pending signals past a time whatever their bot (`expire_signals`), and the largest
-- `created_seq` (read at every insert).
CREATE INDEX signals_pending_bot_due ON signals (bot_id, due_at) WHERE state = 'pending';
CREATE INDEX signals_bot_received ON signals (bot_id, received_at, created_seq);
CREATE INDEX signals_pending_due ON signals (due_at) WHERE state = 'pending';
CREATE INDEX signals_created_seq ON signals (created_seq);

-- The bodies a bot accepted lately, by their `dedupe_key` (SHA-256 over the bot id and the raw
-- body): an identical body inside the window is refused. One row per body and bot, holding the
-- latest signal accepted with it; rows older than the window are purged by housekeeping.
CREATE TABLE signal_dedupe (
    bot_id      TEXT NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    dedupe_key  BLOB NOT NULL,
    signal_id   TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (bot_id, dedupe_key)
) STRICT;
CREATE INDEX signal_dedupe_received ON signal_dedupe (received_at);
