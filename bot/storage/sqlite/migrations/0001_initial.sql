-- Guild settings, the credit ledger, reservations and jobs.

CREATE TABLE guilds (
    guild_id      INTEGER PRIMARY KEY,
    allowance     INTEGER NOT NULL,              -- credits per period
    period        TEXT    NOT NULL,              -- daily | weekly | monthly
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
);

-- Every credit movement. A guild's balance in a period is its allowance plus the sum of
-- `amount` over that period's rows: reserve is negative, refund gives the same back,
-- charge is 0 (it turns a reservation into spend), grant and reset are positive.
CREATE TABLE ledger (
    id             INTEGER PRIMARY KEY,
    guild_id       INTEGER NOT NULL,
    period_key     TEXT    NOT NULL,
    kind           TEXT    NOT NULL CHECK (kind IN ('reserve', 'charge', 'refund', 'grant', 'reset')),
    amount         INTEGER NOT NULL,
    user_id        INTEGER,                       -- whom the movement concerns
    actor_id       INTEGER,                       -- who caused it (a moderator for grants)
    reservation_id INTEGER REFERENCES reservations(id),
    job_id         INTEGER,
    reason         TEXT,
    created_at     TEXT    NOT NULL
);
CREATE INDEX ledger_guild_period ON ledger (guild_id, period_key);

CREATE TABLE reservations (
    id          INTEGER PRIMARY KEY,
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    period_key  TEXT    NOT NULL,
    amount      INTEGER NOT NULL CHECK (amount > 0),
    usd_micros  INTEGER NOT NULL DEFAULT 0,
    state       TEXT    NOT NULL CHECK (state IN ('held', 'charged', 'refunded')),
    created_at  TEXT    NOT NULL,
    settled_at  TEXT
);
CREATE INDEX reservations_held ON reservations (state) WHERE state = 'held';

CREATE TABLE jobs (
    id                INTEGER PRIMARY KEY,
    guild_id          INTEGER NOT NULL,
    channel_id        INTEGER NOT NULL,
    user_id           INTEGER NOT NULL,
    user_name         TEXT    NOT NULL DEFAULT '',
    request           TEXT    NOT NULL,          -- GenerationRequest as JSON
    provider          TEXT    NOT NULL,
    cost              INTEGER NOT NULL,
    reservation_id    INTEGER REFERENCES reservations(id),
    state             TEXT    NOT NULL,
    status_message_id INTEGER,
    result_message_id INTEGER,
    provider_handle   TEXT,                      -- ProviderHandle as JSON
    error             TEXT,                      -- user-safe reason of a failure
    extra             TEXT    NOT NULL DEFAULT '{}',
    created_at        TEXT    NOT NULL,
    updated_at        TEXT    NOT NULL,
    started_at        TEXT,
    finished_at       TEXT
);
CREATE INDEX jobs_open ON jobs (state) WHERE state NOT IN ('delivered', 'failed', 'cancelled');
CREATE INDEX jobs_guild_user ON jobs (guild_id, user_id, created_at);
CREATE INDEX jobs_status_message ON jobs (status_message_id);
CREATE INDEX jobs_result_message ON jobs (result_message_id);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
