-- Ledger rows and period totals are now written by LedgerRepo (bot/storage/sqlite/ledger.py)
-- in the same transaction as each hold, settle and move, where the code shows them; the
-- triggers of 0004 that did it behind the code's back go. Existing rows and totals stay valid.
DROP TRIGGER IF EXISTS ledger_totals;
DROP TRIGGER IF EXISTS reservation_held;
DROP TRIGGER IF EXISTS reservation_settled;

-- Each unfinished job is run by one process at a time: the lease's owner until it expires
-- (ISO 8601 UTC text, like every instant here). NULL: nobody holds it.
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_expires_at TEXT;
CREATE INDEX jobs_claim ON jobs (id, lease_expires_at)
    WHERE state NOT IN ('delivered', 'failed', 'cancelled');
