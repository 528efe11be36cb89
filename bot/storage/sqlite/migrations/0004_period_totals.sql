-- Running totals per guild and period, kept by triggers in the same transaction as every
-- ledger and reservation write. The ledger stays the record (balances can always be re-derived
-- from it); the totals make reading a balance one row instead of a sum over the period, so a
-- reservation costs the same on the first day of a month as on the last.

CREATE TABLE period_totals (
    guild_id   INTEGER NOT NULL,
    period_key TEXT    NOT NULL,
    net        INTEGER NOT NULL DEFAULT 0,  -- SUM(ledger.amount)
    granted    INTEGER NOT NULL DEFAULT 0,  -- grants
    carried    INTEGER NOT NULL DEFAULT 0,  -- rollover
    adjusted   INTEGER NOT NULL DEFAULT 0,  -- reset and adjust
    reserved   INTEGER NOT NULL DEFAULT 0,  -- reservations still held
    spent      INTEGER NOT NULL DEFAULT 0,  -- reservations charged
    PRIMARY KEY (guild_id, period_key)
) WITHOUT ROWID;

INSERT INTO period_totals (guild_id, period_key, net, granted, carried, adjusted)
SELECT guild_id, period_key,
       SUM(amount),
       COALESCE(SUM(CASE WHEN kind = 'grant' THEN amount END), 0),
       COALESCE(SUM(CASE WHEN kind = 'rollover' THEN amount END), 0),
       COALESCE(SUM(CASE WHEN kind IN ('reset', 'adjust') THEN amount END), 0)
FROM ledger GROUP BY guild_id, period_key;

INSERT INTO period_totals (guild_id, period_key, reserved, spent)
SELECT guild_id, period_key,
       COALESCE(SUM(CASE WHEN state = 'held' THEN amount END), 0),
       COALESCE(SUM(CASE WHEN state = 'charged' THEN amount END), 0)
FROM reservations WHERE true GROUP BY guild_id, period_key
ON CONFLICT (guild_id, period_key) DO UPDATE SET
    reserved = excluded.reserved, spent = excluded.spent;

CREATE TRIGGER ledger_totals AFTER INSERT ON ledger
BEGIN
    INSERT INTO period_totals (guild_id, period_key, net, granted, carried, adjusted)
    VALUES (
        NEW.guild_id, NEW.period_key, NEW.amount,
        CASE WHEN NEW.kind = 'grant' THEN NEW.amount ELSE 0 END,
        CASE WHEN NEW.kind = 'rollover' THEN NEW.amount ELSE 0 END,
        CASE WHEN NEW.kind IN ('reset', 'adjust') THEN NEW.amount ELSE 0 END
    )
    ON CONFLICT (guild_id, period_key) DO UPDATE SET
        net = net + excluded.net,
        granted = granted + excluded.granted,
        carried = carried + excluded.carried,
        adjusted = adjusted + excluded.adjusted;
END;

-- A new reservation is held: it writes its own 'reserve' ledger row (so no code path can
-- hold credits without the ledger saying so) and counts as reserved.
CREATE TRIGGER reservation_held AFTER INSERT ON reservations
BEGIN
    INSERT INTO ledger (guild_id, period_key, kind, amount, user_id, actor_id, reservation_id,
                        created_at)
    VALUES (NEW.guild_id, NEW.period_key, 'reserve', -NEW.amount, NEW.user_id, NEW.user_id,
            NEW.id, NEW.created_at);
    INSERT INTO period_totals (guild_id, period_key, reserved) VALUES
        (NEW.guild_id, NEW.period_key, NEW.amount)
    ON CONFLICT (guild_id, period_key) DO UPDATE SET reserved = reserved + excluded.reserved;
END;

CREATE TRIGGER reservation_settled AFTER UPDATE OF state ON reservations
WHEN OLD.state = 'held' AND NEW.state IN ('charged', 'refunded')
BEGIN
    UPDATE period_totals SET
        reserved = reserved - OLD.amount,
        spent = spent + CASE WHEN NEW.state = 'charged' THEN OLD.amount ELSE 0 END
    WHERE guild_id = OLD.guild_id AND period_key = OLD.period_key;
END;
