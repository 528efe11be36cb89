-- The fair line is shared by every process (bot/fair_line.py): a job takes a slot when it
-- leaves the line, and holds it until it ends, wherever it is resumed. ISO 8601 UTC text.
ALTER TABLE jobs ADD COLUMN slot_at TEXT;
-- Jobs past the line when this version starts already hold their slot.
UPDATE jobs SET slot_at = COALESCE(started_at, updated_at)
    WHERE state NOT IN ('pending', 'delivered', 'failed', 'cancelled');
CREATE INDEX jobs_slots ON jobs (guild_id, slot_at);
