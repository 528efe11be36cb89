-- Moderators' rules per guild, an audit trail of their changes, and ledger kinds for
-- rollover and adjustments.

-- When a period starts: reset_hour o'clock in time_zone (NULL: PIKABOT_TIMEZONE).
ALTER TABLE guilds ADD COLUMN reset_hour INTEGER NOT NULL DEFAULT 0;
ALTER TABLE guilds ADD COLUMN time_zone TEXT;
-- 1: unused credits of the previous period are carried over (at most one allowance).
ALTER TABLE guilds ADD COLUMN rollover INTEGER NOT NULL DEFAULT 0;
-- Per member: credits per period (NULL: no cap), seconds between jobs, jobs at once.
ALTER TABLE guilds ADD COLUMN member_cap INTEGER;
ALTER TABLE guilds ADD COLUMN cooldown_seconds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE guilds ADD COLUMN max_running INTEGER;
-- A role a member needs for /pika (NULL: everyone may use it).
ALTER TABLE guilds ADD COLUMN required_role_id INTEGER;
-- 1: /pika works only in channels marked age-restricted (NSFW).
ALTER TABLE guilds ADD COLUMN nsfw_only INTEGER NOT NULL DEFAULT 0;
-- Hard cap of the provider's price spent per UTC calendar month, in millionths of a USD.
ALTER TABLE guilds ADD COLUMN monthly_usd_cap_micros INTEGER;

-- Roles that raise the member cap to `cap` credits (kind 'raise') or lift it ('exempt').
CREATE TABLE guild_roles (
    guild_id  INTEGER NOT NULL,
    role_id   INTEGER NOT NULL,
    kind      TEXT    NOT NULL CHECK (kind IN ('raise', 'exempt')),
    cap       INTEGER,
    PRIMARY KEY (guild_id, role_id)
);

-- Channels where /pika works; none listed means every channel.
CREATE TABLE guild_channels (
    guild_id   INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    PRIMARY KEY (guild_id, channel_id)
);

-- Words (whole-word, case-insensitive) or regular expressions ('re:' prefix) refused in prompts.
CREATE TABLE guild_blocklist (
    guild_id INTEGER NOT NULL,
    pattern  TEXT    NOT NULL,
    PRIMARY KEY (guild_id, pattern)
);

-- Every change a moderator (or the operator, actor 0) makes to a guild's rules.
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY,
    guild_id   INTEGER NOT NULL,
    actor_id   INTEGER NOT NULL,
    action     TEXT    NOT NULL,
    old_value  TEXT,
    new_value  TEXT,
    reason     TEXT,
    created_at TEXT    NOT NULL
);
CREATE INDEX audit_guild ON audit (guild_id, id);

-- The ledger gains two kinds (SQLite cannot alter a CHECK, so the table is rebuilt):
-- 'rollover' carries the previous period's unused credits into a new period, 'adjust'
-- records the balance change of a moderator's `set` (allowance or period) so that the
-- derived balance stays explainable row by row. 'reset' and 'adjust' may be negative.
CREATE TABLE ledger_v2 (
    id             INTEGER PRIMARY KEY,
    guild_id       INTEGER NOT NULL,
    period_key     TEXT    NOT NULL,
    kind           TEXT    NOT NULL CHECK (kind IN
                       ('reserve', 'charge', 'refund', 'grant', 'reset', 'rollover', 'adjust')),
    amount         INTEGER NOT NULL,
    user_id        INTEGER,
    actor_id       INTEGER,
    reservation_id INTEGER REFERENCES reservations(id),
    job_id         INTEGER,
    reason         TEXT,
    created_at     TEXT    NOT NULL
);
INSERT INTO ledger_v2 SELECT id, guild_id, period_key, kind, amount, user_id, actor_id,
    reservation_id, job_id, reason, created_at FROM ledger;
DROP TABLE ledger;
ALTER TABLE ledger_v2 RENAME TO ledger;
CREATE INDEX ledger_guild_period ON ledger (guild_id, period_key);
CREATE INDEX ledger_guild_id ON ledger (guild_id, id);
CREATE INDEX reservations_guild_user ON reservations (guild_id, period_key, user_id);
CREATE INDEX reservations_created ON reservations (created_at);
